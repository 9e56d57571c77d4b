"""What every learner's training loop shares: its settings, the LoRA wrap, the accelerate set-up,
one optimiser step, and the progress protocol. A learner owns its loss and its loop; this module
owns the plumbing around them, so SELF-PARAM, the cross-entropy baselines and CORY step alike.

A learner's loop, in order:

    accelerator = make_accelerator()
    student = model if config.full_finetune else with_lora(model, config)
    optimizer = adamw(student, config)
    student, optimizer = accelerator.prepare(student, optimizer)
    advance = progress.phase("training (NAME)", total_steps)
    for batch in ...:
        loss = ...
        optimiser_step(accelerator, student, optimizer, loss, result)
        advance(1)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TrainConfig(BaseModel):
    """The knobs every learner's optimiser loop has. Learner configs add their own fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lr: float = Field(1e-3, gt=0, description="AdamW learning rate, constant; 1e-3 for LoRA, about 5e-5 for full")
    epochs: int = Field(10, ge=1, description="passes over the training set")
    batch_size: int = Field(8, ge=1, description="examples per optimiser step")
    lora_r: int = Field(16, ge=0, description="LoRA rank of the adapter; 0 means full fine-tuning")
    lora_alpha: int | None = Field(None, ge=1, description="LoRA scale numerator (scale = alpha / r); default 2 x lora_r")
    lora_dropout: float = Field(0.0, ge=0, lt=1, description="dropout on the LoRA path")
    max_grad_norm: float = Field(1.0, gt=0, description="gradient clipping")
    seed: int = Field(0, description="shuffling and initialisation")

    @model_validator(mode="before")
    @classmethod
    def _alpha_follows_rank(cls, values: Any) -> Any:
        # A scale of 2 whatever the rank: written into the config, so a manifest shows the value used.
        if isinstance(values, dict) and values.get("lora_alpha") is None:
            try:
                rank = int(values.get("lora_r", cls.model_fields["lora_r"].default))
            except (TypeError, ValueError):
                return values  # the rank's own validation says what is wrong with it
            values = {**values, "lora_alpha": 2 * max(rank, 1)}
        return values

    @property
    def full_finetune(self) -> bool:
        return self.lora_r == 0


class Progress(Protocol):
    """Where long work reports: the CLI draws rich bars, the server logs lines, tests pass nothing."""

    def phase(self, description: str, total: int | None = None) -> Callable[..., None]:
        """Start a phase of ``total`` units; returns ``advance(units=1)``."""

    def note(self, text: str) -> None:
        """One line worth showing between phases."""


class NullProgress:
    """Progress that goes nowhere, so a loop never asks whether anyone is watching."""

    def phase(self, description: str, total: int | None = None) -> Callable[..., None]:
        return lambda advance=1: None

    def note(self, text: str) -> None: ...


@dataclass
class TrainResult:
    """What a training run returns: the trained model and its loss curve."""

    model: Any  # the adapted model: a PeftModel (LoRA) or the fine-tuned model itself
    config: TrainConfig
    losses: list[float] = field(default_factory=list)  # the loss of each optimiser step
    steps: int = 0
    seconds: float = 0.0
    sentences: int = 0  # examples in the training set

    def summary(self) -> dict:
        return {
            "config": self.config.model_dump(),
            "steps": self.steps,
            "seconds": round(self.seconds, 2),
            "sentences": self.sentences,
            "first_loss": round(self.losses[0], 5) if self.losses else None,
            "last_loss": round(self.losses[-1], 5) if self.losses else None,
        }


def make_accelerator():
    """The accelerate set-up every learner uses: the GPU when there is one, else the CPU."""
    import torch
    from accelerate import Accelerator

    return Accelerator(cpu=not torch.cuda.is_available())


def with_lora(model, config: TrainConfig, adapter_name: str = "default"):
    """The model wrapped in fresh LoRA adapters on every linear layer (lm_head excluded)."""
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules="all-linear", task_type="CAUSAL_LM")
    return get_peft_model(model, lora, adapter_name=adapter_name)


def adamw(model, config: TrainConfig):
    """AdamW over the trainable parameters only (the adapter's, under LoRA), no weight decay."""
    import torch

    return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.lr, weight_decay=0.0)


def optimiser_step(accelerator, model, optimizer, loss, result: TrainResult) -> None:
    """Backward, clip, step, zero; record the loss in ``result``."""
    accelerator.backward(loss)
    accelerator.clip_grad_norm_(model.parameters(), result.config.max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    result.losses.append(loss.item())
    result.steps += 1
