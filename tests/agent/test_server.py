"""The HTTP API on a real uvicorn server on loopback, over a real agent (tiny model, SQLite,
Chroma), through the official `openai` client where the API is OpenAI's."""

from __future__ import annotations

import time

import openai
import pytest

from memory.jobs import Jobs

KEYS = "ana-key:ana,bob-key:bob,root-key:root:admin"


def test_the_openai_client_chats_streams_and_lists_models(serve):
    client = serve().client()
    done = client.chat.completions.create(model="reverie", messages=[{"role": "user", "content": "Hello"}], user="ana")
    extra = done.model_extra["reverie"]
    assert done.id == f"chatcmpl-{extra['turn_id']}" and done.choices[0].message.role == "assistant"
    assert done.usage.completion_tokens == 8 and done.choices[0].finish_reason == "length"
    assert extra["user"] == "ana" and extra["model_version"] == "base" and extra["adapter"] is None

    chunks = list(client.chat.completions.create(model="reverie", messages=[{"role": "user", "content": "Hi"}],
                                                 stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == "length"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 8  # one usage chunk, last
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert [m.id for m in client.models.list().data] == ["reverie", "base"]
    assert text is not None

    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="gpt-7", messages=[{"role": "user", "content": "Hi"}])
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError, match="last message must be a user message"):
        client.chat.completions.create(model="reverie", messages=[{"role": "assistant", "content": "Hi"}])


def test_threads_continue_by_id_and_a_stateless_request_starts_from_its_messages(serve):
    served = serve()
    client = served.client()
    first = client.chat.completions.create(model="reverie", messages=[{"role": "user", "content": "One"}],
                                           extra_body={"thread_id": "support-7"}, user="ana")
    client.chat.completions.create(model="reverie", messages=[{"role": "user", "content": "Two"}],
                                   extra_headers={"X-Reverie-Thread": "support-7"}, user="ana")
    assert first.model_extra["reverie"]["thread_id"] == "support-7"
    said = [t.content for t in served.agent.log(thread_id="support-7") if t.role == "user"]
    assert said == ["One", "Two"]
    with pytest.raises(openai.BadRequestError, match="belongs to user 'ana'"):
        client.chat.completions.create(model="reverie", messages=[{"role": "user", "content": "Hi"}],
                                       extra_body={"thread_id": "support-7"}, user="bob")
    # Stateless: the earlier messages are the new thread's start, only the last is answered and logged.
    done = client.chat.completions.create(model="reverie", user="ana", messages=[
        {"role": "system", "content": "ignored"}, {"role": "user", "content": "My name is Ana."},
        {"role": "assistant", "content": "Hello Ana."}, {"role": "user", "content": "What is my name?"}])
    thread = done.model_extra["reverie"]["thread_id"]
    assert [t.content for t in served.agent.log(thread_id=thread) if t.role == "user"] == ["What is my name?"]
    assert done.usage.prompt_tokens > first.usage.prompt_tokens  # the history was in the prompt


def test_keys_are_required_and_each_reaches_only_its_user(serve):
    served = serve(KEYS)
    missing = served.http().post("/v1/chat/completions", json={"model": "reverie", "messages": [
        {"role": "user", "content": "Hi"}]})  # the openai client itself refuses to send no key
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError, match="invalid API key"):
        served.client("wrong").models.list()
    ana, bob, root = served.http("ana-key"), served.http("bob-key"), served.http("root-key")
    taught = ana.post("/v1/memories", json={"text": "My bank PIN is 4821."}).json()["experience_id"]
    turn = served.client("ana-key").chat.completions.create(
        model="reverie", messages=[{"role": "user", "content": "Hello"}], extra_body={"thread_id": "ana-t"})
    turn_id = turn.model_extra["reverie"]["turn_id"]
    assert ana.post("/v1/feedback", json={"turn_id": turn_id, "kind": "up"}).status_code == 200

    # Bob, by every endpoint: nothing of Ana's.
    assert bob.get("/v1/memories").json() == {"memories": []}
    assert bob.get("/v1/memories", params={"user": "ana"}).status_code == 403
    assert bob.get("/v1/memories/search", params={"query": "bank PIN"}).json() == {"hits": []}
    assert bob.get("/v1/log").json() == {"turns": []} and bob.get("/v1/threads").json() == {"threads": []}
    assert bob.get("/v1/log", params={"thread_id": "ana-t"}).status_code == 404
    assert bob.post("/v1/feedback", json={"turn_id": turn_id, "kind": "down"}).status_code == 404
    assert bob.delete(f"/v1/memories/{taught}").status_code == 404
    assert bob.post("/v1/chat/completions", json={"model": "reverie", "messages": [{"role": "user", "content": "x"}],
                                                   "thread_id": "ana-t"}).status_code == 400
    assert [m["id"] for m in ana.get("/v1/memories").json()["memories"]] == [taught]

    # Admin endpoints: only the admin key.
    for path in ("/v1/jobs", "/v1/retention"):
        assert ana.get(path).status_code == 403 and root.get(path).status_code == 200
    assert ana.post("/v1/learn").json()["error"]["type"] == "permission_error"
    assert root.get("/v1/memories", params={"user": "ana"}).json()["memories"][0]["id"] == taught
    assert ana.get("/health").status_code == 200 and served.http().get("/health").status_code == 200


