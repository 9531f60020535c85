"""What every handler gets for one turn: the session, the contact, the language, the time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from handlers.answers import PlaceResolver
from handlers.config import BotConfig
from storage.models import Contact, SurveyRun


@dataclass(slots=True)
class Ctx:
    """One turn's context; `lang` is the language replies are written in."""

    session: Session
    contact: Contact
    urn: str
    config: BotConfig
    now: datetime
    lang: str
    places: PlaceResolver
    run: SurveyRun | None = None  # the active run as found at the start of the turn
