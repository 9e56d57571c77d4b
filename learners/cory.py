"""CORY: Coevolving with the Other You (Ma et al., NeurIPS 2024, arXiv 2410.06101), sequential
cooperative multi-agent RL fine-tuning, on PPO's components (``learners/ppo.py``).

Run it: ``cory.train(model, tokenizer, queries, reward, CORYConfig())``; the benchmark is
``examples/reproduce_cory.py``; the nightly "refine" step calls it with the configured rewards.

In the paper's order:

1. Two copies of the model: a pioneer, which answers the query, and an observer, which answers
   the same query having seen the pioneer's answer. Here they are two LoRA adapters on one frozen
   base, each with its own value head and optimiser; the base with both adapters disabled is the
   reference of both KL penalties (one copy of the weights).
2. The pioneer samples y1 for the query q.
3. Knowledge transfer: the observer's prompt carries the pioneer's answer, ids concatenated as
   sampled (never re-tokenised): ``Reference: `` q y1 ``\\n`` q, then the observer samples y2.
4. Task rewards r1 = R(q, y1) and r2 = R(q, y2), both scored on the original query.
5. The collective reward r = r1 + r2 is given to both agents.
6. Each agent takes its own PPO update on its own rollout: the pioneer on (q, y1), the observer
   on (its prompt, y2).
7. Role exchange: every ``swap_every`` iterations the adapters exchange roles, by exchanging
   which adapter name plays which role; no weight is copied or reloaded.
8. Deployment: the adapter that last played pioneer answers alone.

Departures, and what this text decided where the paper is silent:
- LoRA adapters on one base instead of two full copies (the paper's GSM8K runs use LoRA too).
- The observer's template is the "Reference:" form for any query (the paper's IMDB code uses
  'I can make this sentence "{q y1}" more positive: {q}'; its GSM8K text puts "Reference:"
  between question and "Answer:"): replaying q y1 before q works for raw prefixes, questions and
  chat-formatted prompts alike, with no knowledge of where a prompt's answer begins.
- State at a role exchange: the reference code rebuilds both PPO trainers, which resets the
  optimisers and the KL controllers (``swap_state="reset"``, the default). ``"weights"`` keeps
  each adapter's optimiser and KL controller with the adapter, whichever role it plays next.
- Stats per iteration are kept for both roles (``pioneer_*`` and ``observer_*``) and for the
  collective reward; the pioneer's reward and KL are what a deployed policy shows.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from learners.ppo import (
    AdaptiveKL,
    PPOConfig,
    Reward,
    RunningMoments,
    check_scores,
    encode,
    iteration_stats,
    kl_per_response,
    new_value_head,
    prepare,
    rollout,
    scaled,
    update,
)
from learners.training import NullProgress, Progress, adamw, with_lora

if TYPE_CHECKING:  # torch loads when a learner runs, not when settings import its config
    import torch

ADAPTERS = ("cory_a", "cory_b")  # the pioneer at the start, then the observer


class CORYConfig(PPOConfig):
    """PPO's knobs, for each agent, plus the role exchange."""

    swap_every: int = Field(5, ge=1, description="iterations between role exchanges (the paper's T_REx)")
    swap_state: Literal["reset", "weights"] = Field(
        "reset", description="at an exchange: reset optimisers and KL controllers (the reference code), "
                             "or keep each with its adapter")
    reference_prefix: str = Field("Reference: ", description="what precedes the pioneer's query and answer")
    reference_separator: str = Field("\n", description="between the pioneer's answer and the query repeated")


@dataclass
class Agent:
    """One adapter and what trains it."""

    adapter: str
    value_head: torch.nn.Module
    optimizer: Any = None
    controller: AdaptiveKL | None = None
    moments: RunningMoments = field(default_factory=RunningMoments)


@dataclass
class CORYResult:
    model: Any  # the PeftModel with both adapters; ``pioneer`` is active
    pioneer: str  # the adapter that last played pioneer: the one to deploy
    agents: dict[str, Agent]  # by adapter name: value head, optimiser, KL controller
    config: CORYConfig
    stats: list[dict[str, Any]] = field(default_factory=list)  # one per iteration
    seconds: float = 0.0

    def summary(self) -> dict:
        return {"config": self.config.model_dump(), "iterations": len(self.stats), "pioneer": self.pioneer,
                "seconds": round(self.seconds, 2), "first": self.stats[0] if self.stats else None,
                "last": self.stats[-1] if self.stats else None}


