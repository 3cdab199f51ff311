"""The lock-step cross-sampling engine on the tiny pair: exact end points, exact switching."""

from __future__ import annotations

import math

import pytest
import torch

from sparse_rlvr.core.decoding import decode_alone
from sparse_rlvr.core.sampling import SamplingOptions
from sparse_rlvr.interventions.engine import cross_sample
from sparse_rlvr.interventions.rules import SwitchRule
from sparse_rlvr.workflows.tiny_models import tiny_pair


@pytest.fixture(scope="module")
def setup():
    base, policy, tokenizer = tiny_pair(shift=0.5)
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": f"What is {i} * {i + 2}?"}],
                                             add_generation_prompt=True)["input_ids"] for i in range(5)]
    prompts[1] = prompts[1][:9]  # different lengths exercise the left padding
    kwargs = dict(vocab_size=len(tokenizer), eos_id=tokenizer.eos_token_id, pad_id=tokenizer.pad_token_id, seed=11)
    return base, policy, prompts, kwargs


OPTIONS = SamplingOptions(temperature=1.0, top_p=0.9, max_new_tokens=30)


def test_eps_above_ln2_never_swaps_and_reproduces_the_primary(setup):
    base, policy, prompts, kwargs = setup
    crossed = cross_sample(base, policy, prompts, SwitchRule("js-threshold", eps=math.log(2) + 1e-3), OPTIONS, **kwargs)
    assert [d.tokens for d in crossed] == decode_alone(base, prompts, OPTIONS, **kwargs)
    assert all(not d.swapped_positions for d in crossed)


def test_eps_zero_reproduces_the_intervening_model(setup):
    base, policy, prompts, kwargs = setup
    crossed = cross_sample(base, policy, prompts, SwitchRule("js-threshold", eps=0.0), OPTIONS, **kwargs)
    assert [d.tokens for d in crossed] == decode_alone(policy, prompts, OPTIONS, **kwargs)
    assert all(len(d.swapped_positions) == len(d.tokens) for d in crossed)  # the models differ everywhere


def test_swaps_happen_exactly_where_js_exceeds_eps(setup):
    base, policy, prompts, kwargs = setup
    crossed = cross_sample(base, policy, prompts, SwitchRule("js-threshold", eps=0.15), OPTIONS, **kwargs)
    for d in crossed:
        assert d.swapped_positions == [t for t, js in enumerate(d.js) if js > 0.15]
    assert 0 < sum(len(d.swapped_positions) for d in crossed) < sum(len(d.tokens) for d in crossed)


def test_reverse_direction_swaps_roles(setup):
    base, policy, prompts, kwargs = setup
    reverse = cross_sample(policy, base, prompts, SwitchRule("never"), OPTIONS, **kwargs)
    assert [d.tokens for d in reverse] == decode_alone(policy, prompts, OPTIONS, **kwargs)


def test_random_rule_swaps_the_requested_positions(setup):
    base, policy, prompts, kwargs = setup
    positions = [{0, 3, 7}, {1}, set(), {2, 4, 6, 8}, {29}]
    crossed = cross_sample(base, policy, prompts, SwitchRule("random", positions=positions), OPTIONS, **kwargs)
    for d, wanted in zip(crossed, positions):
        assert set(d.swapped_positions) == {p for p in wanted if p < len(d.tokens)}


def test_top_budget_stays_within_its_budget(setup):
    base, policy, prompts, kwargs = setup
    crossed = cross_sample(base, policy, prompts, SwitchRule("top-budget", budget=0.1, max_new_tokens=30), OPTIONS, **kwargs)
    assert all(len(d.swapped_positions) <= 3 for d in crossed)
    assert any(d.swapped_positions for d in crossed)


def test_entropy_rule_swaps_only_at_uncertain_steps(setup):
    base, policy, prompts, kwargs = setup
    low = cross_sample(base, policy, prompts, SwitchRule("entropy", threshold=0.0), OPTIONS, **kwargs)
    high = cross_sample(base, policy, prompts, SwitchRule("entropy", threshold=100.0), OPTIONS, **kwargs)
    assert all(len(d.swapped_positions) == len(d.tokens) for d in low)
    assert all(not d.swapped_positions for d in high)


def test_decoding_stops_at_eos_and_respects_max_new_tokens(setup):
    """EOS is made certain: it is a token the same seeded run samples when nothing stops it."""
    base, policy, prompts, kwargs = setup
    free = cross_sample(base, policy, prompts, SwitchRule("js-threshold", eps=0.1), OPTIONS, **(kwargs | {"eos_id": -1}))
    assert all(len(d.tokens) == OPTIONS.max_new_tokens for d in free)
    eos = free[0].tokens[5]
    stopped = cross_sample(base, policy, prompts, SwitchRule("js-threshold", eps=0.1), OPTIONS, **(kwargs | {"eos_id": eos}))
    for before, after in zip(free, stopped):
        cut = before.tokens.index(eos) + 1 if eos in before.tokens else len(before.tokens)
        assert after.tokens == before.tokens[:cut]  # stops right after its first EOS; the others go on in lock step
        assert after.swapped_positions == [p for p in before.swapped_positions if p < cut]
    assert len(stopped[0].tokens) <= 6 and stopped[0].tokens[-1] == eos
    alone_free = decode_alone(base, prompts, OPTIONS, **(kwargs | {"eos_id": -1}))
    alone = decode_alone(base, prompts, OPTIONS, **(kwargs | {"eos_id": alone_free[1][3]}))
    eos = alone_free[1][3]
    for before, after in zip(alone_free, alone):
        assert after == (before[: before.index(eos) + 1] if eos in before else before)
    assert alone[1][-1] == eos


def test_kv_cache_decoding_matches_recomputing_the_prefix(setup):
    base, _, prompts, kwargs = setup
    greedy = SamplingOptions(temperature=1e-4, top_p=1.0, max_new_tokens=12)
    tokens = decode_alone(base, prompts[:1], greedy, **kwargs)[0]
    ids = list(prompts[0])
    with torch.no_grad():
        for expected in tokens:
            nxt = int(base(torch.tensor([ids])).logits[0, -1, : kwargs["vocab_size"]].argmax())
            assert nxt == expected
            ids.append(nxt)


def test_unknown_rule_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown switching rule 'sometimes'"):
        SwitchRule("sometimes")
