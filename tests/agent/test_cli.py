"""The CLI: thin commands over the facade, stable --json, one-line errors with distinct exit codes."""

import json
import sqlite3

import pytest

from agent.cli import run


@pytest.fixture
def cli(tiny_dir, capsys):
    """Run `reverie ARGS` in this process on the tiny model; returns (code, stdout, stderr)."""

    def call(*args):
        code = run(["--model", str(tiny_dir), "--set", "max_new_tokens=6", *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return call


def one_line_error(err):
    lines = err.strip().splitlines()
    return len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err


def test_ask_json_is_one_reply_object(cli):
    code, out, _ = cli("ask", "Hello", "--user", "ana", "--json")
    assert code == 0
    reply = json.loads(out)
    assert set(reply) == {"turn_id", "user_turn_id", "thread_id", "user", "text", "model_version", "verdicts",
                          "memories", "latency_s", "prompt_tokens", "completion_tokens", "finish_reason"}
    code, out, _ = cli("ask", "Again", "--thread", reply["thread_id"], "--user", "ana", "--json")
    assert json.loads(out)["thread_id"] == reply["thread_id"]
    code, out, _ = cli("log", "--thread", reply["thread_id"], "--json")
    assert [t["role"] for t in json.loads(out)["turns"]] == ["user", "assistant", "user", "assistant"]


def test_ask_prints_the_answer_and_a_summary_on_stderr(cli):
    code, out, err = cli("ask", "Hello")
    assert code == 0 and out.endswith("\n")  # the tiny model's text is noise, possibly blank
    assert "turn 2 · thread" in err and "base" in err


def test_teach_memory_and_feedback_commands(cli, tmp_path):
    facts = tmp_path / "facts.txt"
    facts.write_text("My dog is called Pimento.\n\nI live in Port Halvik.\n", encoding="utf-8")
    code, out, _ = cli("teach", "--file", str(facts), "--user", "ana", "--json")
    assert code == 0 and json.loads(out) == {"experience_ids": [1, 2]}
    code, out, _ = cli("memory", "search", "what is my dog called", "--user", "ana", "--json")
    assert json.loads(out)["hits"][0]["id"] == 1
    code, out, _ = cli("memory", "forget", "1", "--json")
    assert json.loads(out)["status"] == "forgotten"
    code, out, _ = cli("memory", "list", "--json")
    assert [m["id"] for m in json.loads(out)["memories"]] == [2]

    _, out, _ = cli("ask", "Where do I live?", "--user", "ana", "--json")
    turn = json.loads(out)["turn_id"]
    code, out, _ = cli("feedback", str(turn), "--fix", "You live in Port Halvik.", "--json")
    assert code == 0 and json.loads(out)["kind"] == "correction" and json.loads(out)["turn_id"] == turn
    code, out, _ = cli("feedback", str(turn), "--up", "--comment", "nice", "--json")
    assert json.loads(out)["payload"] == {"text": "nice"}
    code, out, _ = cli("memory", "export", "--user", "ana")
    exported = json.loads(out)
    assert [f["kind"] for f in exported["feedback"]] == ["correction", "up"]
    assert [e["source"] for e in exported["experiences"]] == ["taught", "taught", "correction"]
    code, out, _ = cli("memory", "reindex", "--json")
    assert json.loads(out) == {"indexed": 3}  # 2 live experiences + 1 user turn


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


def test_config_show_and_paths(cli, home):
    code, out, _ = cli("config", "show", "--json")
    shown = json.loads(out)
    assert shown["settings"]["max_new_tokens"] == 6 and shown["sources"]["max_new_tokens"] == "flag"
    assert shown["settings"]["home"] == str(home)
    code, out, _ = cli("paths", "--json")
    assert json.loads(out)["database"] == str(home / "reverie.db")


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["ask", "   "], 2, "empty message"),
        (["ask", "word " * 5000], 2, "message too long"),
        (["ask", "hi", "--thread", "nope"], 3, "no thread 'nope'"),
        (["feedback", "99", "--up"], 3, "no turn 99"),
        (["feedback", "1", "--up", "--down"], 2, "give one of --up"),
        (["log", "--thread", "nope"], 3, "no thread"),
        (["memory", "forget", "7"], 3, "no experience 7"),
        (["teach"], 2, "give the text to teach"),
        (["--set", "recall_k=zero", "log"], 2, "bad setting recall_k"),
        (["--set", "nonsense", "log"], 2, "--set takes KEY=VALUE"),
        (["--model", "embedded:gpt-7", "ask", "hi"], 5, "unknown embedded model"),
    ],
)
def test_bad_input_is_one_line_and_a_nonzero_exit(cli, args, code, message):
    got, out, err = cli(*args)
    assert got == code, err
    assert one_line_error(err) and message in err


