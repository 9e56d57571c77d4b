"""The scheduler half of `reverie serve`: real APScheduler with its SQLite job store, real child
processes running nights on the tiny model."""

import time
from datetime import datetime, timedelta, timezone

import pytest

from agent import Agent
from agent.daemon import NIGHTLY, Daemon, cron_trigger, nightly, scheduled_time
from agent.errors import ConfigError
from memory.jobs import Jobs

NIGHT = {"gate": {"min_efficacy": 0.0}, "selfparam": {"epochs": 1}, "synthesis": {"samples": 0},
         "learn": {"extract_turns": False}}


@pytest.fixture
def open_agent(home, tiny_dir):
    opened = []

    def make():
        opened.append(Agent.open(home, model=str(tiny_dir), max_new_tokens=8, **NIGHT))
        return opened[-1]

    yield make
    for agent in opened:
        agent.close()


@pytest.fixture
def daemons():
    started = []
    yield started
    for daemon in started:
        daemon.stop()


def _daemon(agent, schedule, grace_s=3600):
    return Daemon(agent, {"model": agent.settings.model, **NIGHT}, schedule, grace_s)


def _until(check, timeout=180):
    deadline = time.time() + timeout
    while not check():
        assert time.time() < deadline, "timed out"
        time.sleep(0.5)


def test_a_cron_schedule_is_utc_and_a_late_firing_belongs_to_its_scheduled_time():
    trigger = cron_trigger("0 3 * * *")
    at = datetime(2026, 11, 30, 3, 42, tzinfo=timezone.utc)
    assert scheduled_time(trigger, at) == datetime(2026, 11, 30, 3, 0, tzinfo=timezone.utc)
    assert scheduled_time(trigger, at - timedelta(hours=1)) == datetime(2026, 11, 29, 3, 0, tzinfo=timezone.utc)
    with pytest.raises(ConfigError, match="bad schedule 'every night'"):
        cron_trigger("every night")


def test_two_processes_firing_the_same_night_make_one_run(open_agent):
    first, second = _daemon(open_agent(), "0 3 * * *"), _daemon(open_agent(), "0 3 * * *")
    first.fire()
    second.fire()
    [job] = Jobs(first.agent.store).list()
    assert (job.trigger, job.status) == ("schedule", "scheduled")


def _stored_night(home, next_run_time) -> str:
    """A scheduler store as a server that went down left it: the night due at ``next_run_time``
    (written through the store itself: a scheduler would process the due job on its way down).
    Returns its schedule: daily at that time of day, so that no other firing falls within a
    grace whatever the time the test runs (a fixed "0 3 * * *" did, between 03:00 and 04:00 UTC)."""
    schedule = f"{next_run_time.minute} {next_run_time.hour} * * *"
    from apscheduler.job import Job
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    store = SQLAlchemyJobStore(url=f"sqlite:///{home / 'scheduler.db'}")
    scheduler = BackgroundScheduler(timezone=timezone.utc)  # never started: only what a Job needs
    store.start(scheduler, "default")
    store.add_job(Job(scheduler, id=NIGHTLY, func=nightly, trigger=cron_trigger(schedule), executor="default",
                      args=[str(home)], kwargs={}, name=NIGHTLY, misfire_grace_time=1, coalesce=True,
                      max_instances=1, next_run_time=next_run_time))
    store.shutdown()
    return schedule


def test_a_night_missed_while_down_runs_once_at_start_within_the_grace(open_agent, daemons, home):
    agent = open_agent()
    schedule = _stored_night(home, datetime.now(timezone.utc) - timedelta(minutes=10))
    daemons.append(_daemon(agent, schedule, grace_s=3600))
    daemons[0].start()
    jobs = Jobs(agent.store)
    _until(lambda: [j.status for j in jobs.list()] == ["succeeded"])
    assert jobs.list()[0].trigger == "schedule"
    assert daemons[0].next_run() > datetime.now(timezone.utc).isoformat()  # the next one is tomorrow's


def test_a_night_missed_beyond_the_grace_does_not_run(open_agent, daemons, home):
    agent = open_agent()
    schedule = _stored_night(home, datetime.now(timezone.utc) - timedelta(hours=2))
    daemons.append(_daemon(agent, schedule, grace_s=3600))
    daemons[0].start()
    time.sleep(3)
    assert Jobs(agent.store).list() == []


def test_a_requested_night_learns_in_a_child_and_the_server_serves_it_at_once(open_agent, daemons):
    agent = open_agent()
    taught = agent.teach("My bank PIN is 4821.", user="alice")
    agent.chat("Hello", user="alice")  # the model is loaded: the night's promotion must reach it
    daemons.append(_daemon(agent, None))
    daemons[0].start()
    job = daemons[0].request()
    _until(lambda: Jobs(agent.store).get(job.id).status != "scheduled" and
           Jobs(agent.store).get(job.id).status != "running")
    done = Jobs(agent.store).get(job.id)
    assert done.status == "succeeded", done.error
    assert done.report["users"]["alice"]["new"] == [taught] and done.report["users"]["alice"]["promoted"]
    assert agent.backend.version == "v1" and [a.experiences for a in agent.library] == [[taught]]
    assert agent.chat("What is my bank PIN?", user="alice", recall=False).adapter == "v1.1"


def test_the_early_trigger_learns_once_enough_waits_and_chat_is_quiet(open_agent, daemons):
    from agent.daemon import IDLE

    agent = open_agent()
    daemon = Daemon(agent, {"model": agent.settings.model, **NIGHT}, None, 3600, idle=(2, 0.5))
    daemons.append(daemon)
    daemon.start()
    assert daemon.scheduler.get_job(IDLE) is not None  # checked every minute by the scheduler
    daemon.stopping.set()  # keep the worker from running what is queued: this test checks the trigger
    daemon.wake.set()
    agent.teach("My bank PIN is 4821.", user="alice")
    assert daemon.check_idle() is None  # one waits, two are needed
    agent.teach("My locker code is 1707.", user="bob")
    agent.chat("Hello", user="alice")
    assert daemon.check_idle() is None  # a turn just now: chat is not quiet
    time.sleep(0.6)
    job = daemon.check_idle()
    assert (job.trigger, job.status) == ("idle", "scheduled")
    assert daemon.check_idle() is None  # queued already: one night for this waiting set
    Jobs(agent.store).start(job.id, "test", 30)
    Jobs(agent.store).finish(job.id, "test", "succeeded")
    assert daemon.check_idle() is None  # the same waiting set (say, refused) does not trigger again


def test_a_night_refines_everyone_who_chatted_only_when_a_reward_is_set(home, tiny_dir):
    from agent.daemon import users_to_learn

    with Agent.open(home, model=str(tiny_dir), max_new_tokens=4) as bot:
        bot.store.create_thread("ana")
        assert users_to_learn(bot) == ["default"]  # nothing to consolidate, no policy to refine
    with Agent.open(home, model=str(tiny_dir), max_new_tokens=4, refine={"reward": "exact"}) as bot:
        assert users_to_learn(bot) == ["ana"]
