"""Two processes chatting on one data home at once lose no turn."""

import subprocess
import sys

from agent import Agent

WORKER = """
import sys
from agent import Agent
model, name, shared, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with Agent.open(model=model, max_new_tokens=48) as bot:
    own = None
    for i in range(n):
        own = bot.chat(f"{name} own {i}", thread_id=own).thread_id
        bot.chat(f"{name} shared {i}", thread_id=shared)
        bot.teach(f"{name} fact {i}")
"""


def test_two_processes_lose_no_turn(home, tiny_dir):
    with Agent.open(home, model=str(tiny_dir), max_new_tokens=3) as bot:
        shared = bot.chat("opening").thread_id
    n = 6
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(tiny_dir), name, shared, str(n)], stderr=subprocess.PIPE, text=True)
        for name in ("left", "right")
    ]
    for w in workers:
        assert w.wait(timeout=600) == 0, w.stderr.read()

    with Agent.open(home, model=str(tiny_dir)) as bot:
        said = [t.content for t in bot.log() if t.role == "user"]
        assert len(bot.log()) == 2 * (1 + 2 * 2 * n)  # every turn of both processes, with its reply
        for name in ("left", "right"):
            assert [s for s in said if s.startswith(f"{name} own")] == [f"{name} own {i}" for i in range(n)]
            assert sorted(s for s in said if s.startswith(f"{name} shared")) == [f"{name} shared {i}" for i in range(n)]
        # The shared thread's conversation holds every message of both processes, none overwritten.
        state = bot.graph.get_state({"configurable": {"thread_id": shared}}).values
        users = [m["content"] for m in state["messages"] if m["role"] == "user"]
        assert sorted(users) == sorted(["opening"] + [f"{w} shared {i}" for w in ("left", "right") for i in range(n)])
        assert len(state["messages"]) == 2 * len(users)
        assert len(bot.memories()) == 2 * n
        assert len(bot.search("right fact", k=20)) == 2 * n  # and all of them are searchable