def test_teach_refuses_non_utf8_and_binary_files_whole(cli, tmp_path):
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("Caf\xe9 au lait.\nSecond line.\n".encode("latin-1"))
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\x89PNG\x00\x00\x01")
    for path, message in ((latin, "is not UTF-8"), (binary, "binary file")):
        code, _, err = cli("teach", "--file", str(path))
        assert code == 2 and one_line_error(err) and message in err
    assert json.loads(cli("memory", "list", "--json")[1]) == {"memories": []}


def test_a_corrupt_or_locked_database_is_one_line(cli, home):
    assert cli("teach", "fine")[0] == 0
    locker = sqlite3.connect(home / "reverie.db", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    code, _, err = cli("--set", "db_timeout_s=0.2", "teach", "blocked")
    locker.execute("ROLLBACK")
    locker.close()
    assert code == 4 and one_line_error(err) and "locked by another process" in err

    for name in ("reverie.db", "reverie.db-wal", "reverie.db-shm"):
        (home / name).unlink(missing_ok=True)
    (home / "reverie.db").write_bytes(b"garbage" * 1000)
    code, _, err = cli("log")
    assert code == 4 and one_line_error(err) and "corrupt" in err


def test_the_console_script(reverie, tiny_dir):
    version = reverie("--version")
    assert version.returncode == 0 and version.stdout.startswith("reverie ")
    bad = reverie("--model", str(tiny_dir), "ask", "")
    assert bad.returncode == 2 and bad.stderr.strip() == "error: empty message" and bad.stdout == ""
    usage = reverie("feedback", "add")
    assert usage.returncode == 2 and "Missing argument" in usage.stderr and "Traceback" not in usage.stderr


def test_models_commands(cli, tiny_dir, tiny_dir_b, home):
    import shutil

    from agent import Agent

    code, out, _ = cli("models", "list", "--json")
    assert code == 0 and json.loads(out)["active"] == "base"
    with Agent.open(home, model=str(tiny_dir)) as bot:
        for parent, note in (("base", "first"), ("v1", "second")):
            bot.versions.create(parent=parent, learner="test", manifest={"note": note},
                                write=lambda folder: [shutil.copy(f, folder / f.name) for f in tiny_dir_b.iterdir()])
    assert json.loads(cli("models", "promote", "v2", "--reason", "test", "--json")[1])["id"] == "v2"
    listed = json.loads(cli("models", "list", "--json")[1])
    assert listed["active"] == "v2" and [v["id"] for v in listed["versions"]] == ["base", "v1", "v2"]
    assert json.loads(cli("models", "show", "v2", "--json")[1])["manifest"]["note"] == "second"
    assert json.loads(cli("models", "diff", "v1", "v2", "--json")[1])["changed"]["note"] == {"a": "first", "b": "second"}
    assert json.loads(cli("ask", "hi", "--json")[1])["model_version"] == "v2"
    assert json.loads(cli("models", "rollback", "--json")[1])["id"] == "v1"
    assert json.loads(cli("models", "prune", "--keep", "0", "--json")[1]) == {"pruned": ["v2"]}
    code, _, err = cli("models", "promote", "v2")
    assert code == 2 and one_line_error(err) and "pruned" in err
    code, _, err = cli("models", "show", "v7")
    assert code == 3 and one_line_error(err)


def test_learn_and_retention_commands(cli, tmp_path):
    fast = ("--set", "learn_epochs=1", "--set", "synthesis_samples=1", "--set", "gate_min_efficacy=0")
    code, out, _ = cli(*fast, "learn")
    assert code == 0 and "nothing new to consolidate" in out
    code, _, err = cli("teach", "Teodor works in Port Halvik.", "--probe", "Where does Teodor work")
    assert code == 2 and one_line_error(err) and "QUESTION=ANSWER" in err
    code, _, _ = cli("teach", "My brother Teodor works in Port Halvik.", "--probe", "Where does Teodor work?=Port Halvik")
    assert code == 0
    code, out, _ = cli(*fast, "learn", "--dry-run", "--json")
    assert code == 0 and json.loads(out)["dry_run"] and json.loads(out)["run_id"] is None
    code, out, _ = cli(*fast, "learn", "--json")
    report = json.loads(out)
    assert code == 0 and report["version"] == "v1" and report["promoted"]
    assert set(report["figures"]) >= {"efficacy", "general_contains", "perplexity"}
    assert report["synthesis"]["1"]["probes"] == ["Where does Teodor work?"]  # the given one, no other

    plot = tmp_path / "retention.png"
    code, out, err = cli("retention", "--json", "--plot", str(plot))
    retention = json.loads(out)
    assert code == 0 and [r["version"] for r in retention["runs"]] == ["v1"]
    assert retention["points"][0]["age"] == 0 and retention["by_age"][0]["experiences"] == 1
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, out, _ = cli("retention")
    assert code == 0 and "v1" in out and "by age" in out

    code, _, err = cli("retention", "--plot", str(tmp_path / "retention.txt"))
    assert code == 2 and one_line_error(err) and "PNG" in err
    code, _, err = cli("learn", "--only", "cory")
    assert code == 2 and one_line_error(err)


def test_judge_commands(cli, tmp_path):
    # The tiny model's verdicts are noise: this checks the commands' shape, not their judgement.
    problem, code_file = tmp_path / "problem.txt", tmp_path / "code.py"
    problem.write_text("Return the sum of a list.\n")
    code_file.write_text("def total(xs):\n    return sum(xs)\n")
    code, out, _ = cli("judge", "code", "--problem", str(problem), "--code", str(code_file), "--mode", "graded", "--json")
    verdict = json.loads(out)
    assert code == 0 and verdict["kind"] == "code" and verdict["mode"] == "graded"
    assert verdict["result"] in ("yes", "no", "invalid") and verdict["language"] == "Python"

    code, out, _ = cli("judge", "rank", "--instruction", "Which number is larger?", "--json", "--", "3", "-1", "12")
    ranking = json.loads(out)
    assert code == 0 and sorted(ranking["order"]) == [0, 1, 2] and ranking["items"] == ["3", "-1", "12"]
    assert set(ranking["raw"]) == {"s_comm", "s_neg", "s_tran_3"} and ranking["calibrated"]["s_comm"] == 1.0

    sets = tmp_path / "sets.jsonl"
    sets.write_text('{"id": "n", "instruction": "Which is larger?", "negated_instruction": "Which is smaller?", '
                    '"items": ["1", "2", "3"], "true_order": [2, 1, 0]}\n')
    code, out, _ = cli("judge", "consistency", str(sets), "--json")
    report = json.loads(out)
    assert code == 0 and report["sets"][0]["id"] == "n" and report["comparator_calls"] == 12
    assert set(report["overall"]["calibrated"]) == {"s_comm", "s_neg", "s_tran_3", "agreement"}
    code, out, _ = cli("judge", "consistency", str(sets))
    assert code == 0 and "overall calibrated" in out


def test_judge_refuses_bad_input_in_one_line(cli, tmp_path):
    problem, empty, binary = tmp_path / "p.txt", tmp_path / "empty.py", tmp_path / "blob.bin"
    problem.write_text("Sum a list.")
    empty.write_text("   \n")
    binary.write_bytes(b"\x00\x01def")
    sets = tmp_path / "sets.jsonl"
    sets.write_text('{"instruction": "Which?", "items": ["a", "b"]}\n{"instruction": "Which?", "items": ["a"]}\n')
    for args, message in [
        (["--code", str(empty)], "code is empty"),
        (["--code", str(binary)], "binary file"),
        (["--code", str(problem), "--language", "cobol"], "unknown language 'cobol'"),
        (["--code", str(problem), "--mode", "fuzzy"], "unknown mode"),
        (["--code", str(tmp_path / "missing.py")], "cannot read"),
    ]:
        code, _, err = cli("judge", "code", "--problem", str(problem), *args)
        assert code == 2 and one_line_error(err) and message in err, (args, err)
    code, _, err = cli("judge", "consistency", str(sets))
    assert code == 2 and one_line_error(err) and "line 2: ranking needs at least two items" in err
    code, _, err = cli("judge", "rank", "--instruction", "Which?", "only one")
    assert code == 2 and one_line_error(err)


def test_feedback_import_clean_list_show_export(cli, tmp_path):
    data = tmp_path / "prefs.jsonl"
    good = {"prompt": "What is 2+2?", "chosen": "4.", "rejected": "5.", "source": "rater_A"}
    hh = tmp_path / "hh.jsonl"
    data.write_text("\n".join([json.dumps(good), "{oops", json.dumps({"prompt": "Q?", "chosen": "a"}),
                               json.dumps({**good, "prompt": "What is 3+3?", "chosen": "6."})]) + "\n")
    hh.write_text(json.dumps({"chosen": "\n\nHuman: Hi\n\nAssistant: Hello!", "rejected": "\n\nHuman: Hi\n\nAssistant: Go away."}) + "\n")
    code, out, _ = cli("feedback", "import", str(data), "--json")
    report = json.loads(out)
    assert code == 0 and report["imported"] == [{"line": 1, "feedback_id": 1}, {"line": 4, "feedback_id": 2}]
    assert [e["line"] for e in report["errors"]] == [2, 3]
    code, _, err = cli("feedback", "import", str(hh), "--format", "hh", "--source", "hh-sample")
    assert code == 0 and "imported 1 preference pair(s); 0 line(s) refused" in err
    code, _, err = cli("feedback", "import", str(hh), "--format", "csv")
    assert code == 2 and one_line_error(err) and "unknown format" in err

    # The default committee on the tiny model: its votes are noise; this checks the command.
    code, out, _ = cli("feedback", "clean", "--json")
    cleaned = json.loads(out)
    assert code == 0 and cleaned["run_id"] == 1 and len(cleaned["items"]) == 3
    assert all(i["action"] in ("keep", "flip", "remove") and i["reason"] and i["votes"] for i in cleaned["items"])
    assert {i["source"] for i in cleaned["items"]} == {"rater_A", "hh-sample"}
    code, out, _ = cli("feedback", "clean")
    assert code == 0 and "nothing new since view 1" in out
    code, out, _ = cli("feedback", "clean", "--method", "vote_all_r", "--dry-run")
    assert code == 0 and "by source of unreliability" in out
    code, _, err = cli("feedback", "clean", "--method", "magic")
    assert code == 2 and one_line_error(err)

    code, out, _ = cli("feedback", "list", "--json")
    assert code == 0 and [f["source"] for f in json.loads(out)["feedback"]] == ["rater_A", "rater_A", "hh-sample"]
    code, out, _ = cli("feedback", "show", "1", "--json")
    assert code == 0 and json.loads(out)["decisions"][0]["run_id"] == 1
    code, _, err = cli("feedback", "show", "99")
    assert code == 3 and one_line_error(err)
    code, out, _ = cli("feedback", "export")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(rows) == 3 and rows[0]["chosen"] == [{"role": "assistant", "content": "4."}]
    code, out, _ = cli("feedback", "export", "--cleaned")
    assert code == 0 and len(out.splitlines()) == 3 - cleaned["counts"]["remove"]
