"""Sample many prompts' responses in one batched KV-cache decode, each row on its own terms.

The ``hf`` rollout (``hf_rollout.py``) serves concurrent requests with this. Rows are left-padded
to one length; the attention mask hides the padding and position ids count only real tokens, so
a row's logits are the ones it would get alone (up to float rounding of different matrix
shapes, ~1e-6). Each row has its own generator, temperature, top-k/top-p, EOS ids and token
limit; tokens come from the package's one sampler (``sparse_rlvr.core.sampling.sample``), one
uniform per token from the row's generator, so what a row samples does not depend on which
other rows share its batch. Finished rows leave the batch (their KV cache rows are dropped).
Only the tokenizer's rows of the logits count (``vocab_size``): padded lm_head rows are not
tokens, and verl's vLLM rollout masks them the same way, so no padded id is ever sampled and the
log-probs are over the real vocabulary.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Optional

import torch
from transformers import DynamicCache

from sparse_rlvr.core.sampling import sample


@dataclass
class DecodeRequest:
    """One row: its prompt and how to sample its response."""

    prompt_ids: list[int]
    max_tokens: int
    temperature: float
    top_k: int
    top_p: float
    eos_ids: set[int]
    generator: torch.Generator


@dataclass
class DecodeResult:
    """One row's response: token ids, log softmax(logits[:vocab_size] / T)[token] of each (T = 1 when greedy), and why it stopped."""

    token_ids: list[int] = field(default_factory=list)
    log_probs: list[float] = field(default_factory=list)
    stop_reason: str = "completed"


def _check(request: DecodeRequest) -> None:
    if not request.prompt_ids:
        raise ValueError("hf rollout: empty prompt; every request needs at least one prompt token")
    if request.temperature < 0:
        raise ValueError(f"hf rollout: temperature must be >= 0 (0 is greedy), got {request.temperature}")


@torch.no_grad()
def decode_batch(
    model: torch.nn.Module,
    requests: Sequence[DecodeRequest],
    *,
    vocab_size: int | None,
    pad_id: int = 0,
    should_stop: Optional[Callable[[], bool]] = None,
) -> list[DecodeResult]:
    """Autoregressive sampling of every request at once; results in request order.

    ``vocab_size`` is len(tokenizer): only the first ``vocab_size`` logits are sampled from and
    normalised over (None: all of them, for a model without padded rows). Required, so that no
    caller forgets it on a padded checkpoint.

    A row stops after an EOS token (kept, as vLLM returns it) or after its ``max_tokens``. When
    ``should_stop()`` turns true (checked before every forward) the unfinished rows return what
    they have with stop_reason "aborted".
    """
    for request in requests:
        _check(request)
    results = [DecodeResult() for _ in requests]
    active = [i for i, request in enumerate(requests) if request.max_tokens > 0]
    if not active:
        return results
    device = next(model.parameters()).device
    width = max(len(requests[i].prompt_ids) for i in active)
    input_ids = torch.full((len(active), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(active), width), dtype=torch.long)
    for row, i in enumerate(active):
        prompt = requests[i].prompt_ids
        input_ids[row, width - len(prompt):] = torch.tensor(prompt, dtype=torch.long)
        mask[row, width - len(prompt):] = 1
    input_ids, mask = input_ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp_min(0)
    cache = DynamicCache()
    while active:
        if should_stop is not None and should_stop():
            for i in active:
                results[i].stop_reason = "aborted"
            return results
        out = model(input_ids=input_ids, attention_mask=mask, position_ids=positions, past_key_values=cache, use_cache=True)
        cache = out.past_key_values
        logits = out.logits[:, -1, :vocab_size].float()
        temperatures = torch.tensor([requests[i].temperature or 1.0 for i in active], device=logits.device)
        log_probs = (logits / temperatures[:, None]).log_softmax(-1)
        tokens = []
        for row, i in enumerate(active):
            request = requests[i]
            tokens.append(int(sample(logits[row : row + 1], request.temperature, request.top_p, request.generator,
                                     top_k=request.top_k)[0]))
        chosen = log_probs.gather(-1, torch.tensor(tokens, device=logits.device)[:, None])[:, 0].tolist()
        keep = []
        for row, (i, token, log_prob) in enumerate(zip(active, tokens, chosen)):
            result = results[i]
            result.token_ids.append(token)
            result.log_probs.append(log_prob)
            if token not in requests[i].eos_ids and len(result.token_ids) < requests[i].max_tokens:
                keep.append(row)
        if len(keep) < len(active):
            active = [active[row] for row in keep]
            if not active:
                break
            index = torch.tensor(keep, device=device)
            cache.batch_select_indices(index)
            mask, positions = mask[index], positions[index]
            tokens = [tokens[row] for row in keep]
        input_ids = torch.tensor(tokens, device=device)[:, None]
        mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
        positions = positions[:, -1:] + 1
    return results
