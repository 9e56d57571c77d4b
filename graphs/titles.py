"""Finding a catalogue's titles in text: in a conversation ("I've already seen Hollow Pines",
"A Nightmare on Elm Street (1984)") and in a model's list of suggestions ("3. Jaws (1975)").

Titles are compared normalised (lower case, no punctuation, "&" as "and", a year in brackets
dropped). In running text a title counts only where people write it as a title: followed by a
year in brackets, or capitalised, and a one-word title only with its year or in quotes, so the
film "Water" is not found in "a glass of water". In a suggestion list, a line that names no
title exactly is matched to the closest one (difflib, ratio >= ``FUZZY``) on catalogues small
enough to search that way.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

WORD = re.compile(r"[a-z0-9]+")
YEAR_AFTER = re.compile(r"^\s*\(\s*(1[89]\d\d|20\d\d)\s*\)")
BRACKETED = re.compile(r"\([^)]*\)")
LIST_MARK = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s*")
FUZZY = 0.85
FUZZY_MAX_TITLES = 20_000  # difflib over more titles than this takes seconds per line


def normalise(title: str) -> str:
    title = BRACKETED.sub(" ", title.lower().replace("&", " and "))
    return " ".join(WORD.findall(title))


class Titles:
    """The titles of one catalogue, by normalised form."""

    def __init__(self, titles: Iterable[tuple[str, str]]) -> None:
        self.ids: dict[str, list[str]] = {}
        for item_id, title in titles:
            key = normalise(title)
            if key:
                self.ids.setdefault(key, []).append(item_id)
        self.longest = max((len(k.split()) for k in self.ids), default=0)
        self._keys: list[str] | None = None

    def find(self, text: str) -> list[str]:
        """Ids of the titles written in ``text``, in order of appearance, each once."""
        words = [(m.group(), m.start(), m.end()) for m in re.finditer(r"[A-Za-z0-9]+", text.replace("&", "and"))]
        found: list[str] = []
        i = 0
        while i < len(words):
            for n in range(min(self.longest, len(words) - i), 0, -1):
                key = " ".join(w.lower() for w, _, _ in words[i : i + n])
                if key in self.ids and _written_as_title(text, words[i][1], words[i + n - 1][2], n):
                    found += [x for x in self.ids[key] if x not in found]
                    i += n
                    break
            else:
                i += 1
        return found

    def match_line(self, line: str) -> list[str]:
        """Ids a suggestion line names: exactly, else the closest title on small catalogues."""
        line = LIST_MARK.sub("", line).split(" - ")[0].split(": ")[0].strip().strip("\"'*")
        key = normalise(line)
        if not key:
            return []
        if key in self.ids:
            return self.ids[key]
        if len(self.ids) > FUZZY_MAX_TITLES:
            return []
        if self._keys is None:
            self._keys = list(self.ids)
        close = difflib.get_close_matches(key, self._keys, n=1, cutoff=FUZZY)
        return self.ids[close[0]] if close else []


def _written_as_title(text: str, start: int, end: int, words: int) -> bool:
    if YEAR_AFTER.match(text[end:]):
        return True
    quoted = start > 0 and text[start - 1] in "\"'\u201c\u2018" and end < len(text) and text[end] in "\"'\u201d\u2019"
    if words == 1:
        return quoted
    return quoted or text[start].isupper() or text[start].isdigit()
