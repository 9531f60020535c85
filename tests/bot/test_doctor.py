"""`citybot doctor`: every misconfiguration is named with its fix; a good one passes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.doctor import diagnose, report
from bot.settings import Settings, get_settings
from handlers.config import ALL_LANGUAGES
from handlers.notify import PROACTIVE_KINDS
from storage import migrate
from storage.db import make_engine

GOOD_SECRET = "q3G8-vT5xZ_mN2pL7rW9yK4bH6cJ1dF0sA"


def _good(tmp_path: Path, **overrides: Any) -> Settings:
    """A complete, well-formed configuration on a migrated SQLite file."""
    db = tmp_path / "ok.db"
    migrate.upgrade(engine=make_engine(f"sqlite:///{db}"))
    templates = tmp_path / "templates.yaml"
    templates.write_text(
        yaml.safe_dump(
            {
                kind: {
                    lang: {"content_sid": "HX" + f"{i:032x}", "variables": ["text"]}
                    for lang in ALL_LANGUAGES
                }
                for i, kind in enumerate(PROACTIVE_KINDS)
            }
        )
    )
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{db}",
        "public_base_url": "https://bot.example.net",
        "telegram_bot_token": "123456789:AAF" + "x1Y2z3" * 6,
        "telegram_webhook_secret": GOOD_SECRET,
        "twilio_account_sid": "AC" + "0123456789abcdef" * 2,
        "twilio_auth_token": "0123456789abcdef" * 2,
        "twilio_whatsapp_from": "whatsapp:+14155238886",
        "whatsapp_templates_file": str(templates),
        "staff_urns": "telegram:1=admin",
    }
    values.update(overrides)
    return get_settings(**values)


def _errors(settings: Settings) -> dict[str, str]:
    """The checks that failed, with their messages."""
    return {f.check: f.message for f in diagnose(settings) if f.level == "error"}


def test_a_good_configuration_passes(tmp_path: Path) -> None:
    """No error, exit code 0."""
    text, code = report(diagnose(_good(tmp_path)))
    assert code == 0, text
    assert "0 error(s)" in text


@pytest.mark.parametrize(
    ("override", "check"),
    [
        ({"public_base_url": "http://bot.example.net"}, "PUBLIC_BASE_URL"),
        ({"telegram_bot_token": "not-a-token"}, "TELEGRAM_BOT_TOKEN"),
        ({"telegram_webhook_secret": "short"}, "TELEGRAM_WEBHOOK_SECRET"),
        (
            {"telegram_webhook_secret": "replace-with-a-long-random-string"},
            "TELEGRAM_WEBHOOK_SECRET",
        ),
        ({"twilio_account_sid": "ACxxxxxxxx"}, "TWILIO_ACCOUNT_SID"),
        ({"twilio_auth_token": "secret"}, "TWILIO_AUTH_TOKEN"),
        ({"twilio_whatsapp_from": "+14155238886"}, "TWILIO_WHATSAPP_FROM"),
        ({"whatsapp_templates_file": "/nonexistent/templates.yaml"}, "templates"),
        ({"database_url": "sqlite:////nonexistent/dir/x.db"}, "database"),
        ({"database_url": "postgresql://nobody@127.0.0.1:1/none"}, "database"),
    ],
)
def test_each_misconfiguration_is_an_error_with_a_fix(
    tmp_path: Path, override: dict[str, Any], check: str
) -> None:
    """The failing check is named, its fix printed, and the exit code is 1."""
    settings = _good(tmp_path, **override)
    assert check in _errors(settings)
    text, code = report(diagnose(settings))
    assert code == 1 and "fix:" in text


def test_an_unmigrated_database_is_named(tmp_path: Path) -> None:
    """A database behind the code's schema says to run db upgrade."""
    db = tmp_path / "old.db"
    migrate.upgrade(engine=make_engine(f"sqlite:///{db}"), revision="c05c5be78646")
    text, code = report(diagnose(_good(tmp_path, database_url=f"sqlite:///{db}")))
    assert code == 1 and "citybot db upgrade" in text


def test_missing_templates_are_listed_as_warnings(tmp_path: Path) -> None:
    """A language without a template is a warning naming kind/language."""
    settings = _good(tmp_path, supported_languages="en,fr,pt")
    Path(settings.whatsapp_templates_file).write_text(
        yaml.safe_dump({"reminder": {"en": {"content_sid": "HX" + "a" * 32}}})
    )
    warnings = [f.message for f in diagnose(settings) if f.check == "templates"]
    assert any("reminder/fr" in m and "broadcast/pt" in m for m in warnings)


def test_secrets_are_never_printed(tmp_path: Path) -> None:
    """The report shows no token, secret or auth token."""
    settings = _good(tmp_path, telegram_webhook_secret="short")
    text, _ = report(diagnose(settings))
    for secret in ("x1Y2z3", "0123456789abcdef0123456789abcdef", GOOD_SECRET):
        assert secret not in text
