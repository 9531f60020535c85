"""`citybot doctor`: check the configuration and say what is wrong and how to fix it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import text

from bot.settings import Settings
from handlers.notify import PROACTIVE_KINDS

_TELEGRAM_TOKEN = re.compile(r"^\d{5,16}:[A-Za-z0-9_-]{30,}$")
_WEBHOOK_SECRET = re.compile(r"^[A-Za-z0-9_-]{32,256}$")
_ACCOUNT_SID = re.compile(r"^AC[0-9a-f]{32}$")
_AUTH_TOKEN = re.compile(r"^[0-9a-f]{32}$")
_WHATSAPP_FROM = re.compile(r"^whatsapp:\+\d{6,15}$")
_CONTENT_SID = re.compile(r"^HX[0-9a-f]{32}$")
_PLACEHOLDER = re.compile(r"replace|changeme|example|x{8,}", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Finding:
    """One check's outcome: `ok`, `warn` or `error`, what was found, and the fix."""

    level: str
    check: str
    message: str
    fix: str = ""


def _secret(value: Any) -> str | None:
    """The plain value of a SecretStr (or None)."""
    return None if value is None else str(value.get_secret_value())


def check_database(settings: Settings) -> list[Finding]:
    """The database answers and its schema is at the code's head revision."""
    from storage import migrate
    from storage.db import make_engine

    if settings.database_url.startswith("sqlite:///"):
        path = Path(settings.database_url.removeprefix("sqlite:///"))
        if not path.exists():
            return [
                Finding(
                    "error",
                    "database",
                    f"{path} does not exist",
                    "run `citybot db upgrade` (or `citybot chat`, which creates it)",
                )
            ]
    try:
        engine = make_engine(settings.database_url)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        current, head = migrate.current_revision(engine=engine), migrate.head_revision()
    except Exception as exc:
        return [
            Finding(
                "error",
                "database",
                f"cannot connect ({type(exc).__name__})",
                "check DATABASE_URL and that the server is running",
            )
        ]
    if current != head:
        return [
            Finding(
                "error",
                "database",
                f"schema at {current}, code at {head}",
                "run `citybot db upgrade`",
            )
        ]
    return [Finding("ok", "database", f"reachable, schema at {head}")]


def check_public_url(settings: Settings) -> list[Finding]:
    """Webhooks need a public https address."""
    url = settings.public_base_url
    needs = settings.twilio_account_sid or settings.telegram_mode_resolved == "webhook"
    if not url:
        level = "error" if settings.twilio_account_sid else "warn"
        return [
            Finding(
                level,
                "PUBLIC_BASE_URL",
                "not set (Telegram falls back to polling; WhatsApp cannot receive)",
                "set it to the https address of `citybot serve`",
            )
        ]
    if not url.startswith("https://"):
        return [
            Finding(
                "error" if needs else "warn",
                "PUBLIC_BASE_URL",
                "not https",
                "Telegram and Twilio only call https webhooks; put TLS in front",
            )
        ]
    if url.endswith("/"):
        return [Finding("warn", "PUBLIC_BASE_URL", "ends with /", "drop the trailing slash")]
    return [Finding("ok", "PUBLIC_BASE_URL", url)]


def check_telegram(settings: Settings) -> list[Finding]:
    """Token shape, webhook secret strength."""
    token = _secret(settings.telegram_bot_token)
    if token is None:
        return [
            Finding(
                "warn",
                "Telegram",
                "TELEGRAM_BOT_TOKEN not set: channel off",
                "create a bot with @BotFather and set TELEGRAM_BOT_TOKEN",
            )
        ]
    found = []
    if not _TELEGRAM_TOKEN.match(token) or _PLACEHOLDER.search(token):
        found.append(
            Finding(
                "error",
                "TELEGRAM_BOT_TOKEN",
                "not a bot token (digits:secret)",
                "copy the token @BotFather gave you",
            )
        )
    secret = _secret(settings.telegram_webhook_secret)
    weak = secret is None or not _WEBHOOK_SECRET.match(secret) or _PLACEHOLDER.search(secret)
    if settings.telegram_mode_resolved == "webhook" and weak:
        found.append(
            Finding(
                "error",
                "TELEGRAM_WEBHOOK_SECRET",
                "missing, weak or a placeholder (32–256 of A-Z a-z 0-9 _ -)",
                'python3 -c "import secrets; print(secrets.token_urlsafe(32))"',
            )
        )
    return found or [Finding("ok", "Telegram", f"configured ({settings.telegram_mode_resolved})")]


