"""Which user turns are worth consolidating: statements that tell the agent something.

Questions, requests and chit-chat carry nothing to remember ("What's the weather?", "Write me a
poem", "thanks!"); a statement that says something about the user or the world, with a name, a
number or the user's own voice in it, does ("My sister moved to Lisbon in May."). A rule, not a
model, so the night's selection is cheap, predictable and testable.
"""

from __future__ import annotations

import re

_ASKING = set(
    "what who whom whose where when why how which is are was were am do does did can could would will "
    "should shall may might must have has had please tell explain give write list show help describe "
    "summarize summarise translate make create find suggest recommend compare let lets let's".split()
)
_CHIT_CHAT = re.compile(
    r"^(hi|hello|hey|thanks|thank you|thx|ok|okay|cool|great|nice|lol|bye|good (morning|night|evening)|"
    r"yes|no|sure|sounds good|got it)\b", re.I
)
_FIRST_PERSON = re.compile(r"\b(i|i'm|i've|my|me|mine|we|our|us)\b", re.I)
_NAMED = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+|\d")


def is_informative(text: str) -> bool:
    """A declarative statement of 4 to 80 words, in the user's voice or naming something."""
    text = text.strip()
    words = re.findall(r"[\w']+", text)
    if not 4 <= len(words) <= 80 or text.endswith("?") or _CHIT_CHAT.match(text):
        return False
    if words[0].lower() in _ASKING:
        return False
    return bool(_FIRST_PERSON.search(text) or _NAMED.search(text))
