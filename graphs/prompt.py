"""Building the prompt of a chat turn: system line, recalled memories, as much history as fits.

Recalled memories go into the system message, the placement a probe on the embedded 135M model
answered best from (see README, "Recall"), and the same "model with the experience in its
prompt" view that SELF-PARAM distils from at night.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agent.errors import InputTooLong
from agent.llm.protocol import Message

CountTokens = Callable[[Sequence[Message]], int]


def system_message(system_prompt: str, memories: Sequence[str]) -> Message:
    content = system_prompt.strip()
    if memories:
        facts = "\n".join(f"- {m}" for m in memories)
        content += f"\nFacts you know about the user:\n{facts}"
    return {"role": "system", "content": content}


def check_fits(count: CountTokens, system_prompt: str, text: str, budget: int) -> None:
    """Refuse, before anything is written, a message that cannot fit even with no history."""
    needed = count([system_message(system_prompt, []), {"role": "user", "content": text}])
    if needed > budget:
        raise InputTooLong(
            f"message too long: {needed} prompt tokens, but only {budget} fit in the context window "
            "after room for the reply; shorten it or raise context_window"
        )


def build_prompt(
    count: CountTokens,
    system_prompt: str,
    memories: Sequence[str],
    history: Sequence[Message],
    budget: int,
) -> tuple[list[Message], int]:
    """Fit system + memories + history (newest kept) + the new user message into ``budget`` tokens.

    ``history`` ends with the new user message. Memories are kept before old history (they
    were chosen for this very message); history is cut at a user message so the prompt never
    opens with an orphan reply. Returns the prompt and how many history messages were dropped.
    """
    *earlier, current = history
    kept_memories = list(memories)
    while kept_memories and count([system_message(system_prompt, kept_memories), current]) > budget:
        kept_memories.pop()  # least similar last
    system = system_message(system_prompt, kept_memories)
    # The smallest start whose suffix fits; fewer messages never cost more, so bisect.
    low, high = 0, len(earlier)
    while low < high:
        middle = (low + high) // 2
        if count([system, *earlier[middle:], current]) <= budget:
            high = middle
        else:
            low = middle + 1
    start = low
    while start < len(earlier) and earlier[start]["role"] != "user":
        start += 1
    return [system, *earlier[start:], current], start


def turn_prompt(state: Mapping[str, Any], ctx: Any) -> tuple[list[Message], int]:
    """The prompt of a chat turn (``graphs.chat``): the system line, the recalled memories in
    ``state``, the history that fits ``ctx.prompt_budget``, the message; and how many history
    messages were dropped. The chat graph and its verifiers (a revision) both build it here."""
    return build_prompt(
        ctx.backend.count_chat_tokens,
        ctx.system_prompt,
        [m["text"] for m in state.get("memories", [])],
        state["messages"],
        ctx.prompt_budget,
    )
