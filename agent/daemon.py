"""`reverie serve`'s background half: nights on a cron schedule, or on request, each run once.

    scheduler (APScheduler 3.x, BackgroundScheduler, jobs kept in HOME/scheduler.db)
        └─ fires "nightly" at each cron time (UTC) ──► a row in `jobs` keyed by that time
    worker thread: takes the next 'scheduled' row, claims it (a lease), runs the night in a child
        process (`python -m agent.daemon`) at low priority, renews the lease while it runs, and
        writes the outcome; the server goes on answering and serves a promoted version at its
        next turn (hot reload, as in the CLI)

Exactly once: the row's key is the scheduled time, unique per (kind, key, attempt), so two
processes firing the same night insert one row and one of them claims it. A missed night (the
machine was down or asleep) runs once at start when it is within ``misfire_grace_s`` of its
time, and not at all outside it: APScheduler's default grace of 1 s silently drops late runs.
A run found ``running`` with an expired lease at start-up was abandoned: it is marked
``interrupted`` and queued once more. The optional early trigger (``serve.idle_min_new``) checks
every minute: when at least that many experiences wait in no adapter and no turn came for
``serve.idle_quiet_min`` minutes, a night runs now, keyed by the newest waiting experience (so
the same waiting set triggers once, whichever process sees it first). The child dies with its parent (PR_SET_PDEATHSIG), so a
killed server leaves no orphan learning on its own.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import ConfigError
from memory.jobs import Jobs
from memory.records import Job

if TYPE_CHECKING:
    from agent.facade import Agent

log = logging.getLogger("reverie.daemon")
NIGHTLY = "nightly"
IDLE = "idle-check"
_DAEMONS: dict[str, Daemon] = {}  # the running daemon of each home in this process, for the scheduler


def cron_trigger(expression: str):
    """A 5-field cron expression in UTC, or one clear ConfigError."""
    from apscheduler.triggers.cron import CronTrigger

    try:
        return CronTrigger.from_crontab(expression, timezone=timezone.utc)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"bad schedule {expression!r}: {exc} (5 fields, UTC: minute hour day month weekday)") from exc


def scheduled_time(trigger, at: datetime) -> datetime | None:
    """The latest fire time of ``trigger`` at or before ``at``: the run a late firing belongs to."""
    latest, probe = None, at - timedelta(days=8)
    while (fire := trigger.get_next_fire_time(latest, probe)) is not None and fire <= at:
        latest, probe = fire, fire + timedelta(microseconds=1)
    return latest


def next_night(home: Path) -> str | None:
    """The next scheduled night, read from the scheduler's store (no scheduler needed)."""
    import sqlite3

    path = Path(home) / "scheduler.db"
    if not path.is_file():
        return None
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            row = db.execute("SELECT next_run_time FROM apscheduler_jobs WHERE id = ?", (NIGHTLY,)).fetchone()
    except sqlite3.Error:
        return None
    return datetime.fromtimestamp(row[0], timezone.utc).isoformat() if row and row[0] else None


def nightly(home: str) -> None:
    """What the scheduler calls (by reference, so the job store can persist it)."""
    daemon = _DAEMONS.get(home)
    if daemon is not None:
        daemon.fire()


def idle_check(home: str) -> None:
    daemon = _DAEMONS.get(home)
    if daemon is not None:
        daemon.check_idle()


