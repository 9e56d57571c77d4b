"""`reverie serve` as people run it: a real process on loopback, stopped by SIGTERM or killed -9
while a night learns, and started again; `reverie status` and `reverie jobs`."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from agent import Agent
from memory.jobs import Jobs

NIGHT = ["--set", "gate.min_efficacy=0", "--set", "selfparam.epochs=2", "--set", "synthesis.samples=0",
         "--set", "learn.extract_turns=false", "--set", "max_new_tokens=8"]


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """`reverie serve` in its own process."""

    def __init__(self, home: Path, model: Path, *args: str) -> None:
        self.port, self.home = _port(), home
        exe = Path(sys.executable).with_name("reverie")
        self.process = subprocess.Popen([str(exe), "--model", str(model), *NIGHT, "serve", "--port", str(self.port),
                                         *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.time() + 120
        while True:
            assert self.process.poll() is None, self.process.stderr.read()
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.time() < deadline, "the server did not start"
            time.sleep(0.3)

    def children(self) -> list[int]:
        found = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True).stdout
        return [int(p) for p in found.split()]


def _jobs(home: Path) -> list:
    with Agent.open(home) as agent:
        return Jobs(agent.store).list()


def _until(check, timeout=240, every=0.3):
    deadline = time.time() + timeout
    while not (found := check()):
        assert time.time() < deadline, "timed out"
        time.sleep(every)
    return found


def test_binding_beyond_loopback_needs_keys(reverie, tiny_dir):
    result = reverie("--model", str(tiny_dir), "serve", "--host", "0.0.0.0", "--no-schedule")
    assert result.returncode == 2 and "binding 0.0.0.0 without API keys is refused" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    bad = reverie("--model", str(tiny_dir), "serve", "--schedule", "every night")
    assert bad.returncode == 2 and "bad schedule 'every night'" in bad.stderr


def test_sigterm_stops_the_server_cleanly_and_status_says_what_runs(home, tiny_dir, reverie):
    server = Server(home, tiny_dir, "--schedule", "0 3 * * *")
    status = json.loads(reverie("--model", str(tiny_dir), "status", "--json").stdout)
    assert status["server"]["url"] == f"{server.url}/v1" and status["active_version"] == "base"
    assert status["next_night"].endswith("03:00:00+00:00")
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=60) == 0
    assert json.loads(reverie("--model", str(tiny_dir), "status", "--json").stdout)["server"] is None


def _kill_during_a_night(home: Path, tiny_dir: Path, delay: float) -> None:
    with Agent.open(home, model=str(tiny_dir)) as agent:
        taught = [agent.teach("My bank PIN is 4821.", user="alice"), agent.teach("I live in Port Halvik.", user="bob")]
        [first] = [Jobs(agent.store).enqueue("learn", "manual", "manual-kill")]
        before = agent.active_model().id
    server = Server(home, tiny_dir, "--no-schedule")
    _until(lambda: [j for j in _jobs(home) if j.id == first.id and j.status == "running"])
    time.sleep(delay)
    night = server.children()
    server.process.kill()  # -9: no clean-up of any kind
    server.process.wait()
    _until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in night), timeout=30)  # the night died with it

    with Agent.open(home, model=str(tiny_dir)) as agent:
        versions = agent.models()
        assert all((Path(v.path) / "manifest.json").is_file() for v in versions if v.parent)  # none half-written
        assert agent.active_model().id in {before} | {v.id for v in versions}
        assert agent.chat("Hello", user="alice", recall=False).model_version == agent.active_model().id  # it loads
        assert sorted(e.id for e in agent.memories()) == sorted(taught)  # nothing taught is lost

    again = Server(home, tiny_dir, "--no-schedule")
    try:
        # Killed while the night ran: marked interrupted at restart and retried once. Killed after
        # the server wrote its outcome (a late moment): succeeded, and nothing to retry.
        ended = lambda: {j.attempt: j.status for j in _jobs(home)  # noqa: E731
                         if j.run_key == "manual-kill" and j.status not in ("scheduled", "running")}
        first_outcome = _until(lambda: ended().get(1))
        if first_outcome == "interrupted":
            assert _until(lambda: ended().get(2)) == "succeeded"
        assert ended() in ({1: "interrupted", 2: "succeeded"}, {1: "succeeded"})
    finally:
        again.process.send_signal(signal.SIGTERM)
        again.process.wait(timeout=120)


@pytest.mark.parametrize("delay", [1.0])
def test_a_server_killed_during_a_night_restarts_consistent_and_retries_it_once(home, tiny_dir, delay):
    _kill_during_a_night(home, tiny_dir, delay)


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.0, 0.5, 1.5, 3.0, 4.5, 6.0, 8.0, 10.0, 12.0, 15.0])
def test_ten_kills_at_varied_moments_of_a_night(home, tiny_dir, delay):
    _kill_during_a_night(home, tiny_dir, delay)
