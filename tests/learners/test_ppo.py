"""PPO's pieces against hand computations (learners/ppo.py)."""

import math

import pytest
import torch

from learners import ppo


def test_gae_matches_a_hand_computation_and_stops_at_the_mask():
    rewards = torch.tensor([[0.0, 0.0, 1.0, 0.0]])
    values = torch.tensor([[0.5, 0.4, 0.3, 9.0]])  # the last position is padding: never used
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    gamma, lam = 0.9, 0.8
    d2 = 1.0 - 0.3  # the episode ends after token 2: no value follows
    d1 = 0.0 + gamma * 0.3 - 0.4
    d0 = 0.0 + gamma * 0.4 - 0.5
    a2 = d2
    a1 = d1 + gamma * lam * a2
    a0 = d0 + gamma * lam * a1
    advantages, returns = ppo.gae(rewards, values, mask, gamma, lam)
    assert advantages[0].tolist() == pytest.approx([a0, a1, a2, 0.0])
    assert returns[0].tolist() == pytest.approx([a0 + 0.5, a1 + 0.4, a2 + 0.3, 0.0])


def test_rewards_put_the_score_on_the_last_response_token_and_charge_kl_on_every_one():
    kl = torch.tensor([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    rewards = ppo.token_rewards(torch.tensor([2.0, -1.0]), kl, mask, beta=0.5)
    torch.testing.assert_close(rewards, torch.tensor([[-0.05, -0.1 + 2.0, 0.0], [-0.2, -0.25, -0.3 - 1.0]]))
    scores = ppo.truncation_penalty(torch.tensor([2.0, 3.0]), torch.tensor([False, True]), -1.0)
    assert scores.tolist() == [2.0, -1.0]
    assert ppo.truncation_penalty(torch.tensor([2.0]), torch.tensor([True]), None).tolist() == [2.0]


def test_the_kl_penalty_is_zero_when_the_policy_is_the_reference():
    logits = torch.randn(2, 3, 11)
    assert torch.allclose(ppo.full_kl(logits, logits), torch.zeros(2, 3), atol=1e-6)
    logprobs = torch.log_softmax(logits, -1)[..., 0]
    assert torch.equal(ppo.sampled_kl(logprobs, logprobs), torch.zeros(2, 3))
    p, q = torch.tensor([[[math.log(0.5), math.log(0.5)]]]), torch.tensor([[[math.log(0.9), math.log(0.1)]]])
    expected = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    assert ppo.full_kl(p, q).item() == pytest.approx(expected)


def test_the_clipped_policy_loss_matches_a_hand_computation():
    old = torch.zeros(1, 3)
    new = torch.log(torch.tensor([[1.5, 0.5, 1.1]]))  # ratios 1.5, 0.5, 1.1
    advantages = torch.tensor([[1.0, 1.0, -1.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0]])
    loss, clipped = ppo.policy_loss(new, old, advantages, mask, clip=0.2)
    # token 0: max(-1.5, -1.2) = -1.2 (clipped); token 1: max(-0.5, -0.8) = -0.5; token 2: max(1.1, 1.1) = 1.1
    assert loss.item() == pytest.approx((-1.2 - 0.5 + 1.1) / 3)
    assert clipped.item() == pytest.approx(1 / 3)


def test_the_clipped_value_loss_matches_a_hand_computation():
    values, old, returns = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.5, 0.0]]), torch.tensor([[0.0, 0.1]])
    loss = ppo.value_loss(values, old, returns, torch.tensor([[1.0, 0.0]]), clip=0.2)
    # the clipped value is 0.7: max(1.0**2, 0.7**2) = 1.0, halved; the padded token does not count
    assert loss.item() == pytest.approx(0.5)


