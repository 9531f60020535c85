"""What the conversation logic needs to know of the deployment (built from settings by bot/)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

ALL_LANGUAGES = ("en", "fr", "es", "ar", "ru", "zh", "pt")


@dataclass(frozen=True, slots=True)
class BotConfig:
    """Neutral configuration passed to handlers."""

    default_language: str = "en"
    supported_languages: tuple[str, ...] = ALL_LANGUAGES
    run_expiry: timedelta = timedelta(days=7)
    staff_urns: dict[str, str] = field(default_factory=dict)
    whatsapp_templates_file: str = "whatsapp_templates.yaml"  # staff previews read it
    files_dir: str | None = None  # where staff reports and exports are written

    def __post_init__(self) -> None:
        """Refuse a default language that is not supported."""
        if self.default_language not in self.supported_languages:
            raise ValueError("DEFAULT_LANGUAGE must be one of SUPPORTED_LANGUAGES")
        unknown = set(self.supported_languages) - set(ALL_LANGUAGES)
        if unknown:
            raise ValueError(f"no translations for {sorted(unknown)}")
