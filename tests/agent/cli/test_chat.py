"""`reverie ask` and `reverie chat`: a turn, its --json shape, and the slash commands of a piped chat."""

import json


def test_ask_json_is_one_reply_object(cli):
    code, out, _ = cli("ask", "Hello", "--user", "ana", "--json")
    assert code == 0
    reply = json.loads(out)
    assert set(reply) == {"turn_id", "user_turn_id", "thread_id", "user", "text", "model_version", "adapter", "policy",
                          "verdicts", "memories", "latency_s", "prompt_tokens", "completion_tokens", "finish_reason",
                          "recommendation"}
    code, out, _ = cli("ask", "Again", "--thread", reply["thread_id"], "--user", "ana", "--json")
    assert json.loads(out)["thread_id"] == reply["thread_id"]
    code, out, _ = cli("log", "--thread", reply["thread_id"], "--json")
    assert [t["role"] for t in json.loads(out)["turns"]] == ["user", "assistant", "user", "assistant"]


def test_ask_prints_the_answer_and_a_summary_on_stderr(cli):
    code, out, err = cli("ask", "Hello")
    assert code == 0 and out.endswith("\n")  # the tiny model's text is noise, possibly blank
    assert "turn 2 · thread" in err and "base" in err


def test_piped_chat_runs_slash_commands(cli, monkeypatch):
    import io

    script = ("Hello\n/good\n/comment Too short.\n/remember I am allergic to peanuts.\n/new\nSecond thread\n"
              "/fix Right answer.\n/quit\nnever read\n")
    monkeypatch.setattr("sys.stdin", io.StringIO(script))
    code, out, err = cli("chat", "--user", "ana")
    assert code == 0
    assert "feedback 1 (up) on turn 2" in err
    assert "remembered as experience 1" in err
    assert "feedback 2 (comment) on turn 2" in err
    assert "feedback 3 (correction) on turn 4" in err
    code, out, _ = cli("log", "--json")
    turns = json.loads(out)["turns"]
    assert len(turns) == 4 and len({t["thread_id"] for t in turns}) == 2
    assert all(t["content"] != "never read" for t in turns)
