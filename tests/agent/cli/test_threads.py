"""`reverie threads list` and `reverie threads repair`: a damaged checkpoint is named, with the way
forward, and repaired from the log; a deleted one costs no history."""

import json
import sqlite3


def _ask(cli, text, thread=None):
    code, out, err = cli("ask", text, "--json", *(["--thread", thread] if thread else []))
    return code, (json.loads(out) if code == 0 else None), err


def test_a_damaged_checkpoint_is_named_and_repaired_from_the_log(cli, home, one_line_error):
    _, first, _ = _ask(cli, "My first message.")
    thread = first["thread_id"]
    _ask(cli, "My second message.", thread)
    db = sqlite3.connect(home / "checkpoints.db")
    db.execute("UPDATE checkpoints SET checkpoint = x'c1' WHERE thread_id = ?", (thread,))  # truncated msgpack
    db.commit()
    db.close()

    code, _, err = _ask(cli, "Third.", thread)
    assert code == 4 and one_line_error(err)
    assert f"thread {thread}" in err and f"reverie threads repair {thread}" in err
    code, out, _ = cli("threads", "repair", thread, "--json")
    assert code == 0 and json.loads(out) == {"thread_id": thread, "messages": 4}  # two exchanges, from the log

    code, third, _ = _ask(cli, "Third.", thread)
    assert code == 0 and third["prompt_tokens"] > first["prompt_tokens"]  # the history is back in the prompt
    code, out, _ = cli("log", "--thread", thread, "--json")
    said = [t["content"] for t in json.loads(out)["turns"] if t["role"] == "user"]
    assert said == ["My first message.", "My second message.", "Third.", "Third."]  # the failed turn's words kept


def test_a_deleted_checkpoint_file_loses_no_history(cli, home):
    _, first, _ = _ask(cli, "Remember this conversation.")
    _, second, _ = _ask(cli, "And this.", first["thread_id"])
    for name in ("checkpoints.db", "checkpoints.db-wal", "checkpoints.db-shm"):
        (home / name).unlink(missing_ok=True)
    _, third, _ = _ask(cli, "And this.", first["thread_id"])
    assert third["prompt_tokens"] > second["prompt_tokens"]  # rebuilt from the log before the turn


def test_threads_list_and_unknown_threads(cli, one_line_error):
    _, a, _ = _ask(cli, "Hello")
    code, out, _ = cli("threads", "list", "--json")
    assert code == 0 and [t["id"] for t in json.loads(out)["threads"]] == [a["thread_id"]]
    code, _, err = cli("threads", "repair", "nope")
    assert code == 3 and one_line_error(err) and "no thread 'nope'" in err
