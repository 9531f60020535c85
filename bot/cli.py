"""The `citybot` command line: chat, serve, db upgrade, test."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from bot.settings import Settings, get_settings


def _parser() -> argparse.ArgumentParser:
    """Describe the commands."""
    parser = argparse.ArgumentParser(prog="citybot", description="City partners chatbot.")
    sub = parser.add_subparsers(dest="command", required=True)
    chat = sub.add_parser("chat", help="console simulator on the configured database")
    chat.add_argument(
        "--as", dest="urn", default="console:local", help="who you are (a console: URN)"
    )
    serve = sub.add_parser("serve", help="the ASGI app: webhooks, dispatcher and scheduler")
    serve.add_argument("--host", default="0.0.0.0")  # noqa: S104
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--no-worker",
        action="store_true",
        help="leave routing to a separate `citybot worker` process (uses a second core)",
    )
    serve.add_argument(
        "--no-send",
        action="store_true",
        help="with --no-worker: leave sending to `citybot worker --send` as well",
    )
    worker = sub.add_parser("worker", help="route stored inbound messages (beside `serve`)")
    worker.add_argument(
        "--poll", type=float, default=0.05, help="seconds between inbox checks when idle"
    )
    worker.add_argument(
        "--send",
        action="store_true",
        help="also send the outbox (run `serve --no-worker --no-send` beside it)",
    )
    db = sub.add_parser("db", help="database schema")
    db.add_argument("action", choices=("upgrade", "current"))
    sub.add_parser("doctor", help="check the configuration and say how to fix it")
    test = sub.add_parser("test", help="run the test suite (arguments go to pytest)")
    test.add_argument("pytest_args", nargs=argparse.REMAINDER)
    for module in _plugins():
        module.register(sub)
    return parser


CLI_PLUGINS = ("bot.cli_donations", "bot.cli_webinars", "bot.cli_staff", "bot.cli_outbox")


def _plugins() -> list[Any]:
    """Feature CLI modules present: each has `COMMANDS`, `register(sub)`, `run(args, settings)`."""
    from handlers.features import import_present

    return import_present(CLI_PLUGINS)


def run(argv: list[str]) -> int:
    """Run one command and return its exit code."""
    args = _parser().parse_args(argv)
    if args.command == "test":
        return _test(args.pytest_args)
    settings = get_settings()
    from bot.logs import configure_logging

    configure_logging("WARNING" if args.command == "chat" else settings.log_level)
    if args.command == "chat":
        return _chat(settings, args.urn)
    if args.command == "db":
        return _db(settings, args.action)
    if args.command == "doctor":
        from bot.doctor import diagnose, report

        text, code = report(diagnose(settings))
        print(text)
        return code
    if args.command == "serve":
        from bot.server import serve

        if args.no_send and not args.no_worker:
            print("citybot serve: --no-send goes with --no-worker", file=sys.stderr)
            return 2
        return serve(
            settings,
            host=args.host,
            port=args.port,
            with_worker=not args.no_worker,
            with_sender=not args.no_send,
        )
    if args.command == "worker":
        from bot.worker import run_standalone

        return run_standalone(settings, poll_seconds=args.poll, send=args.send)
    for module in _plugins():
        if args.command in module.COMMANDS:
            return int(module.run(args, settings))
    return 2


def prepare_database(settings: Settings) -> Engine:
    """Build the engine, bring the schema up to date and seed staff roles."""
    from bot.clock import SystemClock
    from storage import contacts, migrate
    from storage.db import make_engine, session_scope

    engine = make_engine(settings.database_url)
    migrate.upgrade(engine=engine)
    if settings.staff_urns:
        with session_scope(engine) as session:
            contacts.set_staff_roles(
                session=session, urns=settings.staff_urns, now=SystemClock().now()
            )
    return engine


def _chat(settings: Settings, urn: str) -> int:
    """Open the console simulator."""
    from bot.clock import SystemClock
    from bot.console import run_chat
    from handlers.places import LazyPlaces

    if not urn.startswith("console:"):
        print("citybot chat: --as takes a console: URN, e.g. console:amina", file=sys.stderr)
        return 2
    engine = prepare_database(settings)
    run_chat(engine, settings.bot_config(), SystemClock(), LazyPlaces(), urn=urn)
    return 0


def _db(settings: Settings, action: str) -> int:
    """Upgrade the schema or print its revision."""
    from storage import migrate
    from storage.db import make_engine

    engine = make_engine(settings.database_url)
    if action == "upgrade":
        migrate.upgrade(engine=engine)
    print(
        f"database at revision {migrate.current_revision(engine=engine)}"
        f" (code head {migrate.head_revision()})"
    )
    return 0


def _test(pytest_args: list[str]) -> int:
    """Run pytest from the project root; PostgreSQL tests run when TEST_DATABASE_URL is set."""
    root = Path(__file__).resolve().parent.parent
    command = [sys.executable, "-m", "pytest", *pytest_args]
    return subprocess.call(command, cwd=root, env=dict(os.environ))
