"""A loopback TCP proxy in front of PostgreSQL that can play a database restart.

`serve` connects to the proxy instead of 127.0.0.1:5432. `down()` does what a restarting
server does to its clients: every open connection is reset and new ones are refused (the
listening socket is closed, so a connect fails at once with ECONNREFUSED). `up()` listens
again on the same port and forwards new connections. The proxy runs its own event loop in a
daemon thread, so the test can drive load on its loop meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
CHUNK = 1 << 16


class PgProxy:
    """Forward 127.0.0.1:<port> to the upstream PostgreSQL; `down()`/`up()` play an outage."""

    def __init__(self, upstream: tuple[str, int] = ("127.0.0.1", 5432)) -> None:
        """Forward to `upstream`; nothing listens until `start()`."""
        self.upstream = upstream
        self.port = 0
        self.accepted = 0
        self.resets = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="pg-proxy", daemon=True
        )
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the proxy's loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    def start(self) -> PgProxy:
        """Start the loop and listen."""
        self._thread.start()
        self.up()
        return self

    def up(self) -> None:
        """Listen (again, on the same port) and forward new connections."""
        self._run(self._listen())

    def down(self) -> int:
        """Stop listening and reset every open connection; return how many were reset."""
        return self._run(self._cut())

    def stop(self) -> None:
        """Close everything and stop the loop."""
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            self.down()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> PgProxy:
        """Start on entry."""
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        """Stop on exit."""
        self.stop()

    @property
    def listening(self) -> bool:
        """Whether new connections are accepted."""
        return self._server is not None

    async def _listen(self) -> None:
        """Open the listening socket."""
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _cut(self) -> int:
        """Close the listener and abort every connection (an RST to both ends)."""
        if self._server is not None:
            self._server.close()
            self._server = None
        writers, self._writers = list(self._writers), set()
        for writer in writers:
            transport = writer.transport
            if not transport.is_closing():
                transport.abort()
        self.resets += len(writers) // 2
        return len(writers) // 2

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Pipe one client connection to a new upstream connection, both ways."""
        if self._server is None:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self.accepted += 1
        self._writers |= {writer, up_writer}
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )
        self._writers -= {writer, up_writer}

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy bytes until one side closes, then close the other."""
        try:
            while data := await reader.read(CHUNK):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            if not writer.transport.is_closing():
                writer.transport.abort()
            return
        if not writer.transport.is_closing():
            writer.close()
