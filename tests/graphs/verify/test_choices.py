"""The cheap tests that decide whether a turn is verified: code in a reply, options in a message."""

import pytest

from graphs.verify.choices import find_code, find_options


@pytest.mark.parametrize("text, found", [
    ("Which is better for a beginner: Python, Java or C++?", ["Python", "Java", "C++"]),
    ("Help me choose between tea and coffee.", ["tea", "coffee"]),
    ("Rank these by size:\n- a cat\n- a whale\n* a mouse", ["a cat", "a whale", "a mouse"]),
    ("Which one should I pick?\n1. the red car\n2) the blue car", ["the red car", "the blue car"]),
    ("Which is faster, a train or a plane?", ["a train", "a plane"]),
    ("I like tea or coffee.", None),  # nothing asks for a choice
    ("What is the capital of France?", None),
    ("My shopping list:\n- eggs\n- milk", None),
    ("Which is best?\n- one", None),  # a single option
    ("Which is best: a, a or a?", None),  # the same option three times
])
def test_options_in_a_message(text, found):
    result = find_options(text)
    assert (result[1] if result else None) == found


def test_too_many_options_are_not_checked():
    text = "Which is best: " + ", ".join(f"option {i}" for i in range(8)) + " or option 9?"
    assert find_options(text, max_options=6) is None and find_options(text, max_options=10) is not None


def test_code_in_a_reply():
    assert find_code("Here:\n```python\ndef f(x):\n    return x\n```\nand\n```js\nlet y = 2;\n```") == (
        "def f(x):\n    return x\n\nlet y = 2;", "Python")
    assert find_code("```\nprint(1)\n```") == ("print(1)", None)
    assert find_code("def f(x):\n    return x + 1") == ("def f(x):\n    return x + 1", None)
    assert find_code("```python\nunterminated = True") == ("unterminated = True", "Python")
    for prose in ("Paris is the capital of France.", "Return the book, then import the tea.", "```\n```"):
        assert find_code(prose) is None
