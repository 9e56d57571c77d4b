"""Preference datasets in and out: TRL's JSONL and Anthropic HH-RLHF text.

In, each line becomes one ``Preference`` (the conversation before the two answers, the chosen
and the rejected answer), whichever way it was written:

- TRL, explicit prompt: ``{"prompt": "...", "chosen": "...", "rejected": "..."}``, or the
  conversational form with message lists in all three fields;
- TRL, implicit prompt: ``{"chosen": [messages], "rejected": [messages]}``: the shared leading
  messages are the prompt, the last assistant message of each is its answer;
- HH-RLHF: ``{"chosen": "\\n\\nHuman: ...\\n\\nAssistant: ...", "rejected": "..."}``, the same
  once the text is split into turns.

An optional ``source`` field (a rater id) is kept, for cleaning by source. A bad line is
reported with its number and why, and the rest are read. Out, ``to_trl`` writes TRL's
conversational explicit-prompt form, which its preference trainers read as is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from agent.errors import InvalidInput

Format = Literal["trl", "hh"]
_HH_TURN = re.compile(r"\n\n(Human|Assistant): ")


@dataclass(frozen=True)
class Preference:
    prompt: list[dict[str, str]]  # the conversation before the answers, ending with the user
    chosen: str
    rejected: str
    source: str | None = None

    def payload(self) -> dict[str, Any]:
        return {"prompt": self.prompt, "chosen": self.chosen, "rejected": self.rejected}


def read_preferences(lines: Sequence[str], fmt: Format) -> tuple[list[tuple[int, Preference]], list[tuple[int, str]]]:
    """(line number, preference) for the good lines and (line number, reason) for the bad ones."""
    if fmt not in ("trl", "hh"):
        raise InvalidInput(f"unknown format {fmt!r}; use trl or hh")
    good, bad = [], []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError("not a JSON object")
            good.append((number, _parse(row, fmt)))
        except ValueError as exc:  # json.JSONDecodeError is one
            bad.append((number, str(exc).splitlines()[0]))
    return good, bad


def _parse(row: dict, fmt: Format) -> Preference:
    for field in ("chosen", "rejected"):
        if field not in row:
            raise ValueError(f"no {field!r} field")
    source = row.get("source")
    if source is not None and not isinstance(source, str):
        raise ValueError("'source' must be a string")
    if fmt == "hh":
        if not all(isinstance(row[f], str) for f in ("chosen", "rejected")):
            raise ValueError("HH 'chosen' and 'rejected' must be text with \\n\\nHuman: / \\n\\nAssistant: turns")
        return _implicit(_hh_messages(row["chosen"]), _hh_messages(row["rejected"]), source)
    if "prompt" in row:
        prompt = row["prompt"]
        if isinstance(prompt, str):
            messages = [{"role": "user", "content": prompt}]
        else:
            messages = _messages(prompt, "prompt")
        chosen, rejected = (_answer(row[f], f) for f in ("chosen", "rejected"))
        return _checked(messages, chosen, rejected, source)
    if isinstance(row["chosen"], str):
        raise ValueError("no 'prompt' field (a text 'chosen' needs one; message lists may share theirs)")
    return _implicit(_messages(row["chosen"], "chosen"), _messages(row["rejected"], "rejected"), source)


def _messages(value: Any, field: str) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"{field!r} must be text or a non-empty list of messages")
    for m in value:
        if not (isinstance(m, dict) and m.get("role") in ("system", "user", "assistant") and isinstance(m.get("content"), str)):
            raise ValueError(f"{field!r} has a message without a system/user/assistant role and text content")
    return [{"role": m["role"], "content": m["content"]} for m in value]


def _answer(value: Any, field: str) -> str:
    """An answer: text, or a message list whose last message is the assistant's."""
    if isinstance(value, str):
        return value
    messages = _messages(value, field)
    if messages[-1]["role"] != "assistant":
        raise ValueError(f"{field!r} does not end with an assistant message")
    return messages[-1]["content"]


def _implicit(chosen: list[dict], rejected: list[dict], source: str | None) -> Preference:
    shared = 0
    while shared < min(len(chosen), len(rejected)) - 1 and chosen[shared] == rejected[shared]:
        shared += 1
    if chosen[:shared] != rejected[:shared] or len(chosen) != shared + 1 or len(rejected) != shared + 1:
        raise ValueError("'chosen' and 'rejected' must share every message but their last")
    for side in (chosen, rejected):
        if side[-1]["role"] != "assistant":
            raise ValueError("'chosen' and 'rejected' must each end with an assistant message")
    return _checked(chosen[:shared], chosen[-1]["content"], rejected[-1]["content"], source)


def _hh_messages(text: str) -> list[dict[str, str]]:
    parts = _HH_TURN.split(text if text.startswith("\n\n") else "\n\n" + text)
    if parts[0].strip() or len(parts) < 3:
        raise ValueError("HH text must consist of \\n\\nHuman: and \\n\\nAssistant: turns")
    roles = {"Human": "user", "Assistant": "assistant"}
    return [{"role": roles[who], "content": said.strip()} for who, said in zip(parts[1::2], parts[2::2])]


def _checked(prompt: list[dict], chosen: str, rejected: str, source: str | None) -> Preference:
    if not prompt or prompt[-1]["role"] != "user":
        raise ValueError("the prompt must end with a user message")
    if not chosen.strip() or not rejected.strip():
        raise ValueError("an empty answer")
    if chosen.strip() == rejected.strip():
        raise ValueError("'chosen' and 'rejected' are the same answer")
    return Preference(prompt, chosen.strip(), rejected.strip(), source)


def to_trl(prompt: list[dict[str, str]], chosen: str, rejected: str) -> dict[str, Any]:
    """One line of TRL's conversational preference format."""
    return {"prompt": prompt, "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}]}
