"""SELF-PARAM: put an experience into the weights by distilling the model that sees it into the
model that does not (Wang et al., "Self-Updatable Large Language Models by Integrating Context
into Model Parameters", arXiv 2410.00487; notes in ../shared/research/papers.md, section 1).

A library recipe: ``target_set`` builds S, ``train`` runs the algorithm (see its tests in
tests/learners/test_selfparam.py for the smallest complete use).

The recipe, in the paper's order:
  1. inputs: the model, experiences x, their question-answer pairs, and unrelated replay pairs;
  2. the target set S: each pair rendered as one sentence s in the model's own chat format;
  3. teacher: the frozen model with x in its prompt, next-token distributions over s;
  4. student: the same model without x (LoRA adapters on the same weights by default);
  5. loss: token-level forward KL(teacher || student), summed over the vocabulary;
  6. optimise over S for some epochs; the adapted model replaces the old one.
Batch injection is S built from many experiences, each sentence's teacher seeing its own x;
sequential injection is repeated calls.

Departures from the paper, on purpose:
  1. The QA pairs come from rules (in-place wh-questions about names, numbers and dates,
     ``learners.questions``) and from the model itself or a configured generator
     (``learners.synthesis``), filtered by a self-check, instead of GPT-4o-mini; answers are the
     model's own full sentences, because span answers do not transfer under KL
     (selfparam_feasibility.md).
  2. Replay (the paper's unrelated SlimPajama sentences) is the model's own answers to generic
     prompts, in chat format; its teacher is the model with no experience at all. Every other
     prompt is a short factual question, the shape of the training questions, so that an adapter
     does not answer every such question with its own fact's names.
  3. The loss is averaged over sentence tokens instead of summed: a change of scale only.
  4. LoRA by default; the teacher is then the base with adapters disabled, so one copy of the
     weights serves both. Full fine-tuning keeps a frozen copy as the teacher.
  5. Sequential injection is not repeated training of one adapter: each call trains a fresh
     adapter from the base on a few experiences, kept frozen, and a turn is answered with the one
     holding what it is about (``graphs.routing``). On the 135M model one adapter holds only a
     few facts side by side, so repeated injection into one adapter lost every earlier night
     (README, "Knowledge that accumulates"). The router's index is extra storage at inference,
     which the paper avoids; the prompt still never carries the experience.
  6. Cross-entropy on the written answers is added to the KL (``answer_ce``, weight 1), only on
     answers that say nothing their experience does not (``learners.synthesis.grounded``: rule
     answers, recitations): the KL alone pulls the student towards a 135M teacher that does not
     say what a preference is about. A larger answerer's answers are learned the same way
     (sequence-level distillation: across two vocabularies token-level KL is not possible). A
     model-written answer that adds words of its own is left to the KL, which corrects it
     towards the teacher that reads the experience, instead of being learned token by token.
     On the embedded model's 10 nights this took the served share from 0.35 to 0.50 of in
     context and the nights promoted from 6 to 9 (README, "Answers by rule").
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from pydantic import Field

from learners.synthesis import grounded
from learners.training import (
    NullProgress,
    Progress,
    TrainConfig,
    TrainResult,
    adamw,
    make_accelerator,
    optimiser_step,
    with_lora,
)

if TYPE_CHECKING:
    import torch

# torch is imported where it is used: the settings read this file's config on every command, and
# a command that trains nothing should not wait for torch.

# -- config ------------------------------------------------------------------------------------


class SelfParamConfig(TrainConfig):
    """The shared loop's knobs (``learners.training.TrainConfig``) and the teacher's cache."""

    teacher_cache_mb: int = Field(2048, ge=0, description="memory for the teacher's log-probs, kept after "
                                                          "their first pass; 0 recomputes them every step")
    answer_ce: float = Field(1.0, ge=0, description="weight of cross-entropy on the answers that say only what "
                             "their experience says, added to the KL: the student also learns those answers' own "
                             "tokens (sequence-level distillation from a larger answerer); 0 is the paper's loss")


# -- the target set S --------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetSentence:
    """One element of S: the sentence, and the two prompts it follows.

    The teacher reads ``teacher_prefix + text``, the student ``student_prefix + text``. Replay
    sentences have identical prefixes (their teacher sees no experience).
    """

    teacher_prefix: str
    student_prefix: str
    text: str  # "{question}<end>\n<assistant>\n{answer}<end>\n" in the model's chat format
    experience_id: int | None = None  # None for replay
    answer_start: int | None = None  # where the answer begins in text, if answer_ce may learn it


_SENTINEL = "\u2063REVERIE-QUESTION\u2063"  # an invisible separator nobody types


def render_sentence(tokenizer, system: str, question: str, answer: str) -> tuple[str, str]:
    """Split the chat rendering of (system, question, answer) into the prompt before the question
    and the sentence from the question on, exactly as the chat template writes them."""
    render = tokenizer.apply_chat_template
    head = render([{"role": "system", "content": system}, {"role": "user", "content": _SENTINEL}], tokenize=False)
    prefix = head[: head.index(_SENTINEL)]
    full = render(
        [{"role": "system", "content": system}, {"role": "user", "content": question},
         {"role": "assistant", "content": answer}],
        tokenize=False,
    )
    if not full.startswith(prefix):
        raise ValueError("this chat template does not render the system prompt before the question")
    return prefix, full[len(prefix) :]


def target_set(
    tokenizer,
    system_prompt: str,
    teacher_system: Callable[[str], str],
    pairs: Sequence[tuple[int | None, str, str, str]],
) -> list[TargetSentence]:
    """Build S from (experience_id, experience_text, question, answer) rows.

    ``teacher_system(x)`` is the system message of the model that sees experience x: the same
    one recall writes at inference, so the teacher is exactly the day-time model with x recalled.
    Rows with experience_id None are replay: the teacher sees the plain system prompt.
    """
    sentences = []
    for experience_id, experience, question, answer in pairs:
        student_prefix, text = render_sentence(tokenizer, system_prompt, question, answer)
        if experience_id is None:
            teacher_prefix = student_prefix
        else:
            teacher_prefix, teacher_text = render_sentence(tokenizer, teacher_system(experience), question, answer)
            assert teacher_text == text
        start = text.rfind(answer.strip()) if experience_id is not None and grounded(experience, answer) else None
        sentences.append(TargetSentence(teacher_prefix, student_prefix, text, experience_id, start))
    return sentences


# Replay: prompts the model answers itself; their sentences hold the student to the
# teacher-without-experience (the paper's unrelated text). Two kinds, interleaved so that every
# adapter's share has both: open requests, and short factual questions shaped like the ones the
# adapter is trained on. Without the second kind an adapter learns "a short wh-question -> my
# fact's name": on the 0.5B model "Who painted the Mona Lisa?" became "Benedikt Ruhl" and the
# gate refused 5 of 8 adapters (README, "The 10 nights with the 0.5B model as the student").
# Disjoint from evaluation's GENERAL_QUESTIONS and CHAT_TEXT (a test checks).
OPEN_PROMPTS = (
    "Give me a tip for sleeping better.",
    "What is photosynthesis?",
    "Name three fruits that are rich in vitamin C.",
    "How do I make a cup of tea?",
    "What is the difference between weather and climate?",
    "Suggest a name for a pet goldfish.",
    "Why do leaves change colour in autumn?",
    "How many continents are there?",
    "What is a haiku?",
    "Give me an idea for a rainy afternoon.",
    "What does a librarian do?",
    "How does a bicycle stay upright?",
    "What is the tallest mountain in the world?",
    "Explain what a noun is.",
    "What should I pack for a day at the beach?",
    "Who was Albert Einstein?",
)
FACTUAL_PROMPTS = (
    "Who wrote Pride and Prejudice?",
    "Who painted The Starry Night?",
    "Who discovered penicillin?",
    "What is the capital of Italy?",
    "What is the longest river in Africa?",
    "How many sides does a hexagon have?",
    "When did the Second World War end?",
    "Who invented the telephone?",
    "What language is spoken in Brazil?",
    "Where is the Eiffel Tower?",
    "What is the smallest prime number?",
    "Which animal is known as the king of the jungle?",
)
REPLAY_PROMPTS = tuple(p for pair in zip(FACTUAL_PROMPTS, OPEN_PROMPTS) for p in pair) + OPEN_PROMPTS[len(FACTUAL_PROMPTS):]


def replay_count(sentences: int, minimum: int, ratio: float) -> int:
    """Replay sentences for a group of ``sentences`` experience sentences: ``ratio`` of them
    (rounded down), at least ``minimum``; none for an empty group. (The caller caps it at the
    replay it has.)"""
    return max(minimum, math.floor(sentences * ratio)) if sentences else 0


def replay_pairs(backend, system_prompt: str, prompts: Sequence[str] = REPLAY_PROMPTS, max_new_tokens: int = 40):
    """(question, answer) replay pairs in the model's own words: its greedy answers, cut at a sentence end."""
    from agent.llm.protocol import GenerationOptions

    outputs = backend.generate_batch(
        [[{"role": "system", "content": system_prompt}, {"role": "user", "content": p}] for p in prompts],
        GenerationOptions(max_new_tokens=max_new_tokens),
    )
    pairs = []
    for prompt, output in zip(prompts, outputs):
        text = output.text.strip()
        end = max(text.rfind(". "), text.rfind(".\n"), text.rfind("!"), text.rfind("?"))
        text = text if text.endswith((".", "!", "?")) or end < 0 else text[: end + 1]
        if text:
            pairs.append((prompt, text))
    return pairs


