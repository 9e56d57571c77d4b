"""Agent.recommend over a real home (SQLite, Chroma, the tiny model): conversations given or logged,
tastes recalled per user only, and bad requests refused in one line before any work."""

from __future__ import annotations

import pytest

from agent.errors import InvalidInput, NotFound

MOVIES = "\n".join([
    '{"id": "d1", "title": "Good Boy Rex", "genres": ["family"], "tags": ["dogs"], "year": 2001, "rating": "G"}',
    '{"id": "d2", "title": "Paws on Mars", "genres": ["family", "sci-fi"], "tags": ["dogs", "space"], "year": 2015, "rating": "PG"}',
    '{"id": "h1", "title": "The Cellar Door", "genres": ["horror"], "tags": ["haunted"], "year": 1999, "rating": "R"}',
    '{"id": "h2", "title": "Night Tide", "genres": ["horror"], "tags": ["sea"], "year": 2012, "rating": "R"}',
    '{"id": "c1", "title": "The Wedding Mix-Up", "genres": ["comedy", "romance"], "tags": ["wedding"], "year": 2005, "rating": "PG-13"}',
    '{"id": "c2", "title": "Chess Club", "genres": ["comedy"], "tags": ["chess"], "year": 2019, "rating": "PG"}',
])


@pytest.fixture
def bot(tiny_agent, tmp_path):
    (tmp_path / "movies.jsonl").write_text(MOVIES)
    tiny_agent.import_catalogue(tmp_path / "movies.jsonl")
    return tiny_agent


def test_recommend_for_given_messages_and_for_a_logged_thread(bot):
    result = bot.recommend([{"role": "user", "content": "A horror film, but nothing rated PG."}], k=3)
    assert result.catalogue == "movies" and {p.id for p in result.items} == {"h1", "h2"}
    assert result.ranking["method"] == "score" and "s_neg" in result.ranking["reason"]  # the planted card: at chance
    reply = bot.chat("I want a comedy from after 2010.", thread_id="t1", user="ana")
    assert reply.text is not None
    logged = bot.recommend(thread_id="t1", user="ana", k=5)
    assert [p.id for p in logged.items] == ["c2"] and logged.constraints == {"genres_all": ["comedy"], "year_min": 2011}
    with pytest.raises(NotFound, match="no thread 't1' of user 'bob'"):
        bot.recommend(thread_id="t1", user="bob")


def test_tastes_are_recalled_for_their_own_user_only(bot):
    bot.teach("I adore films about dogs.", user="ana")
    ask = [{"role": "user", "content": "What should I watch tonight? Any film is fine."}]
    ana, bob = bot.recommend(ask, user="ana", k=6), bot.recommend(ask, user="bob", k=6)
    assert ana.tastes == ["I adore films about dogs."] and bob.tastes == []
    assert {p.id for p in ana.items[:2]} == {"d1", "d2"} and "you like dogs" in ana.items[0].reason.lower()
    assert not any("dogs" in p.reason for p in bob.items)
    assert bot.recommend(ask, user="ana", k=6, recall=False).tastes == []
    bot.chat("Heists are my favourite kind of film.", user="bob")  # said in a chat, before any night
    assert bot.recommend([{"role": "user", "content": "What should I watch?"}], user="bob", k=6).tastes == [
        "Heists are my favourite kind of film."]
    assert "Heists are my favourite kind of film." not in bot.recommend(ask, user="ana", k=6).tastes


def test_bad_requests_are_refused_before_any_work(tiny_agent, bot, tmp_path):
    ask = [{"role": "user", "content": "Anything?"}]
    with pytest.raises(InvalidInput, match="not both"):
        bot.recommend(ask, thread_id="t1")
    with pytest.raises(InvalidInput, match="no user message"):
        bot.recommend([{"role": "assistant", "content": "Hello"}])
    with pytest.raises(InvalidInput, match="user and assistant messages"):
        bot.recommend([{"role": "system", "content": "x"}])
    with pytest.raises(InvalidInput, match="k must be between 1 and 100"):
        bot.recommend(ask, k=0)
    with pytest.raises(NotFound, match="no catalogue 'books'"):
        bot.recommend(ask, catalogue="books")
    (tmp_path / "books.jsonl").write_text('{"id": 1, "title": "A Book"}')
    bot.import_catalogue(tmp_path / "books.jsonl")
    with pytest.raises(InvalidInput, match="several catalogues \\(books, movies\\)"):
        bot.recommend(ask)
    assert bot.recommend(ask, catalogue="books").items[0].title == "A Book"
    with pytest.raises(InvalidInput, match="cannot read"):
        bot.import_catalogue(tmp_path / "missing.jsonl")