def test_whitening_is_over_the_masked_entries_only():
    values = torch.tensor([[1.0, 3.0, 100.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    torch.testing.assert_close(ppo.whiten(values, mask), torch.tensor([[-1.0, 1.0, 0.0]]), atol=1e-4, rtol=0)


def test_the_kl_controller_moves_beta_towards_the_target_by_at_most_a_fifth():
    controller = ppo.AdaptiveKL(beta=0.1, target=6.0, horizon=100)
    assert controller.update(12.0, 100) == pytest.approx(0.12)  # far above: +20%
    assert controller.update(6.0, 100) == pytest.approx(0.12)  # on target: unchanged
    assert controller.update(3.0, 50) == pytest.approx(0.12 * (1 - 0.2 * 0.5))


@pytest.fixture(scope="module")
def tiny(tiny_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_dir), AutoModelForCausalLM.from_pretrained(tiny_dir)


def test_bad_configurations_and_rewards_are_refused_before_any_training(tiny):
    from pydantic import ValidationError

    from agent.errors import InvalidInput

    tokenizer, model = tiny
    with pytest.raises(ValidationError, match="mini_batch 8 is larger than batch_size 4"):
        ppo.PPOConfig(batch_size=4, mini_batch=8)
    with pytest.raises(InvalidInput, match="at least one query"):
        ppo.train(model, tokenizer, [], lambda q, r: [1.0] * len(r))
    from learners.training import with_lora

    policy = with_lora(model, ppo.PPOConfig())
    with pytest.raises(InvalidInput, match="NaN"):
        ppo.train(policy, tokenizer, ["Hello"], lambda q, r: [float("nan")] * len(r),
                  ppo.PPOConfig(batch_size=2, mini_batch=2, max_new_tokens=4))
    assert all(torch.count_nonzero(p) == 0 for n, p in policy.named_parameters() if "lora_B" in n)  # untouched
    policy.unload()


def test_a_rollout_keeps_the_sampled_ids_and_ends_each_response_at_its_first_eos(tiny):
    tokenizer, model = tiny
    queries = [tokenizer("Hello there", add_special_tokens=False)["input_ids"], [tokenizer.eos_token_id - 1]]
    torch.manual_seed(0)
    batch = ppo.rollout(model, tokenizer, queries, ppo.PPOConfig(max_new_tokens=6))
    assert batch.ids.shape == (2, batch.queries + batch.mask.shape[1]) and batch.queries == len(queries[0])
    assert batch.ids[1, : batch.queries - 1].tolist() == [tokenizer.pad_token_id or tokenizer.eos_token_id] * (
        batch.queries - 1)  # left-padded query
    for row in range(2):
        response, mask = batch.response_ids[row].tolist(), batch.mask[row].tolist()
        kept = response[: int(sum(mask))]
        assert tokenizer.eos_token_id not in kept[:-1]  # nothing after a first end of sequence
        assert batch.truncated[row] == (tokenizer.eos_token_id not in kept)


def test_an_iteration_reports_its_stats_and_moves_only_the_adapter_and_value_head(tiny):
    tokenizer, model = tiny
    before = {n: p.clone() for n, p in model.named_parameters()}
    result = ppo.train(model, tokenizer, ["Hello", "Hi"], lambda q, r: [float(len(x) % 3) for x in r],
                       ppo.PPOConfig(epochs=2, batch_size=4, mini_batch=2, max_new_tokens=4, lr=1e-2))
    assert [s["iteration"] for s in result.stats] == [1, 2]
    assert set(result.stats[0]) == {"iteration", "reward", "kl", "entropy", "clip_fraction", "value_loss",
                                    "response_length", "beta"}
    assert result.stats[0]["kl"] == 0.0  # the first rollout's policy is the reference
    trained = dict(result.model.named_parameters())
    assert any(torch.count_nonzero(p) for n, p in trained.items() if "lora_B" in n)
    base = result.model.unload()  # the reference stays frozen: the base weights are as they were
    assert all(torch.equal(before[n], p) for n, p in base.named_parameters())


@pytest.mark.embedded
def test_ppo_raises_a_planted_reward_on_the_embedded_model(planted):
    model = planted.model()
    before = planted.rate(model)
    result = ppo.train(model, planted.tokenizer, [planted.query], planted.reward,
                       # A step 10x the default learns the planted rule within 3 short iterations.
                       ppo.PPOConfig(epochs=3, batch_size=4, max_new_tokens=4, lr=1e-3, target_kl=None))
    after = planted.rate(result.model)
    assert after >= before + 0.2, (before, after, result.stats)