def observer_queries(tokenizer, queries: Sequence[Sequence[int]], pioneer_ids: torch.Tensor,
                     mask: torch.Tensor, config: CORYConfig) -> list[list[int]]:
    """Step 3: each observer prompt, from the pioneer's answer ids exactly as sampled."""
    prefix = tokenizer(config.reference_prefix, add_special_tokens=False)["input_ids"]
    separator = tokenizer(config.reference_separator, add_special_tokens=False)["input_ids"]
    return [prefix + list(q) + answer[: int(m.sum())].tolist() + separator + list(q)
            for q, answer, m in zip(queries, pioneer_ids, mask)]


def _reset(agent: Agent, policy, config: CORYConfig) -> None:
    import torch

    policy.set_adapter(agent.adapter)  # peft marks the active adapter's parameters (only) trainable
    agent.optimizer = adamw(torch.nn.ModuleList([policy, agent.value_head]), config)
    agent.controller = AdaptiveKL(config.beta, config.target_kl or 1.0, config.kl_horizon)


def _step(policy, agent: Agent, tokenizer, queries: Sequence[Sequence[int]], config: CORYConfig):
    policy.set_adapter(agent.adapter)  # the active adapter is the one that samples and trains
    return rollout(policy, tokenizer, queries, config)


def train(model, tokenizer, queries: Sequence[str], reward: Reward, config: CORYConfig = CORYConfig(),
          progress: Progress | None = None) -> CORYResult:
    """CORY on ``queries`` (prompt texts) with the task ``reward``; returns both adapters."""
    import torch

    encoded = encode(tokenizer, queries)
    torch.manual_seed(config.seed)
    progress = progress or NullProgress()
    policy = with_lora(model, config, adapter_name=ADAPTERS[0])
    policy.add_adapter(ADAPTERS[1], policy.peft_config[ADAPTERS[0]])
    agents = [Agent(name, new_value_head(policy)) for name in ADAPTERS]
    for agent in agents:
        _reset(agent, policy, config)
    pioneer, observer = agents
    result = CORYResult(policy, pioneer.adapter, {a.adapter: a for a in agents}, config)
    advance, started = progress.phase("training (CORY)", config.epochs), time.perf_counter()
    for iteration in range(config.epochs):
        if iteration and iteration % config.swap_every == 0:  # 7. role exchange
            pioneer, observer = observer, pioneer
            if config.swap_state == "reset":
                for agent in agents:
                    _reset(agent, policy, config)
        picks = [(iteration * config.batch_size + i) % len(encoded) for i in range(config.batch_size)]
        texts = [queries[i] for i in picks]
        policy.eval()
        first = _step(policy, pioneer, tokenizer, [encoded[i] for i in picks], config)  # 2.
        seen = observer_queries(tokenizer, [encoded[i] for i in picks], first.response_ids, first.mask, config)
        second = _step(policy, observer, tokenizer, seen, config)  # 3.
        r1 = check_scores(reward(texts, tokenizer.batch_decode(first.response_ids, skip_special_tokens=True)))
        r2 = check_scores(reward(texts, tokenizer.batch_decode(second.response_ids, skip_special_tokens=True)))
        collective = r1 + r2  # 5.
        row: dict[str, Any] = {"iteration": iteration + 1, "pioneer_adapter": pioneer.adapter,
                               "collective_reward": round(collective.mean().item(), 4)}
        for role, agent, batch, own in (("pioneer", pioneer, first, r1), ("observer", observer, second, r2)):
            policy.set_adapter(agent.adapter)  # 6. each agent's own update on the collective reward
            prepared = prepare(policy, agent.value_head, batch, own, scaled(collective, batch, agent.moments, config),
                               config, agent.controller.beta)
            updated = update(policy, agent.value_head, agent.optimizer, prepared, config)
            row |= {f"{role}_{k}": v for k, v in iteration_stats(prepared, updated, agent.controller.beta).items()}
            if config.target_kl is not None:
                agent.controller.update(kl_per_response(prepared), len(picks))
        result.stats.append(row)
        advance(1)
    policy.set_adapter(pioneer.adapter)  # 8.
    result.pioneer, result.seconds = pioneer.adapter, time.perf_counter() - started
    return result
