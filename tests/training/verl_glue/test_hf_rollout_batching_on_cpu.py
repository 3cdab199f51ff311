"""The ``hf`` rollout serves concurrent requests in batches without changing what any request samples."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest
import torch

from sparse_rlvr.training.verl_glue.batched_decoding import DecodeRequest, decode_batch
from sparse_rlvr.training.verl_glue.hf_rollout import HFServer
from sparse_rlvr.training.verl_glue.request_batcher import RequestBatcher
from sparse_rlvr.workflows.tiny_models import PADDED_ROWS, save_tiny_model, tiny_model, tiny_tokenizer

# prompts of different lengths: batches are left-padded
PROMPTS = [[5, 9, 12, 30, 7], [3, 4], [8, 8, 8, 8, 8, 8, 8, 8, 1], [5, 9, 12, 30, 7], [2, 3, 4, 5, 6, 7], [3, 4]]
SAMPLING = {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "logprobs": True}
# one padded batch vs a row alone: same math, different matrix shapes (float32 rounding, measured ~6e-6)
LOG_PROB_ATOL = 2e-5
N_REAL = len(tiny_tokenizer())  # the tiny model has PADDED_ROWS more lm_head rows


def make_server(tmp_path, response_length: int = 12) -> HFServer:
    if not (tmp_path / "model").exists():
        save_tiny_model(tmp_path / "model", seed=0)
    config = SimpleNamespace(response_length=response_length, seed=0)
    model_config = SimpleNamespace(path=str(tmp_path / "model"), local_path=None, generation_config=None)
    return HFServer(config=config, model_config=model_config)


def teacher_forced(model: torch.nn.Module, prompt: list[int], tokens: list[int]) -> torch.Tensor:
    """[len(tokens)] log p(token_i | prefix) over the tokenizer's rows, from one full forward (the actor's computation)."""
    ids = torch.tensor([prompt + tokens])
    with torch.no_grad():
        logits = model(ids).logits[0, len(prompt) - 1 : -1, :N_REAL].float()
    return logits.log_softmax(-1).gather(-1, torch.tensor(tokens)[:, None])[:, 0]


async def _one_by_one(server: HFServer, order: list[int], params: list[dict]) -> dict[int, object]:
    return {i: await server.generate(prompt_ids=PROMPTS[i], sampling_params=params[i], request_id=str(i)) for i in order}


async def _together(server: HFServer, order: list[int], params: list[dict]) -> dict[int, object]:
    outs = await asyncio.gather(*(server.generate(prompt_ids=PROMPTS[i], sampling_params=params[i], request_id=str(i)) for i in order))
    return dict(zip(order, outs))


async def _in_groups(server: HFServer, groups: list[list[int]], params: list[dict]) -> dict[int, object]:
    outs: dict[int, object] = {}
    for group in groups:
        outs |= await _together(server, group, params)
    return outs


def _assert_same(reference: dict[int, object], other: dict[int, object]) -> None:
    for i, out in reference.items():
        assert other[i].token_ids == out.token_ids, i
        assert other[i].stop_reason == out.stop_reason
        torch.testing.assert_close(torch.tensor(other[i].log_probs), torch.tensor(out.log_probs), atol=LOG_PROB_ATOL, rtol=0)


def test_batched_in_any_order_or_grouping_samples_what_one_by_one_does(tmp_path):
    """Same requests: one by one, all at once in two orders, in uneven groups: the same tokens.

    Requests 0 and 3 (and 1 and 5) share a prompt: the k-th of them draws the k-th seed, whichever
    request that is, so the multiset of responses per prompt is what must agree; they are sent in
    the same relative order everywhere here, so each request's response agrees.
    """
    params = [SAMPLING | {"max_tokens": 12 - i} for i in range(len(PROMPTS))]
    order = list(range(len(PROMPTS)))
    served = []
    for run in (lambda s: _one_by_one(s, order, params), lambda s: _together(s, order, params),
                lambda s: _together(s, [4, 2, 0, 1, 3, 5], params), lambda s: _in_groups(s, [[2], [0, 4, 1], [5, 3]], params)):
        server = make_server(tmp_path)  # a fresh server: the k-th-request counters start at 0
        served.append((asyncio.run(run(server)), server.batcher.batch_sizes))
    (alone, alone_sizes), *batched = served
    assert alone_sizes == [1] * len(PROMPTS)
    assert batched[0][1] == [len(PROMPTS)] and batched[2][1] == [1, 3, 2]  # really batched, as grouped
    for outs, _ in batched:
        _assert_same(alone, outs)
    # and each row's log-probs are the actor's recomputation (left padding changed nothing)
    model = make_server(tmp_path).model
    for i, out in batched[1][0].items():
        torch.testing.assert_close(torch.tensor(out.log_probs), teacher_forced(model, PROMPTS[i], out.token_ids),
                                   atol=LOG_PROB_ATOL, rtol=0)


def test_weight_version_keys_the_seed(tmp_path):
    """After a weight sync the same request draws a new seed (the counters restart per version)."""
    server = make_server(tmp_path)
    before = asyncio.run(_together(server, [0], [SAMPLING] * len(PROMPTS)))[0]
    asyncio.run(server.update_weights(dict(server.model.state_dict()), global_steps=1))  # same weights, new version
    after = asyncio.run(_together(server, [0], [SAMPLING] * len(PROMPTS)))[0]
    assert after.extra_fields["weight_version"] == 1 and before.token_ids != after.token_ids


def test_each_row_stops_at_its_own_eos_or_limit(tmp_path):
    """In one batch: rows with different limits and stop tokens end where each would alone."""
    model = make_server(tmp_path).model

    def request(i: int, max_tokens: int, eos: set[int]) -> DecodeRequest:
        return DecodeRequest(PROMPTS[i], max_tokens, 1.0, -1, 1.0, eos, torch.Generator().manual_seed(i))

    free = decode_batch(model, [request(i, 12, set()) for i in range(4)], vocab_size=N_REAL)
    assert all(len(r.token_ids) == 12 for r in free)
    # row 0 stops at the first token it had not sampled before (its EOS), row 1 at 5 tokens, row 2
    # runs to 12, row 3 at max_tokens=0
    tokens0 = free[0].token_ids
    stop = next(j for j in range(1, 12) if tokens0[j] not in tokens0[:j])
    rows = [request(0, 12, {tokens0[stop]}), request(1, 5, set()), request(2, 12, set()), request(3, 0, set())]
    batched = decode_batch(model, rows, vocab_size=N_REAL)
    assert [len(r.token_ids) for r in batched] == [stop + 1, 5, 12, 0]
    assert all(r.stop_reason == "completed" for r in batched)
    for got, full in zip(batched, free):
        assert got.token_ids == full.token_ids[: len(got.token_ids)]
        torch.testing.assert_close(torch.tensor(got.log_probs), torch.tensor(full.log_probs[: len(got.log_probs)]),
                                   atol=LOG_PROB_ATOL, rtol=0)
    for i, row in enumerate(rows):  # and each equals the row decoded alone
        row.generator.manual_seed(i)
        alone = decode_batch(model, [row], vocab_size=N_REAL)[0]
        assert alone.token_ids == batched[i].token_ids


def _padded_rows_dominant(model: torch.nn.Module) -> torch.nn.Module:
    """The model with +30 added to every padded row's logit: unless they are cut, nearly every sample is a padded id."""
    head = model.get_output_embeddings()
    biased = torch.nn.Linear(head.in_features, head.out_features, bias=True)
    with torch.no_grad():
        biased.weight.copy_(head.weight)
        biased.bias.zero_()
        biased.bias[N_REAL:] = 30.0
    model.set_output_embeddings(biased)
    return model