def test_recommendations_with_the_server_s_keys_each_user_s_tastes_their_own(serve, tmp_path):
    served = serve(KEYS)
    (tmp_path / "films.jsonl").write_text('{"id": "a", "title": "Harbour Lights", "genres": ["drama"]}\n'
                                          '{"id": "b", "title": "Rocket Garden", "genres": ["sci-fi"], "tags": ["space"]}\n'
                                          '{"id": "c", "title": "Moon Dogs", "genres": ["sci-fi"], "tags": ["dogs"]}\n')
    served.agent.import_catalogue(tmp_path / "films.jsonl")
    served.agent.teach("I love films about dogs.", user="ana")
    ana, bob = served.http("ana-key"), served.http("bob-key")
    ask = {"messages": [{"role": "user", "content": "Some science fiction, please."}], "k": 2}
    mine = ana.post("/v1/recommendations", json=ask)
    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert [p["id"] for p in body["items"]] == ["c", "b"] and body["tastes"] == ["I love films about dogs."]
    theirs = bob.post("/v1/recommendations", json=ask).json()
    assert theirs["tastes"] == [] and {p["id"] for p in theirs["items"]} == {"b", "c"}
    assert ana.get("/v1/catalogues").json()["catalogues"][0]["name"] == "films"

    assert served.http().post("/v1/recommendations", json=ask).status_code == 401
    refused = bob.post("/v1/recommendations", json={**ask, "user": "ana"})
    assert refused.status_code == 403 and refused.json()["error"]["type"] == "permission_error"
    missing = ana.post("/v1/recommendations", json={**ask, "catalogue": "books"})
    assert missing.status_code == 404 and "no catalogue 'books'" in missing.json()["error"]["message"]
    served.client("ana-key").chat.completions.create(model="reverie", messages=[{"role": "user", "content": "Hi"}],
                                                     extra_body={"thread_id": "ana-1"})
    assert bob.post("/v1/recommendations", json={"thread_id": "ana-1"}).status_code == 404
    assert ana.post("/v1/recommendations", json={"thread_id": "ana-1"}).status_code == 200
    for bad in ({}, {"messages": [{"role": "tool", "content": "x"}]}, {**ask, "k": 0}, {"messages": "hi"}):
        answer = ana.post("/v1/recommendations", json=bad)
        assert answer.status_code == 400 and set(answer.json()["error"]) == {"message", "type", "param", "code"}


def test_limits_answer_413_and_400_in_openai_s_shape(serve):
    served = serve(**{"serve.max_body_bytes": 4096, "serve.max_messages": 3, "serve.max_message_chars": 100})
    http = served.http()
    big = http.post("/v1/chat/completions", content=b"{" + b" " * 5000 + b"}", headers={"content-type": "application/json"})
    assert big.status_code == 413 and "over 4096 bytes" in big.json()["error"]["message"]
    many = http.post("/v1/chat/completions", json={"model": "reverie", "messages": [{"role": "user", "content": "a"}] * 4})
    assert many.status_code == 400 and "at most 3" in many.json()["error"]["message"]
    long = http.post("/v1/chat/completions", json={"model": "reverie", "messages": [{"role": "user", "content": "a" * 101}]})
    assert long.status_code == 400 and long.json()["error"]["type"] == "invalid_request_error"
    bad = http.post("/v1/chat/completions", json={"model": "reverie", "messages": "nope"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "messages"
    assert http.post("/v1/chat/completions", json={"model": "reverie", "messages": [{"role": "user", "content": "hi"}],
                                                   "temperature": 9}).status_code == 400


def test_a_client_that_leaves_mid_stream_stops_generation_and_keeps_its_message(serve):
    served = serve(max_new_tokens=200)
    with served.http() as http, http.stream("POST", "/v1/chat/completions", json={
            "model": "reverie", "stream": True, "messages": [{"role": "user", "content": "Tell me a long story."}],
            "thread_id": "leaving"}) as response:
        for line in response.iter_lines():
            if '"content": "' in line and '"role"' not in line:
                break  # the first piece of text: hang up
    deadline = time.time() + 60
    while served.agent.log(thread_id="leaving") == [] and time.time() < deadline:
        time.sleep(0.2)
    turns = served.agent.log(thread_id="leaving")
    assert [t.role for t in turns] == ["user"] and turns[0].content == "Tell me a long story."


def test_concurrent_clients_while_a_night_learns_lose_no_turn(serve):
    """Four clients x 25 turns while a night runs in its child process: every turn answered and logged."""
    from concurrent.futures import ThreadPoolExecutor

    from agent.daemon import Daemon

    served = serve(**{"gate.min_efficacy": 0.0, "selfparam.epochs": 2, "synthesis.samples": 0})
    agent = served.agent
    agent.teach("My bank PIN is 4821.", user="alice")
    daemon = Daemon(agent, {"model": agent.settings.model, "gate.min_efficacy": 0.0, "selfparam.epochs": 2,
                            "synthesis.samples": 0}, None, 3600)
    served.server.config.app.state.daemon = daemon
    daemon.start()
    try:
        job = daemon.request()
        _until(lambda: Jobs(agent.store).get(job.id).status == "running")

        def client(n: int) -> list[int]:
            with served.http() as http:
                return [http.post("/v1/chat/completions", json={
                    "model": "reverie", "user": f"user{n}", "thread_id": f"t{n}",
                    "messages": [{"role": "user", "content": f"Turn {i} from client {n}."}]}).status_code
                    for i in range(25)]

        with ThreadPoolExecutor(4) as pool:
            codes = [c for codes in pool.map(client, range(4)) for c in codes]
        assert codes == [200] * 100
        for n in range(4):
            said = [t.content for t in agent.log(thread_id=f"t{n}", limit=1000) if t.role == "user"]
            assert said == [f"Turn {i} from client {n}." for i in range(25)]
        assert _until(lambda: Jobs(agent.store).get(job.id).status in ("succeeded", "failed")) and \
            Jobs(agent.store).get(job.id).status == "succeeded"
    finally:
        daemon.stop()


def _until(check, timeout=240):
    deadline = time.time() + timeout
    while not check():
        assert time.time() < deadline, "timed out"
        time.sleep(0.3)
    return True