def check_twilio(settings: Settings) -> list[Finding]:
    """Account SID, auth token and sender shapes."""
    if not settings.twilio_account_sid:
        return [
            Finding(
                "warn",
                "WhatsApp",
                "TWILIO_ACCOUNT_SID not set: channel off",
                "see docs/whatsapp.md",
            )
        ]
    found = []
    if not _ACCOUNT_SID.match(settings.twilio_account_sid):
        found.append(
            Finding(
                "error",
                "TWILIO_ACCOUNT_SID",
                "not AC + 32 hex digits",
                "copy it from the Twilio console",
            )
        )
    token = _secret(settings.twilio_auth_token)
    if token is None or not _AUTH_TOKEN.match(token):
        found.append(
            Finding(
                "error",
                "TWILIO_AUTH_TOKEN",
                "missing or not 32 hex digits",
                "copy the auth token from the Twilio console",
            )
        )
    if not _WHATSAPP_FROM.match(settings.twilio_whatsapp_from or ""):
        found.append(
            Finding(
                "error",
                "TWILIO_WHATSAPP_FROM",
                "not whatsapp:+<number>",
                "e.g. whatsapp:+14155238886 (sandbox) or your sender",
            )
        )
    return found or [Finding("ok", "WhatsApp", "credentials well formed")]


def check_templates(settings: Settings) -> list[Finding]:
    """A WhatsApp template for every proactive message kind in every supported language."""
    if not settings.twilio_account_sid:
        return []
    path = Path(settings.whatsapp_templates_file)
    if not path.exists():
        return [
            Finding(
                "error",
                "templates",
                f"{path} not found: proactive WhatsApp messages "
                "outside the 24-hour window will be held (needs_template)",
                "copy docs/whatsapp_templates.example.yaml and fill in your ContentSids",
            )
        ]
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        return [
            Finding(
                "error",
                "templates",
                f"{path} is not valid YAML ({exc.__class__.__name__})",
                "fix the file",
            )
        ]
    missing, malformed = [], []
    for kind in PROACTIVE_KINDS:
        for lang in settings.supported_languages:
            entry = (data.get(kind) or {}).get(lang)
            if not entry:
                missing.append(f"{kind}/{lang}")
            elif not _CONTENT_SID.match(str(entry.get("content_sid", ""))):
                malformed.append(f"{kind}/{lang}")
    found = []
    if missing:
        found.append(
            Finding(
                "warn",
                "templates",
                f"none for {', '.join(missing)}: held as needs_template outside the window",
                "register and add them",
            )
        )
    if malformed:
        found.append(
            Finding(
                "error",
                "templates",
                f"content_sid not HX + 32 hex for {', '.join(malformed)}",
                "copy the ContentSids from the console",
            )
        )
    return found or [Finding("ok", "templates", "every kind and language has one")]


def check_staff(settings: Settings) -> list[Finding]:
    """Someone can run staff commands."""
    if not settings.staff_urns:
        return [
            Finding(
                "warn",
                "STAFF_URNS",
                "no staff: nobody can review or broadcast",
                "set STAFF_URNS=telegram:<id>=admin",
            )
        ]
    admins = [u for u, r in settings.staff_urns.items() if r == "admin"]
    if not admins:
        return [
            Finding(
                "warn", "STAFF_URNS", "no admin: nobody can promote staff", "give one URN =admin"
            )
        ]
    return [Finding("ok", "STAFF_URNS", f"{len(settings.staff_urns)} staff, {len(admins)} admin")]


CHECKS = (
    check_database,
    check_public_url,
    check_telegram,
    check_twilio,
    check_templates,
    check_staff,
)


def diagnose(settings: Settings) -> list[Finding]:
    """Run every check."""
    return [finding for check in CHECKS for finding in check(settings)]


def report(findings: list[Finding]) -> tuple[str, int]:
    """Render findings as text and the exit code (1 when any error)."""
    marks = {"ok": "✔", "warn": "!", "error": "✘"}
    lines = []
    for f in findings:
        lines.append(f"{marks[f.level]} {f.check}: {f.message}")
        if f.fix and f.level != "ok":
            lines.append(f"    fix: {f.fix}")
    errors = sum(f.level == "error" for f in findings)
    warnings = sum(f.level == "warn" for f in findings)
    lines.append(f"{errors} error(s), {warnings} warning(s)")
    return "\n".join(lines), 1 if errors else 0
