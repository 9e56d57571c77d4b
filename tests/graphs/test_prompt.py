import pytest

from agent.errors import InputTooLong
from graphs.prompt import build_prompt, check_fits, system_message


def words(messages):
    """A stand-in token counter: one token per word, plus one per message."""
    return sum(len(m["content"].split()) + 1 for m in messages)


def chat(n):
    history = []
    for i in range(n):
        history += [{"role": "user", "content": f"question {i} " * 3}, {"role": "assistant", "content": f"answer {i}"}]
    return history + [{"role": "user", "content": "the new question"}]


def test_everything_fits_when_there_is_room():
    prompt, dropped = build_prompt(words, "Be brief.", ["fact one"], chat(3), budget=1000)
    assert dropped == 0
    assert prompt[0] == system_message("Be brief.", ["fact one"])
    assert "Facts you know about the user:\n- fact one" in prompt[0]["content"]
    assert prompt[1:] == chat(3)


def test_oldest_history_goes_first_and_the_prompt_starts_with_the_user():
    history = chat(5)
    prompt, dropped = build_prompt(words, "Be brief.", [], history, budget=30)
    assert words(prompt) <= 30
    assert prompt[-1]["content"] == "the new question"
    assert prompt[1]["role"] == "user"
    assert prompt[1:] == history[dropped:]
    assert dropped > 0 and dropped % 2 == 0


def test_memories_are_dropped_least_similar_first_only_when_nothing_else_fits():
    memories = ["most similar fact here", "second fact", "least similar fact"]
    prompt, _ = build_prompt(words, "Sys.", memories, [{"role": "user", "content": "q"}], budget=16)
    assert "most similar" in prompt[0]["content"] and "least similar" not in prompt[0]["content"]


def test_a_message_that_cannot_fit_is_refused():
    check_fits(words, "Sys.", "short", budget=10)
    with pytest.raises(InputTooLong, match="message too long"):
        check_fits(words, "Sys.", "word " * 50, budget=10)
