"""Loopback plumbing: a polling wait, an event loop in a thread, the bot's app on uvicorn."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import uvicorn

T = TypeVar("T")
LOOPBACK = "127.0.0.1"


def wait_until(predicate: Callable[[], object], *, timeout: float = 20.0) -> None:
    """Poll `predicate` until it is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.005)


class _LoopThread:
    """An event loop running in a daemon thread."""

    def __init__(self, name: str) -> None:
        """Start the loop."""
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run a coroutine on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        """Stop the loop and the thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class AppServer:
    """The bot's ASGI app served by uvicorn on a random loopback port, in its own thread."""

    def __init__(self, app: Any) -> None:
        """Serve `app` (its lifespan runs: the runtime starts and stops with the server)."""
        self.app = app
        self.port = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The loopback address of the app."""
        return f"http://{LOOPBACK}:{self.port}"

    def __enter__(self) -> AppServer:
        """Bind, start serving and wait until the lifespan has started."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((LOOPBACK, 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, lifespan="on", log_level="warning", access_log=False, log_config=None
        )
        self._server = uvicorn.Server(config)
        self.loop = asyncio.new_event_loop()
        server, loop = self._server, self.loop

        def run() -> None:
            """Serve on the thread's own event loop."""
            asyncio.set_event_loop(loop)
            loop.run_until_complete(server.serve(sockets=[sock]))

        self._thread = threading.Thread(target=run, name="bot-app", daemon=True)
        self._thread.start()
        wait_until(lambda: server.started or not self._thread or not self._thread.is_alive())
        if not server.started:
            raise RuntimeError("the app did not start")
        return self

    def __exit__(self, *_exc: object) -> None:
        """Shut down (the lifespan stops the runtime)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        if self.loop is not None:
            self.loop.close()

    def call(self, fn: Callable[..., object], *args: object) -> None:
        """Run a callable on the app's event loop (e.g. waking the dispatcher)."""
        assert self.loop is not None
        self.loop.call_soon_threadsafe(fn, *args)
