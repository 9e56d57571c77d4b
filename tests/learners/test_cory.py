"""CORY's loop (learners/cory.py): the observer's prompt, the role exchange, the frozen reference,
refusals before training. The rewards here are plain rules, planted to see control flow."""

import pytest
import torch

from learners import cory


@pytest.fixture()
def tiny(tiny_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_dir), AutoModelForCausalLM.from_pretrained(tiny_dir)


def small(**overrides) -> cory.CORYConfig:
    return cory.CORYConfig(**{"epochs": 3, "swap_every": 2, "batch_size": 4, "mini_batch": 2, "max_new_tokens": 4,
                              "lr": 1e-2, **overrides})


def by_length(queries, responses):
    return [float(len(r) % 3) for r in responses]


def test_the_observer_prompt_carries_the_pioneer_answer_ids_as_sampled(tiny, monkeypatch):
    tokenizer, model = tiny
    calls = []
    real = cory.rollout

    def spy(policy, tokenizer_, queries, config):  # the real rollout, recorded
        batch = real(policy, tokenizer_, queries, config)
        calls.append((policy.active_adapter, [list(q) for q in queries], batch))
        return batch

    monkeypatch.setattr(cory, "rollout", spy)
    cory.train(model, tokenizer, ["Hello", "Hi there"], by_length, small(epochs=1))
    (first_adapter, queries, first), (second_adapter, seen, _) = calls
    assert (first_adapter, second_adapter) == cory.ADAPTERS
    prefix = tokenizer("Reference: ", add_special_tokens=False)["input_ids"]
    separator = tokenizer("\n", add_special_tokens=False)["input_ids"]
    for query, answer, mask, observed in zip(queries, first.response_ids, first.mask, seen):
        answer = answer[: int(mask.sum())].tolist()
        assert observed == prefix + query + answer + separator + query


@pytest.mark.parametrize("swap_state, steps", [("weights", 12), ("reset", 4)])
def test_a_role_exchange_swaps_adapters_in_place_and_keeps_or_resets_their_state(tiny, swap_state, steps):
    tokenizer, model = tiny
    before = {n: p.clone() for n, p in model.named_parameters()}
    result = cory.train(model, tokenizer, ["Hello", "Hi"], by_length, small(swap_state=swap_state))
    a, b = cory.ADAPTERS
    assert [row["pioneer_adapter"] for row in result.stats] == [a, a, b]  # exchanged after swap_every=2
    assert result.pioneer == b and result.model.active_adapter == b
    for agent in result.agents.values():  # 2 ppo_epochs x 2 minibatches per iteration
        state = agent.optimizer.state
        assert state and {int(s["step"]) for s in state.values()} == {steps}
    for adapter in cory.ADAPTERS:  # both adapters trained, neither copied into the other
        assert any(torch.count_nonzero(p) for n, p in result.model.named_parameters() if f"lora_B.{adapter}." in n)
    trained = dict(result.model.named_parameters())
    assert not torch.equal(trained[next(n for n in trained if f"lora_B.{a}." in n)],
                           trained[next(n for n in trained if f"lora_B.{b}." in n)])
    base = result.model.unload()  # the reference, the base with both adapters off, stayed frozen
    assert all(torch.equal(before[n], p) for n, p in base.named_parameters())


def test_bad_configurations_are_refused_before_any_training(tiny):
    from pydantic import ValidationError

    from agent.errors import InvalidInput

    tokenizer, model = tiny
    with pytest.raises(ValidationError, match="swap_every"):
        cory.CORYConfig(swap_every=0)
    with pytest.raises(InvalidInput, match="at least one query"):
        cory.train(model, tokenizer, [], by_length, small())
    calls = []

    def nan_for_the_observer(queries, responses):
        calls.append(len(responses))
        return [float("nan") if len(calls) == 2 else 1.0] * len(responses)

    with pytest.raises(InvalidInput, match="NaN"):
        cory.train(model, tokenizer, ["Hello"], nan_for_the_observer, small())
    assert calls == [4, 4]
    assert not hasattr(model, "peft_config") or all(
        torch.count_nonzero(p) == 0 for n, p in model.named_parameters() if "lora_B" in n)


@pytest.mark.embedded
def test_cory_raises_a_planted_reward_on_the_embedded_model(planted):
    model = planted.model()
    before = planted.rate(model)
    result = cory.train(model, planted.tokenizer, [planted.query], planted.reward,
                        # A step 10x the default learns the planted rule within 3 short iterations (both roles played).
                        cory.CORYConfig(epochs=3, swap_every=2, batch_size=4, max_new_tokens=4, lr=1e-3, target_kl=None))
    after = planted.rate(result.model)  # the adapter that last played pioneer, alone
    assert after >= before + 0.2, (before, after, result.stats)