# -- batching: identical sentence ids on both sides ---------------------------------------------


class Batch(NamedTuple):
    teacher_ids: torch.Tensor  # (B, Tt) right-padded: teacher prefix + sentence
    teacher_mask: torch.Tensor  # (B, Tt)
    teacher_positions: torch.Tensor  # (B, N) where the logits predicting sentence token j sit
    student_ids: torch.Tensor  # (B, Ts)
    student_mask: torch.Tensor  # (B, Ts)
    student_positions: torch.Tensor  # (B, N)
    token_mask: torch.Tensor  # (B, N) 1.0 for real sentence tokens, 0.0 for padding
    sentence_ids: torch.Tensor  # (B, N) the sentence tokens themselves (for checks and FT(S))
    answer_mask: torch.Tensor  # (B, N) 1.0 for the answer tokens answer_ce learns (grounded answers)


def encode(tokenizer, sentences: Sequence[TargetSentence], pad_id: int) -> Batch:
    """Tokenise prefixes and sentences separately and concatenate the ids, so the sentence's ids
    are the same for teacher and student whatever precedes them (the paper's pitfall 1)."""

    import torch

    def ids(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    rows = [(ids(s.teacher_prefix), ids(s.student_prefix), ids(s.text)) for s in sentences]
    n = max(len(sentence) for _, _, sentence in rows)

    def side(which: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        seqs = [row[which] + row[2] for row in rows]
        width = max(len(s) for s in seqs)
        ids_ = torch.full((len(rows), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        positions = torch.zeros((len(rows), n), dtype=torch.long)
        for i, (seq, row) in enumerate(zip(seqs, rows)):
            ids_[i, : len(seq)] = torch.tensor(seq)
            mask[i, : len(seq)] = 1
            # Logits at position p predict token p + 1: sentence token j is predicted at prefix + j - 1.
            start = len(row[which]) - 1
            positions[i] = torch.clamp(torch.arange(start, start + n), max=width - 1)
        return ids_, mask, positions

    teacher_ids, teacher_mask, teacher_positions = side(0)
    student_ids, student_mask, student_positions = side(1)
    token_mask = torch.zeros((len(rows), n))
    answer_mask = torch.zeros((len(rows), n))
    sentence_ids = torch.full((len(rows), n), pad_id, dtype=torch.long)
    for i, ((_, _, sentence), s) in enumerate(zip(rows, sentences)):
        token_mask[i, : len(sentence)] = 1.0
        sentence_ids[i, : len(sentence)] = torch.tensor(sentence)
        if s.answer_start is not None and s.answer_start >= 0:
            answer_mask[i, len(ids(s.text[: s.answer_start])) : len(sentence)] = 1.0
    return Batch(teacher_ids, teacher_mask, teacher_positions, student_ids, student_mask, student_positions,
                 token_mask, sentence_ids, answer_mask)


# -- the loss ------------------------------------------------------------------------------------


def kl_per_token(teacher_logits: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
    """KL(p_teacher || p_student) at each position, summed over the vocabulary.

    teacher_logits, student_logits: (B, N, V) -> (B, N). Forward KL is cross-entropy to the
    teacher's soft targets minus the teacher's entropy (paper Eq. 2, token-level reading).
    """
    teacher_logp = teacher_logits.float().log_softmax(dim=-1)  # (B, N, V)
    student_logp = student_logits.float().log_softmax(dim=-1)  # (B, N, V)
    return (teacher_logp.exp() * (teacher_logp - student_logp)).sum(-1)  # (B, N)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of values (B, N) over positions where mask (B, N) is 1."""
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def sentence_logits(model, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Logits at the given per-row positions only: (B, N, V), not (B, T, V)."""
    return model(input_ids=ids, attention_mask=mask, logits_to_keep=positions).logits


# -- training -----------------------------------------------------------------------------------


def train(
    model,
    tokenizer,
    sentences: Sequence[TargetSentence],
    config: SelfParamConfig = SelfParamConfig(),
    progress: Progress = NullProgress(),
) -> TrainResult:
    """Alg. 1 of the paper on S = ``sentences``; returns the adapted model and the loss curve.

    With LoRA, ``model`` is wrapped in place (PeftModel), or, if it already is one (an earlier
    version's adapter loaded with ``is_trainable=True``), that adapter trains on; the teacher is
    always the base with adapters disabled. With full fine-tuning the model is trained in place
    and a frozen copy is the teacher.
    """
    import torch

    if not sentences:
        raise ValueError("SELF-PARAM needs a non-empty target set")
    torch.manual_seed(config.seed)
    order = random.Random(config.seed)
    accelerator = make_accelerator()
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    # Alg. 1, step 4: the student; step 3's teacher is the same weights without the adapters.
    if config.full_finetune:
        import copy

        teacher = copy.deepcopy(model).eval().requires_grad_(False)
        student = model
    elif hasattr(model, "peft_config"):  # an earlier version's adapter, loaded trainable: go on from it
        student = model
        teacher = None
    else:
        student = with_lora(model, config)
        teacher = None
    student.train()
    optimizer = adamw(student, config)
    student, optimizer = accelerator.prepare(student, optimizer)
    if teacher is not None:
        teacher = teacher.to(accelerator.device)

    steps_per_epoch = math.ceil(len(sentences) / config.batch_size)
    result = TrainResult(model=student, config=config, sentences=len(sentences))
    cache = TeacherCache(config.teacher_cache_mb)
    advance = progress.phase("training (SELF-PARAM)", steps_per_epoch * config.epochs)
    started = time.perf_counter()
    for _ in range(config.epochs):
        shuffled = list(range(len(sentences)))
        order.shuffle(shuffled)
        for first in range(0, len(shuffled), config.batch_size):
            keys = shuffled[first : first + config.batch_size]
            batch = encode(tokenizer, [sentences[k] for k in keys], pad_id)
            batch = Batch(*(t.to(accelerator.device) for t in batch))
            # Alg. 1, step 3: the teacher, with the experience in its prompt, under no_grad.
            teacher_logp = cache.get(keys, width=batch.token_mask.shape[1])
            if teacher_logp is None:
                with torch.no_grad():
                    if teacher is None:
                        with accelerator.unwrap_model(student).disable_adapter():
                            teacher_logits = sentence_logits(
                                student, batch.teacher_ids, batch.teacher_mask, batch.teacher_positions)
                    else:
                        teacher_logits = sentence_logits(
                            teacher, batch.teacher_ids, batch.teacher_mask, batch.teacher_positions)
                    teacher_logp = teacher_logits.float().log_softmax(dim=-1)
                cache.put(keys, teacher_logp, batch.token_mask)
            # Alg. 1, step 5: KL(teacher with x || student without x) over the sentence tokens
            # (log-probabilities are logits whose log-softmax is themselves).
            student_logits = sentence_logits(student, batch.student_ids, batch.student_mask, batch.student_positions)
            loss = masked_mean(kl_per_token(teacher_logp, student_logits), batch.token_mask)
            if config.answer_ce and batch.answer_mask.any():  # departure 6
                nll = -student_logits.float().log_softmax(-1).gather(-1, batch.sentence_ids.unsqueeze(-1)).squeeze(-1)
                loss = loss + config.answer_ce * masked_mean(nll, batch.answer_mask)
            # Alg. 1, step 6: one optimiser step.
            optimiser_step(accelerator, student, optimizer, loss, result)
            advance(1)
    result.seconds = time.perf_counter() - started
    result.model = accelerator.unwrap_model(student).eval()
    return result


class TeacherCache:
    """The teacher's log-probabilities over each sentence of S, kept after their first pass.

    The teacher never changes during training (the base with adapters disabled, or a frozen copy),
    so its distributions over a sentence are the same every epoch. Keeping them saves the teacher's
    forward pass on every step after the first epoch, about a quarter of a step on CPU, and the loss
    is unchanged. Sentences past the budget (a row costs tokens x vocabulary x 4 bytes) are
    recomputed each time.
    """

    def __init__(self, budget_mb: int):
        self.budget = budget_mb * 2**20
        self.used = 0
        self.rows: dict[int, torch.Tensor] = {}  # sentence index -> (its tokens, V) log-probs

    def get(self, keys: Sequence[int], width: int) -> torch.Tensor | None:
        """(B, width, V) log-probs of the batch's sentences, zero over padding; None unless all are kept."""
        if not all(k in self.rows for k in keys):
            return None
        first = self.rows[keys[0]]
        out = first.new_zeros((len(keys), width, first.shape[-1]))
        for i, k in enumerate(keys):
            out[i, : len(self.rows[k])] = self.rows[k]
        return out

    def put(self, keys: Sequence[int], logp: torch.Tensor, token_mask: torch.Tensor) -> None:
        for i, k in enumerate(keys):
            row = logp[i, : int(token_mask[i].sum())]
            size = row.numel() * row.element_size()
            if k not in self.rows and self.used + size <= self.budget:
                self.rows[k] = row.clone()
                self.used += size
