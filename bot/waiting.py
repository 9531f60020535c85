"""Waiting for an event with a timeout, without ever losing a cancellation."""

from __future__ import annotations

import asyncio


async def wait_set(event: asyncio.Event, seconds: float | None) -> bool:
    """Wait until `event` is set or `seconds` pass (None: no limit); True if set.

    `asyncio.wait_for` on Python 3.11 returns normally when the cancellation of its caller
    arrives just as the awaited event is set (CPython gh-86296): a loop around it, such as
    the inbox worker's, then takes the next turn and its task never ends, and shutdown waits
    for it forever. `asyncio.timeout` cancels the wait itself and lets the caller's
    cancellation through.
    """
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True
