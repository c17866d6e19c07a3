"""The request queue in front of the model: fair order, back-pressure, wait limits."""

from __future__ import annotations

import threading
import time

import pytest

from assistant.errors import ServerBusy
from assistant.llm.scheduler import Scheduler


def test_waiters_are_served_in_arrival_order() -> None:
    scheduler = Scheduler(max_waiting=10, wait_timeout_s=10)
    order: list[int] = []
    entered = threading.Event()

    def worker(i: int) -> None:
        with scheduler.slot():
            order.append(i)

    with scheduler.slot():
        threads = []
        for i in range(6):
            thread = threading.Thread(target=worker, args=(i,))
            thread.start()
            threads.append(thread)
            # Each one is queued before the next arrives.
            while scheduler.waiting < i + 1:
                time.sleep(0.001)
        entered.set()
    for thread in threads:
        thread.join(5)
    assert order == list(range(6))
    assert not scheduler.busy and scheduler.waiting == 0


def test_a_full_queue_refuses_at_once_with_retry_after() -> None:
    scheduler = Scheduler(max_waiting=1, wait_timeout_s=10, retry_after_s=7)
    release = threading.Event()
    waiter_in = threading.Event()

    def waiter() -> None:
        waiter_in.set()
        with scheduler.slot():
            pass

    with scheduler.slot():
        thread = threading.Thread(target=waiter)
        thread.start()
        waiter_in.wait(2)
        while scheduler.waiting < 1:
            time.sleep(0.001)
        started = time.perf_counter()
        with pytest.raises(ServerBusy) as caught, scheduler.slot():
            pass
        assert time.perf_counter() - started < 0.5  # refused, not queued
        assert caught.value.retry_after_s == 7 and caught.value.http_status == 503
        release.set()
    thread.join(5)
    with scheduler.slot() as waited:  # free again
        assert waited < 0.5


def test_a_request_that_waits_too_long_gives_up_and_leaves_the_queue() -> None:
    scheduler = Scheduler(max_waiting=5, wait_timeout_s=0.2)
    with scheduler.slot():
        with pytest.raises(ServerBusy, match="waited"), scheduler.slot():
            pass
        assert scheduler.waiting == 0
    with scheduler.slot():
        assert scheduler.busy


def test_a_release_from_another_thread_frees_the_slot_once() -> None:
    from assistant.llm.scheduler import Scheduler

    scheduler = Scheduler(max_waiting=2, wait_timeout_s=5)
    _, release = scheduler.acquire()
    assert scheduler.busy
    worker = threading.Thread(target=release)
    worker.start()
    worker.join()
    assert not scheduler.busy
    release()  # a second release changes nothing
    _, again = scheduler.acquire()
    assert scheduler.busy
    again()


def test_answers_waiting_for_the_model_never_take_the_web_servers_last_threads(
    tmp_path,
) -> None:
    from assistant.services import Services
    from assistant.settings import Settings

    def limit(**web: int) -> int:
        return Services(Settings(data_dir=tmp_path, web=web)).queue_limit()  # type: ignore[arg-type]

    # 8 threads: one generates, 2 stay free for pages, sign-in and health: 5 may wait.
    assert limit(threads=8) == 5
    assert limit(threads=8, reserved_threads=0) == 7
    assert limit(threads=3) == 0  # only the one generating; any other is refused at once
    assert limit(threads=256) == 64  # llm.queue_size still caps it


def test_a_scheduler_with_capacity_admits_that_many_at_once_then_queues_in_order() -> None:
    """The batched mode: ``capacity`` requests generate together; the rest wait, FIFO."""
    scheduler = Scheduler(max_waiting=3, wait_timeout_s=10, capacity=3)
    releases = [scheduler.acquire()[1] for _ in range(3)]  # no wait for the first three
    assert scheduler.busy and scheduler.active == 3 and scheduler.waiting == 0
    order: list[int] = []

    def worker(i: int) -> None:
        with scheduler.slot():
            order.append(i)
            time.sleep(0.05)  # holds its slot while the next one starts

    threads = []
    for i in range(3):
        thread = threading.Thread(target=worker, args=(i,))
        thread.start()
        threads.append(thread)
        while scheduler.waiting < i + 1:
            time.sleep(0.001)
    with pytest.raises(ServerBusy):  # three wait already: the queue is full
        scheduler.refuse_if_full()
    for release in releases:
        release()
    for thread in threads:
        thread.join(5)
    assert order == [0, 1, 2]
    assert scheduler.active == 0 and scheduler.waiting == 0 and not scheduler.busy


def test_freed_slots_admit_several_waiters_at_once() -> None:
    scheduler = Scheduler(max_waiting=4, wait_timeout_s=10, capacity=2)
    first = [scheduler.acquire()[1] for _ in range(2)]
    inside = threading.Barrier(3, timeout=5)  # two waiters and this thread

    def worker() -> None:
        with scheduler.slot():
            inside.wait()  # both are inside together, or this times out

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    while scheduler.waiting < 2:
        time.sleep(0.001)
    for release in first:
        release()
    inside.wait()
    for thread in threads:
        thread.join(5)
    assert scheduler.active == 0


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Scheduler(max_waiting=1, wait_timeout_s=1, capacity=0)
