"""`reverie log`: every turn by thread, filtered by thread, user and count."""

import json


def test_log_filters_by_user_thread_and_count(cli):
    first = json.loads(cli("ask", "Hello", "--user", "ana", "--json")[1])
    cli("ask", "Hi", "--user", "bo", "--json")
    turns = lambda *args: json.loads(cli("log", *args, "--json")[1])["turns"]  # noqa: E731
    assert [t["user"] for t in turns()] == ["ana", "ana", "bo", "bo"]
    assert {t["thread_id"] for t in turns("--user", "ana")} == {first["thread_id"]}
    assert [t["id"] for t in turns("--thread", first["thread_id"])] == [first["user_turn_id"], first["turn_id"]]
    assert [t["role"] for t in turns("-n", "1")] == ["assistant"] and turns("-n", "1")[0]["user"] == "bo"
    code, out, _ = cli("log", "--user", "ana")
    assert code == 0 and f"thread {first['thread_id']}" in out and "bo" not in out
