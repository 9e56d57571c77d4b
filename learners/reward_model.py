"""A reward model from preference pairs: the chat model with a scalar head, trained with the
Bradley-Terry loss of InstructGPT (Ouyang et al. 2022, section 3.5), as TRL's RewardTrainer
computes it.

    r(x, y) = the head's score on the last token of the conversation (x, y)
    loss    = -log sigmoid(r(x, y_chosen) - r(x, y_rejected))

The refine step trains one on the cleaned view's pairs only (feedback that survived cleaning) and
passes it to CORY as the ``feedback`` reward (``graphs.rewards``).

Departures from TRL's trainer, for a CPU and a few dozen pairs:
  - LoRA on every linear layer of the base, plus the new head, not full fine-tuning;
  - the head starts at zero, so every reward starts at 0 and only the loss moves it;
  - one pair per step (chosen and rejected in one batch of two), no reward centring.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from agent.errors import InvalidInput
from agent.llm.protocol import Message
from learners.training import NullProgress, Progress, TrainConfig, TrainResult

if TYPE_CHECKING:
    import torch


class RewardConfig(TrainConfig):
    lr: float = Field(1e-4, gt=0)
    epochs: int = Field(3, ge=1)
    batch_size: int = Field(1, ge=1, le=1, description="pairs per step: one")
    lora_r: int = Field(8, ge=1)
    max_length: int = Field(512, ge=16, description="tokens of one conversation at most (its end is kept)")
    min_pairs: int = Field(8, ge=2, description="fewer pairs than this: no reward model")


@dataclass(frozen=True)
class Pair:
    prompt: list[Message]
    chosen: str
    rejected: str


def pair_loss(chosen: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
    """-log sigmoid(r_chosen - r_rejected), averaged."""
    import torch

    return -torch.nn.functional.logsigmoid(chosen - rejected).mean()


def load(path: str | Path, device: str = "cpu"):
    """The base as a sequence classifier with one zero-initialised score, and its tokenizer."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    model = AutoModelForSequenceClassification.from_pretrained(str(path), num_labels=1, dtype=torch.float32)
    model.config.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    with torch.no_grad():
        model.score.weight.zero_()
    return model.to(device), tokenizer


def encode(tokenizer, prompt: Sequence[Message], answer: str, max_length: int) -> list[int]:
    """The conversation's ids as the chat template writes it, its end kept when too long."""
    ids = tokenizer.apply_chat_template([*prompt, {"role": "assistant", "content": answer}], tokenize=True)
    ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
    return list(ids)[-max_length:]


def train(model, tokenizer, pairs: Sequence[Pair], config: RewardConfig, progress: Progress | None = None,
          stop=None) -> TrainResult:
    """Train ``model`` (from ``load``) on ``pairs``; returns the LoRA-wrapped model and its losses."""
    import random
    import time

    import torch
    from peft import LoraConfig, get_peft_model

    if len(pairs) < config.min_pairs:
        raise InvalidInput(f"{len(pairs)} preference pairs; a reward model needs at least {config.min_pairs}")
    torch.manual_seed(config.seed)
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules="all-linear", task_type="SEQ_CLS")  # SEQ_CLS: the head trains too
    model = get_peft_model(model, lora)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.lr)
    result = TrainResult(model=model, config=config, sentences=2 * len(pairs))
    order = list(range(len(pairs)))
    advance = (progress or NullProgress()).phase("training the reward model", config.epochs * len(pairs))
    start, device = time.perf_counter(), next(model.parameters()).device
    model.train()
    for _ in range(config.epochs):
        random.Random(config.seed + result.steps).shuffle(order)
        for i in order:
            if stop is not None and stop.is_set():
                break
            chosen, rejected = (encode(tokenizer, pairs[i].prompt, y, config.max_length)
                                for y in (pairs[i].chosen, pairs[i].rejected))
            loss = pair_loss(*(model(input_ids=torch.tensor([ids], device=device)).logits[0, 0]
                               for ids in (chosen, rejected)))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            result.losses.append(loss.item())
            result.steps += 1
            advance()
    model.eval()
    result.seconds = time.perf_counter() - start
    return result


def score(model, tokenizer, prompt: Sequence[Message], answers: Sequence[str], max_length: int = 512) -> list[float]:
    import torch

    device = next(model.parameters()).device
    with torch.inference_mode():
        return [float(model(input_ids=torch.tensor([encode(tokenizer, prompt, a, max_length)], device=device))
                      .logits[0, 0]) for a in answers]


def accuracy(model, tokenizer, pairs: Sequence[Pair]) -> dict[str, Any]:
    """Share of pairs whose chosen answer scores above the rejected one (ties count half)."""
    wins = 0.0
    for pair in pairs:
        chosen, rejected = score(model, tokenizer, pair.prompt, [pair.chosen, pair.rejected])
        wins += 1.0 if chosen > rejected else 0.5 if chosen == rejected else 0.0
    return {"pairs": len(pairs), "accuracy": round(wins / len(pairs), 4) if pairs else None}


def save(model, tokenizer, folder: Path) -> None:
    """The adapter merged into the base, saved as an ordinary sequence-classification model (``rm:FOLDER``)."""
    merged = model.merge_and_unload() if hasattr(model, "merge_and_unload") else model
    folder.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