def test_decoding_samples_only_the_tokenizers_ids():
    """vocab_size cuts the padded rows: no padded id, log-probs = log_softmax over the real rows (as vLLM under verl)."""
    model = _padded_rows_dominant(tiny_model(seed=0))
    assert model.config.vocab_size == N_REAL + PADDED_ROWS

    def requests() -> list[DecodeRequest]:
        return [DecodeRequest(prompt, 12, 1.0, -1, 1.0, set(), torch.Generator().manual_seed(i)) for i, prompt in enumerate(PROMPTS)]

    uncut = decode_batch(model, requests(), vocab_size=None)
    assert all(token >= N_REAL for r in uncut for token in r.token_ids)  # teeth: the padded rows win when kept
    cut = decode_batch(model, requests(), vocab_size=N_REAL)
    for prompt, result in zip(PROMPTS, cut):
        assert len(result.token_ids) == 12 and max(result.token_ids) < N_REAL
        torch.testing.assert_close(torch.tensor(result.log_probs), teacher_forced(model, prompt, result.token_ids),
                                   atol=LOG_PROB_ATOL, rtol=0)


def test_abort_reaches_running_and_queued_requests(tmp_path):
    """A long running batch stops at its next token; requests queued behind it return at once."""
    server = make_server(tmp_path, response_length=100_000)
    server.eos_ids = set()  # no request may finish on its own before the abort: only the abort ends them
    long = SAMPLING | {"max_tokens": 100_000}

    async def scenario():
        running = [asyncio.ensure_future(server.generate(prompt_ids=PROMPTS[i], sampling_params=long, request_id=str(i)))
                   for i in range(3)]
        while not server.batcher.batch_sizes:  # the running batch has started
            await asyncio.sleep(0.01)
        queued = [asyncio.ensure_future(server.generate(prompt_ids=PROMPTS[i], sampling_params=long, request_id=f"q{i}"))
                  for i in range(2)]
        await asyncio.sleep(0.01)  # the queued requests are in the batcher (inside its quiet window)
        started = time.monotonic()
        await server.abort_all_requests()
        outs = await asyncio.gather(*running, *queued)
        refused = await server.generate(prompt_ids=PROMPTS[0], sampling_params=long, request_id="late")
        return outs, refused, time.monotonic() - started

    outs, refused, waited = asyncio.run(scenario())
    assert [o.stop_reason for o in outs] == ["aborted"] * 5
    assert all(0 < len(o.token_ids) < 100_000 for o in outs[:3])  # stopped mid-decode, with what they had
    assert [o.token_ids for o in outs[3:]] == [[], []] and server.batcher.batch_sizes == [3]  # never decoded
    assert refused.stop_reason == "aborted" and refused.token_ids == []
    assert waited < 30
    asyncio.run(server.resume_generation())
    out = asyncio.run(server.generate(prompt_ids=PROMPTS[0], sampling_params=SAMPLING | {"max_tokens": 4}, request_id="r"))
    assert out.stop_reason == "completed" and len(out.token_ids) == 4


