"""Every command under hostile arguments, generated (Hypothesis): never exit 70, never a traceback,
every error one line, and nothing written when a command fails. Then stored hostile text shown by
every listing command: displayed as text, never as markup or raw control codes.

Bounded (a few dozen examples per property) so `make test` stays inside its budget;
`examples/hostile_inputs.py` runs a larger sweep through the real console script.
"""

from __future__ import annotations

import re
import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# Integers at and beyond SQLite's 64 bits, negative, zero.
INTEGERS = st.one_of(
    st.sampled_from([0, -1, 1, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**23]),
    st.integers(min_value=-(2**70), max_value=2**70),
)
# Text a person could put on a command line: markup, escape sequences, bidi overrides, very long.
# (No NUL: no operating system passes one in an argument; files and stdin carry those.)
HOSTILE_TEXT = st.one_of(
    st.sampled_from(["", " ", "[/oops]", "[bold]x", "\x1b[2J", "\x1b]0;pwned\x07", "\u202eevil", "-", "--", "-5",
                     "x" * 300_000, "é" * 5000, "\ud7ff", "../../etc/passwd", "%s%n", "{0}", "'; DROP TABLE turns; --"]),
    st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=40),
)
INT_TEXT = INTEGERS.map(str)


def paths(tmp):
    (tmp / "a-file").write_text("x")
    (tmp / "a-folder").mkdir(exist_ok=True)
    return st.sampled_from([str(tmp / "missing" / "out.png"), str(tmp / "a-folder"), str(tmp / "a-file" / "x.png"),
                            str(tmp / "out.png"), str(tmp / "out.jsonl"), "", "/proc/version"])


def commands(tmp):
    path = paths(tmp)
    t, n = HOSTILE_TEXT, INT_TEXT
    return st.one_of(
        st.tuples(st.just("feedback"), n, st.sampled_from(["--up", "--down"])),
        st.tuples(st.just("feedback"), n, st.just("--fix"), t),
        st.tuples(st.just("feedback"), st.just("show"), n),
        st.tuples(st.just("feedback"), st.just("list"), st.just("--kind"), t),
        st.tuples(st.just("feedback"), st.just("export"), st.just("-o"), path),
        st.tuples(st.just("feedback"), st.just("import"), path, st.just("--format"), t),
        st.tuples(st.just("memory"), st.just("forget"), n),
        st.tuples(st.just("memory"), st.just("search"), t, st.just("-k"), n),
        st.tuples(st.just("memory"), st.just("list"), st.just("--user"), t),
        st.tuples(st.just("memory"), st.just("export"), st.just("-o"), path),
        st.tuples(st.just("teach"), t),
        st.tuples(st.just("teach"), st.just("--file"), path),
        st.tuples(st.just("teach"), st.just("fact"), st.just("--probe"), t),
        st.tuples(st.just("log"), st.just("-n"), n),
        st.tuples(st.just("log"), st.just("--thread"), t, st.just("--user"), t),
        st.tuples(st.just("ask"), t),
        st.tuples(st.just("ask"), st.just("hi"), st.just("--thread"), t),
        st.tuples(st.just("ask"), st.just("hi"), st.just("--user"), t),
        st.tuples(st.just("models"), st.sampled_from(["show", "promote", "rollback"]), t),
        st.tuples(st.just("models"), st.just("diff"), t, t),
        st.tuples(st.just("models"), st.just("prune"), st.just("--keep"), n),
        st.tuples(st.just("retention"), st.just("--plot"), path),
        st.tuples(st.just("threads"), st.just("repair"), t),
        st.tuples(st.just("learn"), st.just("--only"), t),
        st.tuples(st.just("learn"), st.just("--user"), t),
        st.tuples(st.just("judge"), st.just("rank"), st.just("--instruction"), t, t, t),
        st.tuples(st.just("judge"), st.just("consistency"), path),
        st.tuples(st.just("--set"), t.map(lambda s: f"{s}={s}"), st.just("log")),
        st.tuples(st.just("--set"), st.sampled_from(["recall_k", "selfparam.lr", "models_dir", "home", "gate"]).map(
            lambda k: f"{k}="), st.just("log")),
        st.tuples(st.just("--home"), path, st.just("log")),
    )


def fingerprint(home) -> tuple:
    """Rows of every table of the log, and what the versions folder holds."""
    if not (home / "reverie.db").is_file():
        return ()
    db = sqlite3.connect(home / "reverie.db")
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    rows = tuple((t, db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in tables)
    db.close()
    folder = home / "versions"
    return rows, tuple(sorted(p.name for p in folder.iterdir())) if folder.is_dir() else ()


def check(cli, home, args):
    before = fingerprint(home)
    code, out, err = cli(*args)
    assert code != 70 and "Traceback" not in err and "Traceback" not in out, (args, err[-500:])
    if code != 0:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, err[-500:])
        if args[0] != "ask":  # a failed turn keeps what the user said (by design); nothing else is kept
            assert fingerprint(home) == before, args
    return code, out, err


@pytest.fixture
def seeded(cli, home):
    """A home with a taught fact, a turn and feedback on it, so ids and threads exist."""
    assert cli("teach", "My dog is called Pimento.")[0] == 0
    assert cli("ask", "hello", "--json")[0] == 0
    assert cli("feedback", "2", "--up")[0] == 0
    return home


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_no_argument_makes_a_command_crash_or_half_write(cli, seeded, tmp_path, data):
    args = list(data.draw(commands(tmp_path)))
    check(cli, seeded, args)


CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(
    st.sampled_from(["[/oops]", "[bold red]x[/]", "\x1b[2J\x1b[H", "\x1b]0;pwned\x07", "\u202eevil", "a\rb", "\x9b31m"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30),
))
def test_stored_text_is_shown_as_text_by_every_listing(cli, home, tiny_dir, text):
    from agent import Agent, InvalidInput

    with Agent.open(home, model=str(tiny_dir), max_new_tokens=4) as bot:
        try:  # straight through the Python API: whatever a caller or an import could store
            bot.teach(f"Note: {text}", user="u")
            reply = bot.chat(f"About {text}", user="u")
            bot.feedback(reply.turn_id, "comment", text=f"c {text}")
        except InvalidInput:  # NUL bytes, and text that is only blanks, are refused at the door
            return
    listings = [("memory", "list"), ("memory", "list", "--all"), ("memory", "search", "Note", "--user", "u"),
                ("feedback", "list"), ("feedback", "show", "1"), ("log",), ("threads", "list"), ("log", "--user", "u")]
    for args in listings:
        code, out, err = cli(*args)
        assert code == 0, (args, err)
        assert not CONTROL.search(out.replace("\n", "").replace("\t", "")), (args, out)
