"""`citybot serve`: one ASGI app (Starlette on uvicorn) for every channel's webhooks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ExceptionHandler

from bot import metrics as m
from bot.limits import RequestLimits, unreachable
from bot.logs import describe, protect_settings
from bot.runtime import Runtime
from bot.settings import Settings
from scheduler.setup import observe_sweeps
from storage import outbox
from storage.db import session_scope

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
PROMETHEUS_TEXT = "text/plain; version=0.0.4"


def database_errors(runtime: Runtime) -> dict[Any, ExceptionHandler]:
    """Exception handlers: database down → 503 with Retry-After; refused data → 400; else 500."""

    async def on_database_error(request: Request, error: Exception) -> Response:
        """Answer for a request whose storage failed; the platform retries 5xx, not 4xx."""
        if unreachable(error):
            runtime.count("http_database_unavailable_total")
            logger.warning(
                "database unavailable path=%s (%s): 503", request.url.path, describe(error)
            )
            return PlainTextResponse(
                "database unavailable, retry later",
                status_code=503,
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        if isinstance(error, DataError):
            runtime.count("http_database_refused_total")
            logger.warning(
                "database refused the data path=%s (%s): 400", request.url.path, describe(error)
            )
            return PlainTextResponse("the request could not be stored", status_code=400)
        logger.error("database error path=%s (%s): 500", request.url.path, describe(error))
        return PlainTextResponse("internal error", status_code=500)

    return {
        OperationalError: on_database_error,
        InterfaceError: on_database_error,
        DBAPIError: on_database_error,
    }


def _database_up(runtime: Runtime) -> bool:
    """Whether the database answers a trivial query."""
    try:
        with runtime.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:
        logger.warning("health check: database unreachable (%s)", describe(error))
        return False
    return True


def _stored_metrics(runtime: Runtime) -> list[str]:
    """What /metrics reads from the database: outbox by status, and what is due per channel."""
    channels = sorted(set(runtime.channels) | {"console"})
    status_lines = ["# TYPE citybot_outbox_messages gauge"]
    depth: dict[tuple[tuple[str, str], ...], float] = {}
    with session_scope(runtime.engine) as session:
        for channel in channels:
            counts = outbox.count_by_status(session=session, channel=channel)
            for status, n in sorted(counts.items()):
                status_lines.append(
                    f'citybot_outbox_messages{{channel="{channel}",status="{status}"}} {n}'
                )
        due = outbox.due_by_channel(session=session, now=runtime.clock.now())
    for channel in sorted(set(channels) | set(due)):
        depth[(("channel", channel),)] = due.get(channel, 0)
    return status_lines + m.gauge_lines(
        "citybot_dispatcher_queue_depth",
        "Outbox messages due and not yet sent, by channel.",
        depth,
    )


def render_metrics(runtime: Runtime) -> str:
    """The Prometheus exposition: counters, histograms, and the database's gauges if it answers."""
    lines = m.counter_lines(runtime.counters)
    lines += runtime.dispatcher.metrics.render()
    try:
        stored = _stored_metrics(runtime)
    except DBAPIError as error:
        logger.warning("metrics: database unreachable (%s)", describe(error))
        stored = []
    lines += m.gauge_lines(
        "citybot_database_up",
        "Whether the database answered this scrape.",
        {(): float(bool(stored))},
    )
    return "\n".join(lines + stored) + "\n"


def create_app(runtime: Runtime) -> Starlette:
    """Build the app; the lifespan starts and stops the runtime."""
    protect_settings(runtime.settings)
    if runtime.scheduler is not None:
        observe_sweeps(runtime.scheduler, m.sweep_recorder(runtime.dispatcher.metrics))

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    async def healthz(_request: Request) -> Response:
        """200 when the database answers, 503 otherwise."""
        if not await asyncio.to_thread(_database_up, runtime):
            return JSONResponse(
                {"status": "unavailable", "database": "down"},
                status_code=503,
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        return JSONResponse({"status": "ok", "channels": sorted(runtime.channels)})

    async def metrics(_request: Request) -> Response:
        """Prometheus text: counters, latency and lag histograms, outbox and queue gauges."""
        body = await asyncio.to_thread(render_metrics, runtime)
        return PlainTextResponse(body, media_type=PROMETHEUS_TEXT)

    def rejected(reason: str) -> None:
        """Count a request refused by the size limits."""
        runtime.count(f'http_rejected_total{{reason="{reason}"}}')

    routes: list[BaseRoute] = [Route("/healthz", healthz), Route("/metrics", metrics)]
    for channel in runtime.channels.values():
        routes += channel.routes()
    limits = Middleware(
        RequestLimits, max_bytes=runtime.settings.max_request_bytes, on_reject=rejected
    )
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[limits],
        exception_handlers=database_errors(runtime),
    )


def serve(
    settings: Settings,
    *,
    host: str = "0.0.0.0",  # noqa: S104
    port: int = 8000,
    with_worker: bool = True,
    with_sender: bool = True,
) -> int:
    """Run the app under uvicorn with the channels the settings enable.

    Without the worker, routing is left to a `citybot worker` process on the same database:
    this process stores, acknowledges, sends and schedules, and looks for replies to send
    every `Runtime.idle_dispatch_seconds`. Without the sender too (`worker --send`), it only
    stores, acknowledges and schedules.
    """
    import uvicorn

    from bot.channels.registry import channels_from_settings
    from bot.cli import prepare_database
    from bot.lanes import favour_waiting_threads
    from bot.runtime import build_runtime

    favour_waiting_threads()
    engine = prepare_database(settings)
    runtime = build_runtime(
        settings, engine=engine, with_worker=with_worker, with_dispatcher=with_sender
    )
    runtime.channels.update(channels_from_settings(settings, runtime))
    runtime.dispatcher.senders.update({n: c.sender for n, c in runtime.channels.items()})
    uvicorn.run(create_app(runtime), host=host, port=port, proxy_headers=True, log_config=None)
    return 0
