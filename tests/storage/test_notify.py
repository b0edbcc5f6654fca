"""The notifier: a change announced between a waiter's check and its wait is not lost."""

from __future__ import annotations

import asyncio
import threading
import time

from keyops.storage.notify import ANY, Notifier


async def test_a_fire_between_subscribe_and_wait_is_held() -> None:
    notifier = Notifier()
    with notifier.subscribe(["env:1"]) as changes:
        notifier.fire("env:1")  # the commit lands while the waiter still reads the database
        started = time.monotonic()
        assert await changes.wait(5.0) is True
        assert time.monotonic() - started < 1.0
        # Consumed: the next wait waits again.
        assert await changes.wait(0.05) is False


async def test_other_topics_do_not_wake_and_any_wakes_all() -> None:
    notifier = Notifier()
    with notifier.subscribe(["env:1"]) as one, notifier.subscribe(["nodes:2"]) as two:
        notifier.fire("env:3")
        assert await one.wait(0.05) is False
        assert await two.wait(0.0) is False
        notifier.fire(ANY)
        assert await one.wait(0.0) is True
        assert await two.wait(0.0) is True


async def test_fire_from_another_thread_wakes_a_waiter() -> None:
    notifier = Notifier()
    with notifier.subscribe(["env:1"]) as changes:
        timer = threading.Timer(0.1, notifier.fire, args=("env:1",))
        timer.start()
        started = time.monotonic()
        assert await changes.wait(5.0) is True
        assert time.monotonic() - started < 2.0
        timer.join()


async def test_a_closed_subscription_is_forgotten() -> None:
    notifier = Notifier()
    with notifier.subscribe(["env:1", "env:2"]):
        pass
    assert notifier._waiters == {}
    assert await notifier.wait(["env:1"], 0.01) is False
    assert notifier._waiters == {}


async def test_many_waiters_on_one_topic_all_wake() -> None:
    notifier = Notifier()

    async def waiter() -> bool:
        return await notifier.wait(["env:1"], 5.0)

    tasks = [asyncio.create_task(waiter()) for _ in range(50)]
    await asyncio.sleep(0.05)
    notifier.fire("env:1")
    assert all(await asyncio.gather(*tasks))
