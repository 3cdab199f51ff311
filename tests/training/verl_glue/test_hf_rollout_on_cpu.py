"""The ``hf`` rollout: sampling contract, log-probs equal to a full forward, weight sync, abort."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
import torch

from sparse_rlvr.workflows.tiny_models import save_tiny_model, tiny_model, tiny_tokenizer
from sparse_rlvr.core.sampling import filter_logits, sample
from sparse_rlvr.training.verl_glue.hf_rollout import SERVER_NAME, HFServer, HFServerAdapter, sample_tokens

PROMPT = [5, 9, 12, 30, 7]
N_REAL = len(tiny_tokenizer())  # the tiny model has PADDED_ROWS more lm_head rows; the rollout samples from these


@pytest.fixture
def server(tmp_path) -> HFServer:
    save_tiny_model(tmp_path / "model", seed=0)
    config = SimpleNamespace(response_length=12, seed=0)
    model_config = SimpleNamespace(path=str(tmp_path / "model"), local_path=None, generation_config=None)
    return HFServer(config=config, model_config=model_config)


def teacher_forced_log_probs(model: torch.nn.Module, prompt: list[int], tokens: list[int], temperature: float) -> torch.Tensor:
    """[len(tokens)] log p(token_i | prefix) / T over the tokenizer's rows, from one full forward (the actor's computation)."""
    ids = torch.tensor([prompt + tokens])
    with torch.no_grad():
        logits = model(ids).logits[0, len(prompt) - 1 : -1, :N_REAL].float() / temperature
    return logits.log_softmax(-1).gather(-1, torch.tensor(tokens)[:, None])[:, 0]


def generate(server: HFServer, **params) -> object:
    sampling = {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "logprobs": True} | params
    return asyncio.run(server.generate(prompt_ids=PROMPT, sampling_params=sampling, request_id="r"))


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_log_probs_equal_a_full_forward(server, temperature):
    assert server.vocab_size == N_REAL  # read from the tokenizer saved with the model
    out = generate(server, temperature=temperature)
    expected = teacher_forced_log_probs(server.model, PROMPT, out.token_ids, temperature)
    # fp32 KV-cache decoding vs one full forward: same math, different reduction order (~1e-6)
    torch.testing.assert_close(torch.tensor(out.log_probs), expected, atol=1e-4, rtol=0)


def test_weight_sync_makes_the_rollout_sample_from_the_new_policy(server):
    policy = tiny_model(seed=1, vocab_size=len(tiny_tokenizer()))
    before = generate(server)
    asyncio.run(server.update_weights(dict(policy.state_dict()), global_steps=1))
    after = generate(server)
    expected = teacher_forced_log_probs(policy, PROMPT, after.token_ids, 1.0)
    torch.testing.assert_close(torch.tensor(after.log_probs), expected, atol=1e-4, rtol=0)
    stale = teacher_forced_log_probs(tiny_model(seed=0, vocab_size=len(tiny_tokenizer())), PROMPT, after.token_ids, 1.0)
    assert (torch.tensor(after.log_probs) - stale).abs().max() > 1e-2
    assert after.extra_fields["global_steps"] == 1 and before.extra_fields["weight_version"] == 0


def test_greedy_max_tokens_eos_and_top_k(server):
    greedy = generate(server, temperature=0.0)
    top1 = generate(server, top_k=1)
    assert greedy.token_ids == top1.token_ids
    assert len(generate(server, max_tokens=3).token_ids) <= 3
    assert len(generate(server).token_ids) <= 12  # response_length caps max_tokens
    first = greedy.token_ids[0]
    stopped = generate(server, temperature=0.0, stop_token_ids=[first])
    assert stopped.token_ids == [first] and stopped.stop_reason == "completed"
    assert generate(server, logprobs=False).log_probs is None


def test_sampling_stops_at_an_eos_it_is_certain_to_sample(server):
    """EOS is made certain: a token the same seeded request samples when nothing stops it."""
    params = dict(max_tokens=12, temperature=1.0, top_k=-1, top_p=1.0)
    params |= dict(vocab_size=server.vocab_size)
    free, free_log_probs, _ = sample_tokens(server.model, PROMPT, eos_ids=set(), generator=torch.Generator().manual_seed(7), **params)
    assert len(free) == 12
    eos = free[4]
    cut = free.index(eos) + 1
    stopped = sample_tokens(server.model, PROMPT, eos_ids={eos}, generator=torch.Generator().manual_seed(7), **params)
    assert stopped == (free[:cut], free_log_probs[:cut], "completed")


def test_rollout_draws_with_the_packages_one_sampler(server):
    """Each token is core.sampling.sample on that step's logits, drawing from the request's generator."""
    tokens, _, _ = sample_tokens(server.model, PROMPT, max_tokens=8, temperature=0.8, top_k=20, top_p=0.9, eos_ids=set(),
                                 generator=torch.Generator().manual_seed(5), vocab_size=N_REAL)
    with torch.no_grad():
        logits = server.model(torch.tensor([PROMPT + tokens])).logits[0, len(PROMPT) - 1 : -1, :N_REAL].float()
    generator = torch.Generator().manual_seed(5)
    assert tokens == [int(sample(row[None], 0.8, 0.9, generator, top_k=20)[0]) for row in logits]


def test_abort_and_resume(server):
    asyncio.run(server.abort_all_requests())
    assert generate(server).stop_reason == "aborted"
    asyncio.run(server.resume_generation())
    assert generate(server).stop_reason == "completed"


def test_filter_logits_top_k_and_top_p():
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    assert torch.isinf(filter_logits(logits, 2, 1.0)).tolist() == [False, False, True, True]
    assert torch.isinf(filter_logits(logits, -1, 0.7)).tolist() == [False, False, True, True]
    assert torch.isinf(filter_logits(logits, -1, 1.0)).sum() == 0


def test_adapter_ships_actor_weights_to_the_named_server(tmp_path, local_ray):
    save_tiny_model(tmp_path / "model", seed=0)
    config = SimpleNamespace(response_length=4, seed=0)
    model_config = SimpleNamespace(path=str(tmp_path / "model"), local_path=None, generation_config=None)
    remote = local_ray.remote(HFServer).options(name=SERVER_NAME.format(replica_rank=0), num_cpus=0)
    handle = remote.remote(config=config, model_config=model_config)
    adapter = HFServerAdapter.__new__(HFServerAdapter)  # skip verl's config parsing; ranks set by hand
    adapter.replica_rank, adapter.rollout_rank, adapter._server = 0, 0, None
    policy = tiny_model(seed=3, vocab_size=len(tiny_tokenizer())).state_dict()
    asyncio.run(adapter.update_weights(((name, tensor) for name, tensor in policy.items()), global_steps=2))
    served = local_ray.get(handle.get_weights.remote())
    for name, tensor in policy.items():
        torch.testing.assert_close(served[name], tensor)
