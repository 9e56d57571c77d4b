"""Plain cross-entropy fine-tuning: the baselines SELF-PARAM is measured against.

FT(S) trains on the answers of the same question-answer sentences SELF-PARAM distils (the
paper's "fine-tuning on the target set"); FT(C) is language modelling on the raw experience text.
Same LoRA, optimiser and loop shape as ``learners.selfparam.train`` (both stand on
``learners.training``), so a comparison at equal epochs is a comparison at equal compute per sentence.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from learners import training
from learners.training import NullProgress, Progress, TrainConfig, TrainResult


def train_ce(
    model,
    tokenizer,
    examples: Sequence[tuple[str, str]],
    config: TrainConfig = TrainConfig(),
    progress: Progress = NullProgress(),
) -> TrainResult:
    """Minimise cross-entropy of each ``target`` given its ``prompt`` (an empty prompt: the whole
    text is the target, as language modelling). Prompt and target are tokenised separately."""
    if not examples:
        raise ValueError("fine-tuning needs at least one example")
    torch.manual_seed(config.seed)
    order = random.Random(config.seed)
    accelerator = training.make_accelerator()
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    student = model if config.full_finetune else training.with_lora(model, config)
    student.train()
    optimizer = training.adamw(student, config)
    student, optimizer = accelerator.prepare(student, optimizer)

    def encode(rows: Sequence[tuple[str, str]]):
        seqs, labels = [], []
        for prompt, target in rows:
            p = tokenizer(prompt, add_special_tokens=False)["input_ids"] if prompt else []
            t = tokenizer(target, add_special_tokens=False)["input_ids"]
            seqs.append(p + t)
            labels.append([-100] * len(p) + t)
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        target = torch.full((len(seqs), width), -100, dtype=torch.long)
        for i, (s, y) in enumerate(zip(seqs, labels)):
            ids[i, : len(s)], mask[i, : len(s)], target[i, : len(y)] = torch.tensor(s), 1, torch.tensor(y)
        return ids.to(accelerator.device), mask.to(accelerator.device), target.to(accelerator.device)

    result = TrainResult(model=student, config=config, sentences=len(examples))
    advance = progress.phase("training (cross-entropy)", math.ceil(len(examples) / config.batch_size) * config.epochs)
    started = time.perf_counter()
    for _ in range(config.epochs):
        shuffled = list(examples)
        order.shuffle(shuffled)
        for first in range(0, len(shuffled), config.batch_size):
            ids, mask, target = encode(shuffled[first : first + config.batch_size])
            logits = student(input_ids=ids, attention_mask=mask).logits[:, :-1]  # position t predicts t + 1
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), target[:, 1:].reshape(-1),
                                   ignore_index=-100)
            training.optimiser_step(accelerator, student, optimizer, loss, result)
            advance(1)
    result.seconds = time.perf_counter() - started
    result.model = accelerator.unwrap_model(student).eval()
    return result
