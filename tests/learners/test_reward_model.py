"""The reward model learner on the tiny model: the loss against a hand computation, a planted
preference learned, too few pairs refused, and the saved model loaded as an rm: reward."""

from __future__ import annotations

import math

import pytest
import torch

from agent.errors import InvalidInput
from learners import reward_model as rm


def test_the_pair_loss_by_hand():
    loss = rm.pair_loss(torch.tensor([2.0, 0.0]), torch.tensor([0.0, 0.0]))
    assert loss.item() == pytest.approx((-math.log(1 / (1 + math.exp(-2))) + math.log(2)) / 2)


PAIRS = [rm.Pair([{"role": "user", "content": f"Name a colour, number {i}."}], f"Blue, {i}.", f"Red, {i}.")
         for i in range(12)]


def test_a_planted_preference_is_learned_and_the_saved_model_scores_the_same(tiny_dir, tmp_path):
    model, tokenizer = rm.load(tiny_dir)
    before = rm.accuracy(model, tokenizer, PAIRS[8:])
    assert before["accuracy"] == 0.5  # a zero head: every reward 0, every pair a tie
    result = rm.train(model, tokenizer, PAIRS[:8], rm.RewardConfig(epochs=4, lr=1e-3))
    assert result.steps == 32 and result.losses[-1] < result.losses[0]
    trained = result.model
    assert rm.accuracy(trained, tokenizer, PAIRS[8:])["accuracy"] == 1.0  # held out: blue over red
    expected = rm.score(trained, tokenizer, PAIRS[9].prompt, ["Blue, 9.", "Red, 9."])
    rm.save(trained, tokenizer, tmp_path / "rm")
    from graphs.rewards import reward_model

    reward = reward_model(str(tmp_path / "rm"))
    assert reward([PAIRS[9].prompt[0]["content"]] * 2, ["Blue, 9.", "Red, 9."]) == pytest.approx(expected, abs=1e-4)


def test_too_few_pairs_are_refused_before_training(tiny_dir):
    model, tokenizer = rm.load(tiny_dir)
    with pytest.raises(InvalidInput, match="at least 8"):
        rm.train(model, tokenizer, PAIRS[:3], rm.RewardConfig())
