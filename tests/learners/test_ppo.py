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
