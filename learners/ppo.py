"""PPO for causal language models: the pieces of the classic RLHF recipe (Ziegler et al. 2019;
Stiennon et al. 2020; the "N implementation details of RLHF with PPO" write-up), in its order.

1. Rollouts: a response is sampled for each query; its ids are kept as sampled, never
   re-tokenised from decoded text. (The rollout and update loop arrive with CORY, issue 18.)
2. Per-token rewards: the task score sits on the last response token; every token pays
   ``beta`` times its KL to the frozen reference, in one of two forms:
     kl    log p(token) - log q(token), the sampled token only (the recipe's default)
     full  sum over the vocabulary of p * (log p - log q), the exact KL of the two distributions
   A response cut at the token limit (no end-of-sequence) may be given a fixed penalty instead
   of its score.
3. Advantages: GAE over the response tokens, then whitened over the batch (masked).
4. Losses: the clipped policy loss and the clipped value loss, on the response tokens only.
5. The adaptive KL controller moves ``beta`` towards a target KL.

Every function takes a ``mask`` (1 on response tokens, 0 on padding) so that padded batches are
exact. Departures from the recipe: none in these pieces.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    if dim is None:
        return (values * mask).sum() / mask.sum().clamp(min=1)
    return (values * mask).sum(dim) / mask.sum(dim).clamp(min=1)


def whiten(values: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
    """Zero mean (unless ``shift_mean`` is False), unit variance over the masked entries."""
    mean = masked_mean(values, mask)
    variance = masked_mean((values - mean) ** 2, mask)
    whitened = (values - mean) * torch.rsqrt(variance + 1e-8)
    return (whitened if shift_mean else whitened + mean) * mask


# -- 2. rewards ---------------------------------------------------------------------------------


def sampled_kl(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """The ``kl`` form: log p - log q of each sampled token, (batch, tokens)."""
    return logprobs - ref_logprobs


def full_kl(logits: torch.Tensor, ref_logits: torch.Tensor) -> torch.Tensor:
    """The ``full`` form: KL(p || q) over the vocabulary at each position, (batch, tokens)."""
    logp, logq = torch.log_softmax(logits.float(), -1), torch.log_softmax(ref_logits.float(), -1)
    return (logp.exp() * (logp - logq)).sum(-1)


def token_rewards(scores: torch.Tensor, kl: torch.Tensor, mask: torch.Tensor, beta: float) -> torch.Tensor:
    """-beta * KL on every response token, plus each response's score on its last token."""
    rewards = -beta * kl * mask
    last = mask.sum(1).long() - 1  # responses are left-aligned: the last masked position
    rows = torch.arange(len(scores))
    rewards[rows, last.clamp(min=0)] += scores * (last >= 0)
    return rewards


def truncation_penalty(scores: torch.Tensor, truncated: torch.Tensor, penalty: float | None) -> torch.Tensor:
    """A response cut at the token limit gets ``penalty`` instead of its score (None: no change)."""
    return scores if penalty is None else torch.where(truncated, torch.full_like(scores, penalty), scores)


# -- 3. advantages --------------------------------------------------------------------------------


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0,
        lam: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over (batch, tokens); returns (advantages, returns).
    The value after a response's last token is 0: the episode ends there."""
    advantages = torch.zeros_like(rewards)
    running = torch.zeros(rewards.shape[0], dtype=rewards.dtype)
    for t in reversed(range(rewards.shape[1])):
        following = values[:, t + 1] * mask[:, t + 1] if t + 1 < rewards.shape[1] else torch.zeros_like(running)
        delta = rewards[:, t] + gamma * following - values[:, t]
        running = (delta + gamma * lam * running) * mask[:, t]
        advantages[:, t] = running
    return advantages, (advantages + values) * mask


# -- 4. losses -----------------------------------------------------------------------------------


def policy_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
                clip: float = 0.2) -> tuple[torch.Tensor, torch.Tensor]:
    """The clipped surrogate, to minimise; returns (loss, share of tokens clipped)."""
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped, clipped = -advantages * ratio, -advantages * ratio.clamp(1 - clip, 1 + clip)
    return masked_mean(torch.maximum(unclipped, clipped), mask), masked_mean((clipped > unclipped).float(), mask)


def value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor,
               clip: float = 0.2) -> torch.Tensor:
    """Half the larger of the squared errors of the value and of its clipped update."""
    clipped = old_values + (values - old_values).clamp(-clip, clip)
    return 0.5 * masked_mean(torch.maximum((values - returns) ** 2, (clipped - returns) ** 2), mask)


# -- 5. the KL controller --------------------------------------------------------------------------


@dataclass
class AdaptiveKL:
    """Ziegler et al.'s controller: beta grows when the KL is above target, shrinks below it,
    by at most 20% per ``horizon`` sampled responses."""

    beta: float = 0.05
    target: float = 6.0
    horizon: int = 10_000

    def update(self, kl: float, responses: int) -> float:
        error = max(-0.2, min(0.2, kl / self.target - 1))
        self.beta *= 1 + error * responses / self.horizon
        return self.beta
