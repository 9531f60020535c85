"""Outbound throttling for Telegram: an overall window and per-chat spacing.

Telegram allows about 30 messages a second overall and one a second per chat, and answers
429 with retry_after beyond. PTB's AIORateLimiter has no per-chat limit for private chats
and halts every chat on any 429, so we pace ourselves:

- `WindowLimiter`: at most `limit` sends in any window of `window` seconds (30 in 1 s). A
  slot counts from the moment its request *completes*, so however the requests are delayed
  on the way, the server never sees more than `limit` of them within a window.
- `ChatSpacing`: one send at a time per chat, each starting at least `interval` seconds after
  the previous one to that chat completed. After a 429 the dispatcher holds that chat's
  messages for Telegram's retry_after (the outbox keeps them in order); other chats go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from bot.waiting import wait_set


def window_of(rate: float) -> tuple[int, float]:
    """Express a rate per second as at most `limit` events per `window` seconds."""
    if rate <= 0:
        raise ValueError("a rate must be positive")
    limit = max(1, math.floor(rate))
    return limit, limit / rate


@dataclass
class _Slot:
    """A send holding a place in the window; `done` is when it completed (None: in flight)."""

    done: float | None = None


class WindowLimiter:
    """At most `limit` sends in any sliding window, counted from their completion."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        """Allow `rate` sends a second."""
        self.limit, self.window = window_of(rate)
        self.clock = clock
        self._slots: list[_Slot] = []
        self._lock = asyncio.Lock()
        self._changed = asyncio.Event()

    async def _acquire(self) -> _Slot:
        """Wait for a free place in the window (first come, first served) and take it."""
        async with self._lock:
            while True:
                now = self.clock()
                self._slots = [
                    s for s in self._slots if s.done is None or s.done + self.window > now
                ]
                if len(self._slots) < self.limit:
                    slot = _Slot()
                    self._slots.append(slot)
                    return slot
                ends = [s.done + self.window - now for s in self._slots if s.done is not None]
                self._changed.clear()
                await wait_set(self._changed, min(ends) if ends else None)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a place in the window for one request."""
        held = await self._acquire()
        try:
            yield
        finally:
            held.done = self.clock()
            self._changed.set()


@dataclass
class _Chat:
    """A chat's turn and when it may be sent to next."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    ready_at: float = 0.0
    users: int = 0


class ChatSpacing:
    """One send at a time per chat, spaced by `interval` from the previous completion."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        """Allow `rate` sends a second to one chat."""
        if rate <= 0:
            raise ValueError("a rate must be positive")
        self.interval = 1.0 / rate
        self.clock = clock
        self._chats: dict[int, _Chat] = {}

    def _prune(self) -> None:
        """Forget idle chats whose spacing has passed."""
        now = self.clock()
        for chat_id in [k for k, c in self._chats.items() if not c.users and c.ready_at < now]:
            del self._chats[chat_id]

    @contextlib.asynccontextmanager
    async def turn(self, chat_id: int) -> AsyncIterator[None]:
        """Wait for the chat's turn and hold it for one request."""
        if len(self._chats) > 4096:
            self._prune()
        chat = self._chats.setdefault(chat_id, _Chat())
        chat.users += 1
        try:
            async with chat.lock:
                delay = chat.ready_at - self.clock()
                if delay > 0:
                    await asyncio.sleep(delay)
                try:
                    yield
                finally:
                    chat.ready_at = max(chat.ready_at, self.clock() + self.interval)
        finally:
            chat.users -= 1
