"""DB leases: one holder, renewals, expiry and takeover, release; the schedule check."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from assistant.errors import InvalidInput
from assistant.infra import jobs
from assistant.infra.locks import Lease, LeaseLost, LockBusy, acquire, holder, release, renew
from assistant.learning import runs, schedule
from assistant.storage import models
from assistant.storage.db import Database


@pytest.fixture()
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'locks.db'}")
    database.upgrade()
    return database


def test_one_holder_at_a_time_and_takeover_after_expiry(db: Database) -> None:
    acquire(db, "training", "a", ttl_s=60, job_id=1)
    with pytest.raises(LockBusy) as busy:
        acquire(db, "training", "b", ttl_s=60)
    assert busy.value.job_id == 1 and busy.value.http_status == 409
    assert acquire(db, "training", "a", ttl_s=60).owner == "a"  # re-entrant for its owner
    assert not renew(db, "training", "b", ttl_s=60)
    release(db, "training", "b")  # not the owner: nothing happens
    assert holder(db, "training").owner == "a"  # type: ignore[union-attr]

    with db.session() as s:  # a's worker died: its lease runs out
        s.get(models.Lock, "training").expires_at = models.utcnow() - timedelta(seconds=1)
    assert holder(db, "training") is None
    assert acquire(db, "training", "b", ttl_s=60, job_id=2).owner == "b"
    assert not renew(db, "training", "a", ttl_s=60)  # a cannot come back
    release(db, "training", "b")
    assert holder(db, "training") is None


def test_lease_renews_while_held_and_releases_on_error(db: Database) -> None:
    with pytest.raises(RuntimeError), Lease(db, "training", ttl_s=1.5, job_id=7) as lease:
        time.sleep(2.5)  # longer than the period: only renewals keep it
        current = holder(db, "training")
        assert current is not None and current.owner == lease.owner and current.job_id == 7
        assert not lease.lost.is_set()
        raise RuntimeError("training failed")
    assert holder(db, "training") is None


def test_a_waiting_lease_gets_it_when_released_and_gives_up_at_its_deadline(
    db: Database,
) -> None:
    import threading

    acquire(db, "index-writer", "other-host", ttl_s=60)
    with pytest.raises(LockBusy):
        Lease(db, "index-writer", ttl_s=60).__enter__()  # no wait: refused at once
    started = time.monotonic()
    with pytest.raises(LockBusy), Lease(db, "index-writer", ttl_s=60, wait_s=1.2):
        pass
    assert 1.0 < time.monotonic() - started < 5
    threading.Timer(1.0, release, (db, "index-writer", "other-host")).start()
    with Lease(db, "index-writer", ttl_s=60, wait_s=30) as lease:
        current = holder(db, "index-writer")
        assert current is not None and current.owner == lease.owner
    assert holder(db, "index-writer") is None


def test_a_lease_taken_over_stops_the_work_and_is_not_released_by_the_loser(db: Database) -> None:
    with Lease(db, "training", ttl_s=1.5, job_id=7) as lease:
        lease.check()  # held: the work goes on
        with db.session() as s:  # the worker paused past its period; another takes over
            s.get(models.Lock, "training").expires_at = models.utcnow() - timedelta(seconds=1)
        acquire(db, "training", "other-worker", ttl_s=60, job_id=8)
        assert lease.lost.wait(timeout=3), "the renewal thread did not notice the takeover"
        with pytest.raises(LeaseLost):
            lease.check()
    current = holder(db, "training")
    assert current is not None and current.owner == "other-worker" and current.job_id == 8


def test_schedule_validation_and_the_periodic_check(db: Database, tmp_path: Path) -> None:
    class FakeServices:  # the check needs only the database
        pass

    services = FakeServices()
    services.db = db  # type: ignore[attr-defined]
    assert schedule.get_schedule(db)["enabled"] is False
    for bad in ({"interval_minutes": 0}, {"enabled": 1}, {"min_new_examples": True}, {"x": 1}):
        with pytest.raises(InvalidInput):
            schedule.set_schedule(db, bad, None)
    assert schedule.check_schedule(services) is None  # type: ignore[arg-type]  # disabled

    schedule.set_schedule(
        db, {"enabled": True, "min_new_examples": 1, "interval_minutes": 10}, None
    )
    assert schedule.check_schedule(services) is None  # type: ignore[arg-type]  # nothing new
    with db.session() as s:
        user = models.User(email="u@example.org", password_hash="x")
        s.add(user)
        s.flush()
        conversation = models.Conversation(user_id=user.id)
        s.add(conversation)
        s.flush()
        message = models.Message(conversation_id=conversation.id, role="assistant", content="A.")
        s.add(message)
        s.flush()
        s.add(models.ReviewItem(message_id=message.id, state=models.ReviewState.APPROVED))
    # The interval has not passed since the last check.
    assert schedule.check_schedule(services) is None  # type: ignore[arg-type]
    later = models.utcnow() + timedelta(minutes=11)
    job_id = schedule.check_schedule(services, now=later)  # type: ignore[arg-type]
    assert job_id is not None
    job = jobs.get_job(db, job_id)
    assert job.kind == "dataset" and job.params == {"then_train": True}
    # An open dataset job: no second one.
    assert schedule.check_schedule(services, now=later + timedelta(minutes=11)) is None  # type: ignore[arg-type]


def test_stale_running_training_jobs_fail_unless_their_lease_lives(db: Database) -> None:
    services = type("S", (), {"db": db})()
    dead = jobs.create_job(db, "training", {}, None)
    alive = jobs.create_job(db, "training", {}, None)
    jobs.start_job(db, dead)
    jobs.start_job(db, alive)
    acquire(db, runs.TRAINING_LOCK, "worker-2", ttl_s=60, job_id=alive)
    assert runs.recover_stale_jobs(services) == [dead]  # type: ignore[arg-type]
    assert jobs.get_job(db, dead).state is models.JobState.FAILED
    assert jobs.get_job(db, alive).state is models.JobState.RUNNING
