"""Crash injection: the real `reverie` process is SIGKILLed right before or right after each write
of a chat turn and of a night's last steps, then a new process opens the same home.

A turn is in both databases or in neither; a night leaves an active version that loads, no
half-written version, no run still "running", and experience statuses that match what was
promoted. (The tiny model learns nothing; this is about what is written, not what is learned.)
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

# Replace one method by one that kills this process before or after the real call, then run the CLI.
DRIVER = """
import importlib, os, signal, sys
target, when, *argv = sys.argv[1:]
module, _, attr = target.partition(":")
owner_name, _, name = attr.partition(".")
owner = getattr(importlib.import_module(module), owner_name)
original = getattr(owner, name)
def killed(*args, **kwargs):
    if when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    result = original(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
    return result
setattr(owner, name, killed)
from agent.cli import main
main(argv)
"""


@pytest.fixture
def reverie_killed(home, tiny_dir):
    def run(target: str, when: str, *args: str) -> subprocess.CompletedProcess:
        argv = ["--model", str(tiny_dir), "--set", "max_new_tokens=4", *args]
        return subprocess.run([sys.executable, "-c", DRIVER, target, when, *argv], capture_output=True, text=True,
                              timeout=300, env=os.environ.copy())

    return run


TURN_WRITES = [("memory.store:Store.record_turns", "before"), ("memory.store:Store.record_turns", "after"),
               ("langgraph.checkpoint.sqlite:SqliteSaver.put", "before"),
               ("langgraph.checkpoint.sqlite:SqliteSaver.put", "after")]


@pytest.mark.parametrize("target, when", TURN_WRITES, ids=[f"{w}-{t.split('.')[-1]}" for t, w in TURN_WRITES])
def test_a_turn_killed_at_any_write_is_in_both_databases_or_neither(home, tiny_dir, reverie_killed, target, when):
    from agent import Agent
    from agent.chat import exchanges
    from graphs.chat import conversation

    with Agent.open(home, model=str(tiny_dir), max_new_tokens=4) as bot:
        thread = bot.chat("First message.").thread_id
    killed = reverie_killed(target, when, "ask", "Second message.", "--thread", thread)
    assert killed.returncode == -signal.SIGKILL

    with Agent.open(home, model=str(tiny_dir), max_new_tokens=4) as bot:
        bot.chat("Third message.", thread_id=thread)
        said = exchanges(bot.log(thread_id=thread))
        assert conversation(bot.graph, thread) == said  # the checkpoint holds exactly the log's exchanges
    asked = [m["content"] for m in said if m["role"] == "user"]
    assert asked[0] == "First message." and asked[-1] == "Third message."
    # Logged before the kill: kept, in both. Killed before the log: in neither.
    assert ("Second message." in asked) == (target.endswith("record_turns") and when == "after" or
                                            target.endswith("put"))


slow = pytest.mark.slow  # the default run kills at three writes; `make test-all` at every one
NIGHT_WRITES = [
    pytest.param("memory.retention:Retention.start_run", "after", marks=slow),
    pytest.param("memory.versions:Versions.create", "before", marks=slow),
    ("memory.versions:Versions.create", "after"),
    pytest.param("memory.retention:Retention.record_results", "after", marks=slow),
    pytest.param("memory.versions:Versions.promote", "before", marks=slow),
    ("memory.versions:Versions.promote", "after"),
    pytest.param("memory.retention:Retention.settle_statuses", "after", marks=slow),
    pytest.param("memory.versions:Versions.prune", "after", marks=slow),
    ("memory.retention:Retention.finish_run", "before"),
]


@pytest.mark.parametrize("target, when", NIGHT_WRITES)
def test_a_night_killed_at_any_write_leaves_a_consistent_home(home, tiny_dir, reverie_killed, target, when):
    from agent import Agent

    gate = {"min_efficacy": 0, "general_tolerance": 1, "perplexity_tolerance": 100}  # the tiny model: always pass
    fast = ("--set", "selfparam.epochs=1", "--set", "synthesis.samples=1",
            *(x for k, v in gate.items() for x in ("--set", f"gate.{k}={v}")))
    with Agent.open(home, model=str(tiny_dir)) as bot:
        bot.teach("My brother Teodor works in Port Halvik.",
                  probes=[{"question": "Where does Teodor work?", "answers": ["Port Halvik"]}])
    killed = reverie_killed(target, when, *fast, "learn")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]

    with Agent.open(home, model=str(tiny_dir), max_new_tokens=4, selfparam={"epochs": 1}, synthesis={"samples": 1},
                    gate=gate) as bot:  # opening finishes the dead run
        [run] = bot.retention.runs()
        assert run.status == "interrupted" and run.finished_at is not None
        active = bot.active_model()
        assert run.promoted == (run.version is not None and active.id == run.version)
        assert bot.chat("Where does Teodor work?").model_version == active.id  # the active version loads
        versions = home / "versions"
        assert not list(versions.glob(".staging-*")) if versions.is_dir() else True
        recorded = {Path(v.path).name for v in bot.versions.list() if v.parent and not v.pruned_at}
        assert {p.name for p in versions.iterdir()} == recorded if versions.is_dir() else not recorded
        [experience] = bot.memories()
        held = bot.retention.held_by(active.id)
        assert (experience.status == "consolidated") == (experience.id in held)
        # The next night goes on from there: a promoted night's experience is not new again.
        again = bot.learn()
        assert (again.stop == "nothing new to consolidate") == run.promoted
    db = sqlite3.connect(home / "reverie.db")
    assert db.execute("SELECT COUNT(*) FROM learn_runs WHERE status = 'running'").fetchone()[0] == 0
