"""Test helpers: a dialog driver over the real inbox → router → outbox → dispatcher path."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Engine

from bot.clock import FixedClock
from bot.dispatcher import Dispatcher, Job, Sent
from bot.runtime import Runtime, build_runtime
from bot.settings import Settings
from handlers.answers import PlaceResolver
from handlers.config import BotConfig
from handlers.i18n import strings
from handlers.inbound import process_pending, receive
from handlers.messages import Inbound, Outgoing
from storage.db import session_scope

_ids = itertools.count(1)


class RecordingSender:
    """A sender that keeps every message it is given."""

    def __init__(self, channel: str = "console") -> None:
        """Start with nothing sent."""
        self.channel = channel
        self.sent: list[tuple[str, Outgoing]] = []

    async def send(self, job: Job) -> Sent:
        """Record a message."""
        self.sent.append((job.urn, Outgoing.from_body(job.body, kind=job.kind)))
        return Sent(provider_id=f"rec-{job.id}")


class Dialog:
    """One person talking to the bot; each turn returns the replies it produced."""

    def __init__(
        self,
        engine: Engine,
        config: BotConfig,
        clock: FixedClock,
        places: PlaceResolver,
        urn: str = "console:tester",
    ) -> None:
        """Bind everything a turn needs."""
        self.engine, self.config, self.clock, self.places, self.urn = (
            engine,
            config,
            clock,
            places,
            urn,
        )
        self.sender = RecordingSender()
        self.dispatcher = Dispatcher(engine, {"console": self.sender}, clock)
        self.replies: list[Outgoing] = []

    @property
    def last(self) -> Outgoing:
        """The last reply received."""
        return self.replies[-1]

    def say(
        self, text: str = "", *, tap: str | None = None, hint: str | None = None
    ) -> list[Outgoing]:
        """Send text, or tap the last reply's choice labelled `tap`; return the replies."""
        choice_id = None
        if tap is not None:
            labels = {c.label: c.id for c in self.last.choices}
            if tap not in labels:
                raise AssertionError(f"no choice {tap!r} in {list(labels)}")
            choice_id, text = labels[tap], tap
        self.clock.advance(timedelta(seconds=1))
        inbound = Inbound(
            urn=self.urn,
            text=text,
            received_at=self.clock.now(),
            choice_id=choice_id,
            language_hint=hint,
        )
        with session_scope(self.engine) as session:
            receive(session=session, inbound=inbound, external_id=f"t{next(_ids)}")
            process_pending(
                session=session,
                urn=self.urn,
                config=self.config,
                now=self.clock.now(),
                places=self.places,
            )
        before = len(self.sender.sent)
        asyncio.run(self._drain())
        new = [m for urn, m in self.sender.sent[before:] if urn == self.urn]
        self.replies += new
        if not new:
            raise AssertionError(f"no reply to {text!r}: the bot must always answer")
        return new

    def tap_id(self, choice_id: str) -> list[Outgoing]:
        """Send a raw button id (e.g. a stale one)."""
        self.clock.advance(timedelta(seconds=1))
        inbound = Inbound(urn=self.urn, text="", received_at=self.clock.now(), choice_id=choice_id)
        with session_scope(self.engine) as session:
            receive(session=session, inbound=inbound, external_id=f"t{next(_ids)}")
            process_pending(
                session=session,
                urn=self.urn,
                config=self.config,
                now=self.clock.now(),
                places=self.places,
            )
        before = len(self.sender.sent)
        asyncio.run(self._drain())
        new = [m for _, m in self.sender.sent[before:]]
        self.replies += new
        return new

    async def _drain(self) -> None:
        """Deliver everything queued."""
        while await self.dispatcher.drain("console"):
            pass

    def text(self) -> str:
        """The text of the last reply."""
        return self.last.text

    def labels(self) -> list[str]:
        """The choice labels of the last reply."""
        return [c.label for c in self.last.choices]


def fragment(key: str, lang: str, **values: Any) -> str:
    """The text of a UI string up to its first placeholder, to find it in a reply."""
    text = strings()[key].get(lang) or strings()[key]["en"]
    if values:
        return text.format(**values)
    return text.split("{", 1)[0].strip()


def bare_runtime(engine: Engine, clock: FixedClock, places: PlaceResolver) -> Runtime:
    """A runtime with its worker in this process, no channels and no scheduler."""
    settings = Settings(database_url=str(engine.url), _env_file=None)  # type: ignore[call-arg]
    return build_runtime(
        settings, engine=engine, clock=clock, places=places, channels={}, with_scheduler=False
    )
