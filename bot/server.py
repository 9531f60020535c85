"""`citybot serve`: one ASGI app (Starlette on uvicorn) for every channel's webhooks."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from bot.runtime import Runtime
from bot.settings import Settings
from storage import outbox
from storage.db import session_scope

logger = logging.getLogger(__name__)


def create_app(runtime: Runtime) -> Starlette:
    """Build the app; the lifespan starts and stops the runtime."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    async def healthz(_request: Request) -> Response:
        """200 when the database answers, 503 otherwise."""
        try:
            with runtime.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception:
            logger.warning("health check: database unreachable")
            return JSONResponse({"status": "unavailable", "database": "down"}, status_code=503)
        return JSONResponse({"status": "ok", "channels": sorted(runtime.channels)})

    async def metrics(_request: Request) -> Response:
        """Prometheus text: inbound counters and outbox messages by channel and status."""
        lines = ["# TYPE citybot_inbound_total counter"]
        lines += [f"citybot_{name} {value}" for name, value in sorted(runtime.counters.items())]
        lines.append("# TYPE citybot_outbox_messages gauge")
        with session_scope(runtime.engine) as session:
            for channel in sorted(set(runtime.channels) | {"console"}):
                for status, n in sorted(
                    outbox.count_by_status(session=session, channel=channel).items()
                ):
                    lines.append(
                        f'citybot_outbox_messages{{channel="{channel}",status="{status}"}} {n}'
                    )
        return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")

    routes: list[BaseRoute] = [Route("/healthz", healthz), Route("/metrics", metrics)]
    for channel in runtime.channels.values():
        routes += channel.routes()
    return Starlette(routes=routes, lifespan=lifespan)


def serve(settings: Settings, *, host: str = "0.0.0.0", port: int = 8000) -> int:  # noqa: S104
    """Run the app under uvicorn with the channels the settings enable."""
    import uvicorn

    from bot.channels.registry import channels_from_settings
    from bot.cli import prepare_database
    from bot.runtime import build_runtime

    engine = prepare_database(settings)
    runtime = build_runtime(settings, engine=engine)
    runtime.channels.update(channels_from_settings(settings, runtime))
    runtime.dispatcher.senders.update({n: c.sender for n, c in runtime.channels.items()})
    uvicorn.run(create_app(runtime), host=host, port=port, proxy_headers=True, log_config=None)
    return 0
