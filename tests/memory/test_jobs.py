"""Background runs: each (kind, key, attempt) once, claimed by one owner, expired leases found."""

import time

import pytest

from agent.errors import NotFound
from memory import Store
from memory.jobs import Jobs


@pytest.fixture
def stores(home):
    opened = [Store.open(home), Store.open(home)]  # two processes' connections to one home
    yield opened
    for store in opened:
        store.close()


def test_a_scheduled_night_is_one_row_and_one_claim_across_processes(stores):
    first, second = Jobs(stores[0]), Jobs(stores[1])
    job = first.enqueue("learn", "schedule", "2026-11-30T03:00:00+00:00")
    assert job.status == "scheduled" and job.attempt == 1
    assert second.enqueue("learn", "schedule", "2026-11-30T03:00:00+00:00") is None  # the other process fired too
    assert second.start(job.id, "b", lease_s=30).owner == "b"
    assert first.start(job.id, "a", lease_s=30) is None  # already claimed
    assert first.renew(job.id, "a", 30) is False and second.renew(job.id, "b", 30) is True
    done = second.finish(job.id, "b", "succeeded", report={"users": {}})
    assert (done.status, done.report, done.lease_until) == ("succeeded", {"users": {}}, None)
    assert [j.id for j in first.list()] == [job.id] and first.last("learn", "succeeded").id == job.id
    with pytest.raises(NotFound, match="no job 99"):
        first.get(99)


def test_an_abandoned_run_is_interrupted_and_retried_once(stores):
    jobs = Jobs(stores[0])
    job = jobs.enqueue("learn", "manual", "manual-1")
    jobs.start(job.id, "host:1:x", lease_s=0.05)
    time.sleep(0.1)
    [retry] = jobs.expire()
    assert jobs.get(job.id).status == "interrupted" and jobs.get(job.id).error
    assert (retry.trigger, retry.run_key, retry.attempt, retry.status) == ("retry", "manual-1", 2, "scheduled")
    jobs.start(retry.id, "host:2:y", lease_s=0.05)
    time.sleep(0.1)
    assert jobs.expire() == [] and jobs.get(retry.id).status == "interrupted"  # once: no third attempt


def test_a_live_lease_is_left_alone_unless_its_owner_is_gone(stores):
    jobs = Jobs(stores[0])
    job = jobs.enqueue("learn", "manual", "manual-2")
    jobs.start(job.id, "host:1:x", lease_s=60)
    assert jobs.expire() == [] and jobs.get(job.id).status == "running"
    assert len(jobs.expire(gone=lambda owner: owner == "host:1:x")) == 1
    assert jobs.get(job.id).status == "interrupted"
