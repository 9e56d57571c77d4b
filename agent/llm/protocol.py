"""The one small protocol every model backend speaks.

Chat graphs call ``generate`` / ``stream``; judges (CodeJudge, the pairwise comparator) and
learners (SELF-PARAM, CORY) call ``score`` and ``logits`` on text they choose. A message is a
plain ``{"role": ..., "content": ...}`` dict, as in every chat template.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:  # torch is heavy; only type checkers need it here
    import torch

Message = dict[str, str]


# What a call answers with: an attached adapter by name (``Backend.attach``), several merged
# together (a knowledge adapter and its user's refined policy), or None: the plain weights.
AdapterChoice = str | tuple[str, ...] | None


@dataclass(frozen=True)
class GenerationOptions:
    max_new_tokens: int = 256
    temperature: float = 0.0  # 0 means greedy decoding
    top_p: float = 1.0  # nucleus sampling; only used when temperature > 0
    repetition_penalty: float = 1.0  # >1 also penalises tokens of the prompt, so recalled facts suffer
    seed: int | None = None  # makes sampled generation repeatable
    max_time_s: float | None = None  # stop generating after this long (a verifier's time budget)
    adapter: AdapterChoice = None


@dataclass(frozen=True)
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: Literal["stop", "length"]


@dataclass(frozen=True)
class TokenScores:
    """Log-probabilities of a continuation's tokens given a prompt.

    The prompt and the continuation are tokenised separately and their ids concatenated, so the
    continuation's ids are the same whatever prompt precedes it (SELF-PARAM needs that).
    """

    token_ids: list[int]
    logprobs: list[float]  # logprobs[i] = log p(token_ids[i] | prompt, token_ids[:i])

    @property
    def total(self) -> float:
        return sum(self.logprobs)


@runtime_checkable
class Backend(Protocol):
    name: str  # what was asked for: a model spec, an HF id or a folder
    version: str  # the model version being served, shown on every turn
    path: Path | None  # the folder the weights came from, when there is one
    context_window: int  # prompt + completion tokens the backend accepts

    def render(self, messages: Sequence[Message], add_generation_prompt: bool = True) -> str:
        """The exact prompt text the chat template makes of ``messages``."""
        ...

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``, without special tokens."""
        ...

    def count_tokens(self, text: str) -> int: ...

    def count_chat_tokens(self, messages: Sequence[Message]) -> int:
        """Tokens of the rendered prompt, generation prompt included."""
        ...

    def generate(
        self,
        messages: Sequence[Message],
        options: GenerationOptions = ...,
        on_text: Callable[[str], None] | None = None,
        prefill: str = "",
    ) -> Generation:
        """Generate a reply; ``on_text`` (if given) receives each new piece of text as it is decoded,
        on the caller's thread. ``prefill`` is text the reply is made to start with (a judge's
        "Final Answer (Yes or No):"); it is not part of the returned text."""
        ...

    def generate_batch(
        self, conversations: Sequence[Sequence[Message]], options: GenerationOptions = ..., prefill: str = ""
    ) -> list[Generation]: ...

    def stream(
        self, messages: Sequence[Message], options: GenerationOptions = ...
    ) -> Generator[str, None, Generation]:
        """Yield text deltas as they are decoded; the generator returns the full Generation."""
        ...

    def score(self, prompt: str, continuation: str, adapter: AdapterChoice = None) -> TokenScores: ...

    def score_batch(
        self, prompt: str, continuations: Sequence[str], adapter: AdapterChoice = None
    ) -> list[TokenScores]:
        """``score`` of each continuation after the same prompt, in batches (what taste reading needs)."""
        ...

    def logits(self, prompt: str, continuation: str = "", adapter: AdapterChoice = None) -> torch.Tensor:
        """Float32 logits of shape (len(continuation tokens) + 1, vocab), with ``adapter`` merged
        (an attached one, by name) or the plain weights.

        Row i is the distribution over continuation token i; the last row is the distribution
        over the token after the continuation (with an empty continuation: the next token).
        """
        ...

    def reload(self, path: Path, version: str) -> None:
        """Serve the weights in ``path`` from now on, without restarting the process."""
        ...

    def attach(self, adapters: Mapping[str, Path]) -> None:
        """The adapters ``GenerationOptions.adapter`` may name from now on (name -> folder); the
        version's library of frozen adapters (``memory.versions``)."""
        ...
