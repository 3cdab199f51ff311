"""Train the miniature's base model on CPU: a tiny Qwen2 that mixes both strategies at the forks.

Supervised next-token training on chat-formatted prompts, loss on response tokens (and EOS) only.
On fork prompts the target is the left-to-right (wrong) response with probability `wrong_share`
(default 1/2), the precedence response otherwise; on plain prompts the two coincide. The model so
learns the format and the arithmetic reliably and is unsure only at the planted forks: the target
is sampled accuracy ~0.75 overall, ~0.5 on fork prompts whose strategies disagree (room for RL),
asserted by the slow test. Measured with the bare prompt template (600 held-out prompts, T=1, one
thread): the defaults (2,500 steps x 64) reach loss ~0.03, plain prompts 0.98 right, the fork
prompts whose strategies disagree 0.48 and 0.41 (fork first / later), overall 0.76; after 1,500
steps arithmetic was still wrong on 13% of plain prompts, which GRPO then spends its steps on.
Deterministic given the seed and the thread count.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerFast, Qwen2ForCausalLM

from sparse_rlvr.workflows.miniature import task
from sparse_rlvr.workflows.miniature.task import Problem, make_problems, prompt_string, response_text
from sparse_rlvr.workflows.tiny_models import save_checkpoint, tiny_config

Progress = Callable[[int, int, float], None]  # (step done, total steps, loss of that step)


@dataclass(frozen=True)
class BaseModelConfig:
    """Model size and supervised-training settings of the base model."""

    seed: int = field(default=0, metadata={"help": "Seeds the weights, the training problems and the strategy draws."})
    hidden_size: int = field(default=64, metadata={"help": "Model width."})
    num_heads: int = field(default=2, metadata={"help": "Attention heads; head_dim = hidden_size / num_heads must be "
                                                        ">= 32 (vLLM's CPU backend takes 32, 64, 80, ...)."})
    num_layers: int = field(default=3, metadata={"help": "Transformer layers."})
    intermediate_size: int = field(default=256, metadata={"help": "MLP width."})
    steps: int = field(default=2500, metadata={"help": "Optimiser steps (AdamW, cosine decay after warm-up)."})
    batch_size: int = field(default=64, metadata={"help": "Sequences per step; fresh problems each step."})
    lr: float = field(default=3e-3, metadata={"help": "Peak learning rate."})
    warmup_steps: int = field(default=50, metadata={"help": "Linear warm-up steps."})
    wrong_share: float = field(default=0.5, metadata={"help": "Share of fork prompts trained on the left-to-right "
                                                               "response (0 trains only the correct strategy)."})
    fork_share: float = field(default=0.7, metadata={"help": "Share of fork prompts in the training stream."})
    later_share: float = field(default=0.5, metadata={"help": "Share of fork prompts whose fork comes after step 1."})
    threads: int = field(default=0, metadata={"help": "torch threads while training (0: torch's default, all cores; "
                                                       "1 is faster when other processes keep the cores busy)."})

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_heads or self.hidden_size // self.num_heads < 32:
            raise ValueError(f"hidden_size/num_heads must be a whole head_dim >= 32 (vLLM's CPU backend), got "
                             f"{self.hidden_size}/{self.num_heads}; e.g. hidden_size=64, num_heads=2")
        if self.steps < 1 or self.batch_size < 1 or not self.lr > 0:
            raise ValueError(f"steps, batch_size and lr must be positive, got {self.steps}, {self.batch_size}, {self.lr}")
        if not 0 <= self.wrong_share <= 1:
            raise ValueError(f"wrong_share must be in [0, 1], got {self.wrong_share}")


@dataclass
class TrainedBase:
    """A trained base model, its tokenizer, the loss of every step and the wall time."""

    model: Qwen2ForCausalLM
    tokenizer: PreTrainedTokenizerFast
    losses: list[float]
    wall_s: float

    def save(self, out_dir: str | Path) -> Path:
        """Write a Hugging Face directory (model + tokenizer) that from_pretrained and verl load."""
        return save_checkpoint(self.model, self.tokenizer, out_dir)


def build_model(config: BaseModelConfig, tokenizer: PreTrainedTokenizerFast) -> Qwen2ForCausalLM:
    """A freshly initialised tiny Qwen2 with the config's size (seeded, global RNG restored)."""
    state = torch.random.get_rng_state()
    torch.manual_seed(config.seed)
    try:
        return Qwen2ForCausalLM(tiny_config(
            len(tokenizer), hidden_size=config.hidden_size, num_layers=config.num_layers,
            num_attention_heads=config.num_heads, num_key_value_heads=config.num_heads,
            head_dim=config.hidden_size // config.num_heads, intermediate_size=config.intermediate_size,
            initializer_range=0.02, max_position_embeddings=256,
        ))
    finally:
        torch.random.set_rng_state(state)


def training_batch(
    problems: list[Problem], wrong: list[bool], tokenizer: PreTrainedTokenizerFast
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """input_ids, attention_mask, labels [B, T]: right-padded; labels -100 outside response + EOS."""
    prompts = [prompt_string(p, tokenizer) for p in problems]
    responses = [response_text(p, "left_to_right" if w else "precedence") + tokenizer.eos_token
                 for p, w in zip(problems, wrong)]
    prompt_ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    full_ids = tokenizer([p + r for p, r in zip(prompts, responses)], add_special_tokens=False)["input_ids"]
    width = max(map(len, full_ids))
    ids = torch.full((len(full_ids), width), tokenizer.pad_token_id)
    labels = torch.full((len(full_ids), width), -100)
    mask = torch.zeros((len(full_ids), width), dtype=torch.long)
    for b, (p, f) in enumerate(zip(prompt_ids, full_ids)):
        ids[b, : len(f)] = torch.tensor(f)
        mask[b, : len(f)] = 1
        labels[b, len(p) : len(f)] = torch.tensor(f[len(p) :])
    return ids, mask, labels


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run torch on `count` threads inside (0 leaves the default): a model this small gains little from
    more threads, and one thread is several times faster than two on cores other processes keep busy."""
    before = torch.get_num_threads()
    torch.set_num_threads(count or before)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def one_thread() -> Any:
    """`torch_threads(1)`: for sampling and grading next to other work."""
    return torch_threads(1)


def _lr_factor(step: int, config: BaseModelConfig) -> float:
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))


def train_base(config: BaseModelConfig = BaseModelConfig(), progress: Progress | None = None) -> TrainedBase:
    """Train the base model from scratch; `progress(step, total, loss)` is called after every step."""
    with torch_threads(config.threads):
        return _train(config, progress, time.perf_counter())


def _train(config: BaseModelConfig, progress: Progress | None, start: float) -> TrainedBase:
    tokenizer = task.tokenizer()
    model = build_model(config, tokenizer).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(s, config))
    rng = random.Random(f"base-{config.seed}")
    losses = []
    for step in range(config.steps):
        problems = make_problems(config.batch_size, rng.randrange(2**31), "train", config.fork_share, config.later_share)
        wrong = [p.kind != "plain" and rng.random() < config.wrong_share for p in problems]
        ids, mask, labels = training_batch(problems, wrong, tokenizer)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if progress is not None:
            progress(step + 1, config.steps, losses[-1])
    return TrainedBase(model.eval(), tokenizer, losses, time.perf_counter() - start)


def load_base(path: str | Path) -> tuple[Qwen2ForCausalLM, Any]:
    """(model, tokenizer) from a directory written by TrainedBase.save."""
    from transformers import AutoTokenizer

    return Qwen2ForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)
