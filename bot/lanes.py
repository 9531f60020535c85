"""Threads of their own for the blocking database work of each part of the runtime.

`asyncio.to_thread` shares one small pool (CPU count + 4 threads) among everything in the
process. The dispatcher records every send from its own thread and a record waits its turn
for the database writer, so under load its records filled that pool and the webhook's inbox
write, which an acknowledgement waits for, queued behind them for tens of milliseconds. Each
part that writes (inbox writer, inbox worker, dispatcher) runs its database work in its own
lane instead: one part's waiting never holds another's up.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class Lane:
    """A small pool of threads, started on first use, for one part's blocking calls."""

    def __init__(self, name: str, threads: int = 1) -> None:
        """Name the lane (thread names) and size it."""
        self.name = name
        self.threads = threads
        self._pool: ThreadPoolExecutor | None = None

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn` in the lane and wait for it (the caller's context variables go along)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix=self.name)
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    def close(self) -> None:
        """Let the threads end once their work is done (a later `run` starts new ones)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)


SWITCH_INTERVAL = 0.001  # seconds; CPython's default is 0.005


def favour_waiting_threads() -> None:
    """Hand the GIL over sooner (1 ms instead of 5) to threads woken from the database.

    Every SQLite call releases the GIL; when it returns, its thread waits for the event
    loop thread to let go, which on a busy loop is a whole switch interval. A write of a
    dozen calls then takes tens of milliseconds while holding the database writer, and the
    webhooks waiting on it with it (the convoy effect). A shorter interval costs a little
    throughput for much shorter waits. `serve` and `worker` call this once at start.
    """
    sys.setswitchinterval(SWITCH_INTERVAL)
