"""The rules every entry point applies to what people give it (the Python API, the CLI, and
later the server all pass through these): one rule, one place, one clear error."""

from __future__ import annotations

from typing import Any

from agent.errors import InvalidInput


def required(value: Any, what: str) -> str:
    """A non-empty string without NUL bytes, stripped."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"empty {what}")
    if "\x00" in value:
        raise InvalidInput(f"the {what} contains a NUL byte")
    return value.strip()


def probes(rows: Any) -> list[tuple[str, list[str], str]]:
    """Given probes, checked: a question, one or more answers, and a kind."""
    out = []
    for row in rows or []:
        if not isinstance(row, dict):
            raise InvalidInput("a probe is {'question': ..., 'answers': [...], 'kind': 'recall' | 'near_miss'}")
        kind = row.get("kind", "recall")
        if kind not in ("recall", "near_miss"):
            raise InvalidInput(f"probe kind must be recall or near_miss, not {kind!r}")
        answers = row.get("answers") or []
        if isinstance(answers, str) or not all(isinstance(a, str) and a.strip() for a in answers) or not answers:
            raise InvalidInput("a probe needs a list of non-empty answers")
        out.append((required(row.get("question"), "probe question"), [a.strip() for a in answers], kind))
    return out
