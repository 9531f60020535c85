"""Settings from the environment (and an optional .env file); every field is in .env.example."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from handlers.config import ALL_LANGUAGES, BotConfig


class Settings(BaseSettings):
    """Deployment settings; secrets are SecretStr so they never print."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = "sqlite:///citybot.db"
    public_base_url: str | None = None
    telegram_bot_token: SecretStr | None = None
    telegram_webhook_secret: SecretStr | None = None
    telegram_mode: str | None = None
    telegram_api_base_url: str = "https://api.telegram.org/bot"
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_whatsapp_from: str | None = None
    twilio_api_base_url: str = "https://api.twilio.com"
    staff_urns: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    default_language: str = "en"
    supported_languages: Annotated[tuple[str, ...], NoDecode] = ALL_LANGUAGES
    run_expiry_hours: float = 24 * 7
    log_level: str = "INFO"
    # Webhook request bodies over this size are refused with 413 (bot/limits.py).
    max_request_bytes: int = Field(default=1 << 20, ge=1024)
    # Outbound throttling and timeouts (platform limits; see docs/ARCHITECTURE.md).
    telegram_rate_per_second: float = 30.0
    telegram_rate_per_chat: float = 1.0
    whatsapp_rate_per_second: float = 80.0
    # How far ahead of the rate a bunch of requests may arrive at Twilio (requests in flight
    # count as arriving now). Twilio queues beyond a sender's rate, so a second keeps full
    # speed with real answer times (~200 ms); a stricter API needs less (the fake: 0.05).
    whatsapp_burst_seconds: float = 1.0
    whatsapp_templates_file: str = "whatsapp_templates.yaml"
    send_timeout_seconds: float = 10.0
    send_max_attempts: int = 6
    files_dir: str | None = None

    @field_validator("staff_urns", mode="before")
    @classmethod
    def _parse_staff(cls, value: object) -> object:
        """Read `telegram:1=admin,whatsapp:+2327…` (role defaults to staff)."""
        if isinstance(value, str):
            pairs = [p.strip() for p in value.split(",") if p.strip()]
            parsed = {}
            for pair in pairs:
                urn, _, role = pair.partition("=")
                role = role.strip() or "staff"
                if role not in ("staff", "admin") or ":" not in urn:
                    raise ValueError(
                        f"STAFF_URNS entry {pair!r}: use channel:address[=staff|admin]"
                    )
                parsed[urn.strip()] = role
            return parsed
        return value

    @field_validator("supported_languages", mode="before")
    @classmethod
    def _parse_languages(cls, value: object) -> object:
        """Read `en,fr,es`."""
        if isinstance(value, str):
            return tuple(p.strip() for p in value.split(",") if p.strip())
        return value

    @property
    def telegram_mode_resolved(self) -> str:
        """`webhook` or `polling`; polling is the default without a public URL."""
        if self.telegram_mode in ("webhook", "polling"):
            return self.telegram_mode
        return "webhook" if self.public_base_url else "polling"

    def bot_config(self) -> BotConfig:
        """The part of the settings the conversation logic needs."""
        return BotConfig(
            default_language=self.default_language,
            supported_languages=self.supported_languages,
            run_expiry=timedelta(hours=self.run_expiry_hours),
            staff_urns=dict(self.staff_urns),
            whatsapp_templates_file=self.whatsapp_templates_file,
            files_dir=self.files_dir,
        )


def get_settings(**overrides: object) -> Settings:
    """Build the settings (environment, .env, then overrides)."""
    return Settings(**overrides)  # type: ignore[arg-type]
