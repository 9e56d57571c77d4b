"""The root command: global options, the console script, and one-line errors with distinct exit codes."""

import sqlite3

import pytest


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["ask", "   "], 2, "empty message"),
        (["ask", "word " * 5000], 2, "message too long"),
        (["ask", "hi", "--thread", "two words"], 2, "bad thread id 'two words'"),
        (["feedback", "99", "--up"], 3, "no turn 99"),
        (["feedback", "1", "--up", "--down"], 2, "give one of --up"),
        (["log", "--thread", "nope"], 3, "no thread"),
        (["memory", "forget", "7"], 3, "no experience 7"),
        (["teach"], 2, "give the text to teach"),
        (["--set", "recall_k=zero", "log"], 2, "bad setting recall_k"),
        (["--set", "nonsense", "log"], 2, "--set takes KEY=VALUE"),
        (["--set", "home=/elsewhere", "log"], 2, "--set cannot set home; use --home"),
        (["--set", "selfparam.epochs=0", "log"], 2, "bad setting selfparam.epochs (from a flag)"),
        (["--model", "embedded:gpt-7", "ask", "hi"], 5, "unknown embedded model"),
    ],
)
def test_bad_input_is_one_line_and_a_nonzero_exit(cli, args, code, message, one_line_error):
    got, out, err = cli(*args)
    assert got == code, err
    assert one_line_error(err) and message in err


def test_a_corrupt_or_locked_database_is_one_line(cli, home, one_line_error):
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
