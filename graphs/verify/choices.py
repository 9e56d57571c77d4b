"""Finding code and listed options in a chat message: the cheap tests that decide whether a
turn is verified at all (a turn with neither pays nothing).

Options are found in three forms: a list ("- X" / "1. X" / "a) X" lines, two or more), "between X
and Y", and a question ending in alternatives after a comma or colon ("Which is faster, X, Y or
Z?"). A choice also needs a word that asks for one (which, choose, pick, better, rank ...).
"""

from __future__ import annotations

import re

from graphs.verify.codejudge import LANGUAGES

_FENCED = re.compile(r"```([A-Za-z0-9_+#-]*)[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)
# Lines that only code starts with; two of them make an unfenced answer count as code.
_CODE_LINE = re.compile(
    r"^\s*(def \w+\(|class \w+[:(]|import \w+|from \w+ import|#include\s*<|public (static |class )|"
    r"function \w*\(|func \w+\(|fn \w+\(|(const|let|var) \w+ =|return\b.*;?$|for \(|while \()"
)


def find_code(text: str) -> tuple[str, str | None] | None:
    """(code, language name or None) of the code in a reply, or None when it has none."""
    blocks = [(tag, body) for tag, body in _FENCED.findall(text) if body.strip()]
    if blocks:
        tags = [LANGUAGES.get(tag.lower()) for tag, _ in blocks if tag]
        return "\n\n".join(body.strip("\n") for _, body in blocks), next((t for t in tags if t), None)
    lines = [line for line in text.splitlines() if _CODE_LINE.match(line)]
    if len(lines) >= 2:
        return text.strip(), None
    return None


_ASKS = re.compile(r"\b(which|choose|pick|prefer|preferable|rank|order|better|best|worse|recommend|should i)\b", re.I)
_LIST_LINE = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)]|[a-hA-H][.)])\s+(.+?)\s*$")
_BETWEEN = re.compile(r"\bbetween\s+(.+?)\s+and\s+(.+?)\s*(?:[?.!]|$)", re.I)
_ALTERNATIVES = re.compile(r"[,:]\s*([^,:?]+(?:,\s*[^,:?]+)*\s+or\s+[^?]+)\?\s*$")
_SPLIT = re.compile(r"\s*,\s*(?:or\s+)?|\s+or\s+")


def find_options(text: str, max_options: int = 6) -> tuple[str, list[str]] | None:
    """(question, options) when ``text`` asks to choose between or rank options it lists."""
    listed = [m.group(1) for line in text.splitlines() if (m := _LIST_LINE.match(line))]
    question_lines = [line for line in text.splitlines() if line.strip() and not _LIST_LINE.match(line)]
    if len(listed) >= 2:
        question = " ".join(line.strip() for line in question_lines)
        options = listed
    elif (m := _BETWEEN.search(text)) is not None:
        question, options = text.strip(), [m.group(1), m.group(2)]
    elif (m := _ALTERNATIVES.search(text.strip())) is not None:
        question, options = text.strip(), _SPLIT.split(m.group(1).strip())
    else:
        return None
    options = [o.strip(" .;") for o in options if o.strip(" .;")]
    if not _ASKS.search(question) or not 2 <= len(options) <= max_options or len(set(options)) < len(options):
        return None
    return question, options
