"""Loading ahead what the first messages would load, so none of them waits for it."""

from __future__ import annotations

from handlers import language
from handlers.answers import PlaceResolver
from handlers.config import BotConfig
from handlers.definitions import catalog
from handlers.i18n import keyword_of, strings


def warm(*, config: BotConfig, places: PlaceResolver) -> None:
    """Load the survey definitions, UI strings, keywords, language models and gazetteer."""
    catalog()
    strings()
    keyword_of("help")
    language.warm(config.supported_languages)
    places.resolve("koidu")  # builds the gazetteer when it is built on first use