def test_weight_sync_and_sleep_wait_for_the_running_batch(tmp_path):
    """A weight sync sent during a batch lands after it: the whole batch samples from the old policy."""
    server = make_server(tmp_path, response_length=400)
    old = {k: v.clone() for k, v in server.model.state_dict().items()}
    new = {k: v + 0.05 * torch.randn_like(v) for k, v in old.items()}
    params = SAMPLING | {"max_tokens": 400}

    async def scenario():
        running = asyncio.gather(*(server.generate(prompt_ids=PROMPTS[i], sampling_params=params, request_id=str(i))
                                   for i in range(3)))
        while not server.batcher.batch_sizes:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # the batch is decoding
        await asyncio.gather(server.sleep(), server.update_weights(new, global_steps=1))
        return await running

    outs = asyncio.run(scenario())
    reference = make_server(tmp_path).model  # the old weights
    for i, out in enumerate(outs):
        assert out.extra_fields["weight_version"] == 0 and len(out.token_ids) > 0
        torch.testing.assert_close(torch.tensor(out.log_probs), teacher_forced(reference, PROMPTS[i], out.token_ids),
                                   atol=1e-4, rtol=0)
    assert server.weight_version == 1


def test_batcher_closes_on_quiet_gap_max_batch_and_reports_errors():
    served: list[list[int]] = []

    def serve(items: list[int]) -> list[int]:
        if -1 in items:
            raise ValueError("bad item")
        served.append(items)
        return [2 * x for x in items]

    batcher = RequestBatcher(serve, quiet_s=0.05, max_wait_s=1.0, max_batch=3)
    futures = [batcher.submit(x) for x in range(5)]
    assert [f.result(timeout=10) for f in futures] == [0, 2, 4, 6, 8]
    assert served == [[0, 1, 2], [3, 4]]
    failing = batcher.submit(-1)
    with pytest.raises(ValueError, match="bad item"):
        failing.result(timeout=10)
    assert batcher.submit(7).result(timeout=10) == 14  # the thread survived the error
    with pytest.raises(ValueError, match="quiet_s"):
        RequestBatcher(serve, quiet_s=1.0, max_wait_s=0.1)


def test_a_bad_request_fails_alone(tmp_path):
    server = make_server(tmp_path)

    async def scenario():
        return await asyncio.gather(server.generate(prompt_ids=[], sampling_params=SAMPLING, request_id="empty"),
                                    server.generate(prompt_ids=PROMPTS[0], sampling_params=SAMPLING, request_id="ok"),
                                    return_exceptions=True)

    bad, good = asyncio.run(scenario())
    assert isinstance(bad, ValueError) and "empty prompt" in str(bad)
    assert good.stop_reason == "completed" and len(good.token_ids) > 0
