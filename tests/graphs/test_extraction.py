"""Which chat turns the night learns from: statements, not questions, requests or chit-chat."""

import pytest

from graphs.extraction import is_informative


@pytest.mark.parametrize("text", [
    "My sister Ines moved to Lisbon in May.",
    "I am allergic to peanuts and shellfish.",
    "Our office moved to the fourth floor of Harbour House.",
    "The Velmora Bridge was finished in 1887.",
])
def test_statements_are_informative(text):
    assert is_informative(text)


@pytest.mark.parametrize("text", [
    "Where does Ines live?",
    "what is my sister called",
    "Write me a poem about the sea.",
    "Please summarise this for me today.",
    "thanks, that was really helpful!",
    "ok sounds good to me",
    "yes",
    "the weather is nice today",  # no name, number or first person: nothing about anyone
])
def test_questions_requests_and_chit_chat_are_not(text):
    assert not is_informative(text)
