"""The console channel: a chat simulator on stdin/stdout that uses the real path end to end.

Each line is stored in the inbox, routed, and its replies drained from the outbox by the
dispatcher through the console sender, exactly as the platform channels do.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from typing import TextIO

from sqlalchemy.engine import Engine

from bot.clock import Clock
from bot.dispatcher import Dispatcher, Job, Sent
from handlers.answers import PlaceResolver
from handlers.config import BotConfig
from handlers.inbound import process_pending, receive
from handlers.messages import Inbound, Outgoing
from storage.db import session_scope


def render(message: Outgoing) -> str:
    """Render a message as console text: the text, then numbered choices."""
    lines = [message.text]
    for number, choice in enumerate(message.choices, 1):
        lines.append(f"  {number}. {choice.label}")
    for attachment in message.attachments:
        lines.append(f"  [{attachment.kind}: {attachment.filename}]")
    return "\n".join(lines)


class ConsoleSender:
    """Prints messages to a stream."""

    channel = "console"

    def __init__(self, out: TextIO) -> None:
        """Write to `out`."""
        self.out = out

    async def send(self, job: Job) -> Sent:
        """Print one message."""
        self.out.write(render(Outgoing.from_body(job.body)) + "\n\n")
        self.out.flush()
        return Sent(provider_id=f"console-{job.id}", status="delivered")


class ConsoleSession:
    """One person (`console:<name>`) chatting through the console channel."""

    def __init__(
        self,
        engine: Engine,
        config: BotConfig,
        clock: Clock,
        places: PlaceResolver,
        *,
        urn: str,
        out: TextIO,
    ) -> None:
        """Bind the database, configuration and output."""
        self.engine = engine
        self.config = config
        self.clock = clock
        self.places = places
        self.urn = urn
        self.dispatcher = Dispatcher(engine, {"console": ConsoleSender(out)}, clock)

    def _receive(self, text: str) -> None:
        """Store a typed line and process it in one transaction."""
        now = self.clock.now()
        inbound = Inbound(urn=self.urn, text=text, received_at=now)
        with session_scope(self.engine) as session:
            receive(session=session, inbound=inbound, external_id=uuid.uuid4().hex)
            process_pending(
                session=session, urn=self.urn, config=self.config, now=now, places=self.places
            )

    async def say(self, text: str) -> None:
        """Send one line as the person and print the bot's replies."""
        await asyncio.to_thread(self._receive, text)
        while await self.dispatcher.drain("console"):
            pass


async def chat(session: ConsoleSession, stream: TextIO, out: TextIO, *, echo: bool) -> None:
    """Read lines until end of input; echo them when they come from a pipe."""
    interactive = stream.isatty()
    while True:
        if interactive:
            out.write("> ")
            out.flush()
        line = await asyncio.to_thread(stream.readline)
        if not line:
            break
        text = line.rstrip("\n")
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        if echo:
            out.write(f"> {text}\n")
        await session.say(text)
    if interactive:
        out.write("\n")


def run_chat(
    engine: Engine, config: BotConfig, clock: Clock, places: PlaceResolver, *, urn: str
) -> None:
    """Run the simulator on stdin/stdout."""
    session = ConsoleSession(engine, config, clock, places, urn=urn, out=sys.stdout)
    asyncio.run(chat(session, sys.stdin, sys.stdout, echo=not sys.stdin.isatty()))