class Daemon:
    def __init__(self, agent: Agent, overrides: dict[str, Any], schedule: str | None, grace_s: float,
                 lease_s: float = 30.0, nice: int = 10, threads: int = 1,
                 idle: tuple[int, float] | None = None) -> None:
        self.agent, self.overrides, self.schedule = agent, overrides, schedule
        self.idle = idle  # (experiences waiting, seconds without a turn): learn early; None: only on schedule
        self.trigger = cron_trigger(schedule) if schedule else None
        self.grace_s, self.lease_s, self.nice, self.threads = grace_s, lease_s, nice, threads
        self.home = str(agent.settings.home)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.jobs = Jobs(agent.store)
        self.scheduler = None
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.child: subprocess.Popen | None = None
        self.worker = threading.Thread(target=self._work, name="reverie-nights", daemon=True)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
        from apscheduler.schedulers.background import BackgroundScheduler

        for retry in self.jobs.expire(gone=self._gone):
            log.warning("job %s: an earlier run was interrupted; running it once more", retry.run_key)
        _DAEMONS[self.home] = self
        self.scheduler = BackgroundScheduler(
            timezone=timezone.utc,
            jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{Path(self.home) / 'scheduler.db'}")},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": int(self.grace_s)},
        )
        self.scheduler.start(paused=True)  # look at the stored job before anything fires
        stored = self.scheduler.get_job(NIGHTLY)
        if self.trigger is None:
            if stored is not None:
                stored.remove()
        elif stored is None or str(stored.trigger) != str(self.trigger):
            # A new or changed schedule starts from now; an unchanged one keeps its next run time,
            # so a night missed while the process was down is still due.
            self.scheduler.add_job(nightly, self.trigger, args=[self.home], id=NIGHTLY, replace_existing=True,
                                   misfire_grace_time=int(self.grace_s), coalesce=True, max_instances=1)
        else:  # today's grace, whatever the stored job was given when it was added
            stored.modify(misfire_grace_time=int(self.grace_s), coalesce=True, max_instances=1)
        if self.idle:
            self.scheduler.add_job(idle_check, "interval", args=[self.home], id=IDLE, minutes=1, replace_existing=True,
                                   coalesce=True, max_instances=1)
        elif self.scheduler.get_job(IDLE) is not None:
            self.scheduler.remove_job(IDLE)
        self.worker.start()
        self.scheduler.resume()
        self.wake.set()  # retries and requests queued before we started

    def stop(self) -> None:
        """Stop scheduling; a night in progress is asked to stop (it ends at its next step, its
        version either written whole or not at all) and its run is marked interrupted."""
        self.stopping.set()
        self.wake.set()
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signal.SIGINT)
        if self.worker.is_alive():
            self.worker.join(timeout=60)
        _DAEMONS.pop(self.home, None)

    def next_run(self) -> str | None:
        job = self.scheduler.get_job(NIGHTLY) if self.scheduler is not None else None
        return job.next_run_time.astimezone(timezone.utc).isoformat() if job and job.next_run_time else None

    # -- runs ----------------------------------------------------------------------------

    def fire(self) -> None:
        at = scheduled_time(self.trigger, datetime.now(timezone.utc)) if self.trigger else None
        key = (at or datetime.now(timezone.utc)).isoformat(timespec="seconds")
        if self.jobs.enqueue("learn", "schedule", key) is not None:
            self.wake.set()

    def check_idle(self) -> Job | None:
        """The early trigger: a night now if enough experiences wait and chat has been quiet."""
        count, quiet_s = self.idle
        pending = waiting(self.agent)
        if len(pending) < count or self.jobs.list(statuses=("scheduled", "running")):
            return None
        [last] = self.agent.store.list_turns(limit=1) or [None]
        if last is not None and datetime.now(timezone.utc) - datetime.fromisoformat(last.created_at) < timedelta(
                seconds=quiet_s):
            return None
        job = self.jobs.enqueue("learn", "idle", f"idle-{max(e.id for e in pending)}")
        if job is not None:
            self.wake.set()
        return job

    def request(self) -> Job:
        """A night now (``POST /v1/learn``): queued, run by the worker after any earlier one."""
        job = self.jobs.enqueue("learn", "manual", f"manual-{uuid.uuid4().hex[:12]}")
        self.wake.set()
        return job

    def _work(self) -> None:
        while not self.stopping.is_set():
            self.wake.wait(timeout=5)
            self.wake.clear()
            for job in reversed(self.jobs.list(statuses=("scheduled",))):  # oldest first
                if self.stopping.is_set():
                    return
                claimed = self.jobs.start(job.id, self.owner, self.lease_s)
                if claimed is None:
                    continue
                try:
                    self._run(claimed)
                except Exception as exc:  # the worker must outlive any one run: the next night still comes
                    log.exception("job %s failed", claimed.id)
                    self.jobs.finish(claimed.id, self.owner, "failed", error=f"{type(exc).__name__}: {exc}")

    def _run(self, job: Job) -> None:
        env = {**os.environ, "REVERIE_THREADS": str(self.threads)}
        command = [sys.executable, "-m", "agent.daemon", self.home, json.dumps(self.overrides, default=str)]
        log.info("job %s (%s %s): learning in a child process", job.id, job.trigger, job.run_key)
        self.child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                      preexec_fn=self._child_setup, text=True)
        out: dict[str, str] = {}
        reader = threading.Thread(target=lambda: out.update(zip(("stdout", "stderr"), self.child.communicate())))
        reader.start()
        while reader.is_alive():
            reader.join(timeout=self.lease_s / 3)
            if reader.is_alive():
                self.jobs.renew(job.id, self.owner, self.lease_s)
        code, self.child = self.child.returncode, None
        if code == 0:
            lines = out["stdout"].strip().splitlines()  # the report is the child's last line
            self.jobs.finish(job.id, self.owner, "succeeded", report=json.loads(lines[-1]) if lines else {})
        elif code in (130, -signal.SIGINT, -signal.SIGTERM, -signal.SIGKILL):
            self.jobs.finish(job.id, self.owner, "interrupted", error="stopped before it finished")
            if job.attempt == 1:  # once more, at the next start (or now, if still running)
                self.jobs.enqueue(job.kind, "retry", job.run_key, attempt=2)
        else:
            last = (out.get("stderr") or "").strip().splitlines()
            self.jobs.finish(job.id, self.owner, "failed", error=last[-1] if last else f"exit code {code}")
        self.agent.on_model_thread(self.agent.sync_version)  # serve what the night promoted
        log.info("job %s: %s", job.id, self.jobs.get(job.id).status)

    def _gone(self, owner: str) -> bool:
        """An owner on this machine whose process no longer runs: its lease need not run out."""
        host, _, rest = owner.partition(":")
        pid = rest.partition(":")[0]
        if host != socket.gethostname() or not pid.isdigit():
            return False
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return int(pid) == os.getpid() and owner != self.owner  # our pid, an earlier life of it

    def _child_setup(self) -> None:
        os.nice(self.nice)  # chat first: the night takes what the turns leave
        try:  # die with the server: a killed server leaves no night running on its own
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def waiting(agent: Agent) -> list:
    """Every user's experiences in no adapter of the active version: what a night would learn."""
    held = {e for a in agent.versions.library(agent.active_model()) for e in a.experiences}
    return [e for e in agent.memories() if e.id not in held]


def users_to_learn(agent: Agent) -> list[str]:
    """Every user with an experience waiting, and when policies are refined ([refine] reward) every
    user who has chatted; else "default", whose night still cleans new feedback."""
    chatted = {t.user for t in agent.store.list_threads()} if agent.settings.refine.reward else set()
    return sorted({e.user for e in waiting(agent)} | chatted) or ["default"]


def child_main(home: str, overrides: str) -> int:
    """The child: one night per user with something new; the reports, as JSON, on stdout."""
    from agent.errors import Interrupted
    from agent.facade import Agent

    with Agent.open(home, **json.loads(overrides)) as agent:
        signal.signal(signal.SIGINT, lambda *_: agent.stopping.set())
        signal.signal(signal.SIGTERM, lambda *_: agent.stopping.set())
        reports = {}
        try:
            for user in users_to_learn(agent):
                reports[user] = agent.learn(user=user).model_dump()
        except Interrupted:
            return 130
    print(json.dumps({"users": reports}))
    return 0


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1], sys.argv[2]))
