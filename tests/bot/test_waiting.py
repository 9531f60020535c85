"""Waiting loops end when cancelled, even when the cancellation meets the wake-up."""

from __future__ import annotations

import asyncio

import pytest

from bot.waiting import wait_set


async def _loop(event: asyncio.Event, turns: list[int]) -> None:
    """A worker-style loop: wait for a wake-up (or a timeout), take a turn, wait again."""
    while True:
        await wait_set(event, 10.0)
        event.clear()
        turns.append(1)


@pytest.mark.parametrize("steps", [0, 1, 2, 3, 4])
async def test_a_cancellation_arriving_with_the_wake_up_ends_the_loop(steps: int) -> None:
    """Set, let the loop run `steps` steps, cancel: the task ends (wait_for could hang)."""
    event = asyncio.Event()
    turns: list[int] = []
    task = asyncio.create_task(_loop(event, turns))
    await asyncio.sleep(0)
    event.set()
    for _ in range(steps):
        await asyncio.sleep(0)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=1.0)
    assert task in done, "the loop swallowed its cancellation"
    assert task.cancelled()


async def test_it_says_whether_the_event_was_set_or_the_time_ran_out() -> None:
    """True once set, False after the timeout."""
    event = asyncio.Event()
    assert await wait_set(event, 0.01) is False
    event.set()
    assert await wait_set(event, 0.01) is True
