"""The rules every entry point applies to what people give it (the Python API, the CLI, and
later the server all pass through these): one rule, one place, one clear error."""

from __future__ import annotations

from typing import Any

from agent.errors import InvalidInput

MAX_EXPERIENCE_CHARS = 2000  # about 500 tokens: recalled whole into a 2048-token prompt, with room left


def required(value: Any, what: str) -> str:
    """A non-empty string without NUL bytes, stripped."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"empty {what}")
    if "\x00" in value:
        raise InvalidInput(f"the {what} contains a NUL byte")
    return value.strip()


THREAD_ID_CHARS = 128


def thread_id(value: Any) -> str:
    """A thread id a client chooses: 1 to 128 printable characters, no spaces."""
    if not isinstance(value, str) or not value:
        raise InvalidInput("empty thread id")
    if len(value) > THREAD_ID_CHARS or not value.isprintable() or any(c.isspace() for c in value):
        raise InvalidInput(f"bad thread id {value[:40]!r}: 1 to {THREAD_ID_CHARS} printable characters, no spaces")
    return value


DECODING = {"max_new_tokens": (int, 1, 4096), "temperature": (float, 0.0, 2.0), "top_p": (float, 0.0, 1.0),
            "seed": (int, 0, 2**63 - 1)}


def decoding(options: dict[str, Any] | None) -> dict[str, Any]:
    """Per-turn decoding overrides, each checked against its range; None values are dropped."""
    checked = {}
    for key, value in (options or {}).items():
        if value is None:
            continue
        if key not in DECODING:
            raise InvalidInput(f"unknown decoding option {key!r}; known: {', '.join(DECODING)}")
        kind, low, high = DECODING[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
            raise InvalidInput(f"{key} must be {'an integer' if kind is int else 'a number'}")
        if not low <= value <= high:
            raise InvalidInput(f"{key} must be between {low} and {high}")
        checked[key] = kind(value)
    return checked


def history(messages: Any) -> list[dict[str, str]]:
    """Earlier turns a new thread starts from: user and assistant messages with text."""
    if not isinstance(messages, list):
        raise InvalidInput("history must be a list of messages")
    out = []
    for message in messages:
        role, content = (message.get("role"), message.get("content")) if isinstance(message, dict) else (None, None)
        if role not in ("user", "assistant") or not isinstance(content, str):
            raise InvalidInput("history holds user and assistant messages, each with text content")
        if "\x00" in content:
            raise InvalidInput("a history message contains a NUL byte")
        out.append({"role": role, "content": content})
    return out


def has_nul(value: Any) -> bool:
    """Whether any string inside ``value`` (a string, or lists and dicts of them) holds a NUL byte."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(has_nul(v) for v in value)
    return False


def experience(value: Any) -> str:
    """An experience to remember: required text, short enough to be recalled whole into a prompt."""
    text = required(value, "experience")
    if len(text) > MAX_EXPERIENCE_CHARS:
        raise InvalidInput(f"an experience is at most {MAX_EXPERIENCE_CHARS} characters (this one has {len(text)}); "
                           "split it into several (teach --file takes one per line)")
    return text


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