def test_a_chat_message_asking_for_picks_is_answered_with_the_agent_s_picks(bot, home, tiny_dir, tmp_path):
    reply = bot.chat("Can you recommend a horror film? Nothing before 2000.", user="ana")
    assert reply.text.splitlines() == ["From the movies catalogue:", "1. Night Tide: Horror; from 2012.",
                                       "(Only 1 item of the catalogue meets everything asked.)"]
    assert reply.recommendation["items"][0]["id"] == "h2" and reply.finish_reason == "stop"
    assert [t.content for t in bot.log(thread_id=reply.thread_id)][1] == reply.text  # logged like any answer
    plain = bot.chat("Hello there", user="ana")
    assert plain.recommendation is None
    from agent import Agent

    with Agent.open(home, model=str(tiny_dir), max_new_tokens=4, recommend={"in_chat": 0}) as off:
        assert off.chat("Can you recommend a horror film?").recommendation is None
    (tmp_path / "books.jsonl").write_text('{"id": 1, "title": "A Book"}')
    bot.import_catalogue(tmp_path / "books.jsonl")
    assert bot.chat("Recommend something?").recommendation is None  # two catalogues, none configured


def test_consolidated_tastes_are_read_at_night_from_their_user_s_adapter_only(home, tiny_dir, tmp_path):
    from agent import Agent
    from memory.tastes import TastesRead

    (tmp_path / "movies.jsonl").write_text(MOVIES)
    (tmp_path / "more.jsonl").write_text(MOVIES.replace('"d1"', '"m1"'))
    with Agent.open(home, model=str(tiny_dir), max_new_tokens=8, selfparam={"epochs": 2}, synthesis={"samples": 1},
                    gate={"min_efficacy": 0.0}, learn={"extract_turns": False}) as bot:
        bot.import_catalogue(tmp_path / "movies.jsonl")
        dogs = bot.teach("I adore films about dogs.", user="ana")
        report = bot.learn(user="ana")
        assert report.promoted and set(report.tastes) == {"movies"}  # read by the night, for every catalogue
        [adapter] = bot.library
        read_with = []
        score = bot.backend.score_batch
        bot.backend.score_batch = lambda prompt, texts, adapter=None: read_with.append(adapter) or score(prompt, texts,
                                                                                                        adapter)
        ask = [{"role": "user", "content": "What should I watch tonight?"}]
        ana = bot.recommend(ask, user="ana", recall=False)
        assert read_with == [] and ana.tastes == [] and ana.tastes_from_weights == report.tastes["movies"]
        assert ana.adapter in (adapter.name, [adapter.name], None)
        bob = bot.recommend(ask, user="bob", recall=False)
        assert read_with == [] and bob.tastes_from_weights == [] and bob.adapter is None
        assert len(TastesRead(bot.store, "ana")) == 1 and len(TastesRead(bot.store, "bob")) == 0
        # a catalogue imported after the night: read on its first request (ana's adapter against the
        # base), then kept
        bot.import_catalogue(tmp_path / "more.jsonl")
        bot.recommend(ask, user="ana", recall=False, catalogue="more")
        assert set(read_with) == {(adapter.name,), None}
        read_with.clear()
        bot.recommend(ask, user="ana", recall=False, catalogue="more")
        assert read_with == [] and len(TastesRead(bot.store, "ana")) == 2
        bot.forget(dogs)  # nothing read from the weights that held it survives it
        assert len(TastesRead(bot.store, "ana")) == 0
