"""Neutral messages: what adapters hand to the router and what the router hands back."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Choice:
    """One option offered to the user: a stable id and a localized label."""

    id: str
    label: str


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file sent with a message (a document, an image)."""

    kind: str  # "document" | "image"
    filename: str
    path: str
    caption: str = ""


@dataclass(frozen=True, slots=True)
class Inbound:
    """A message from a person, whatever the channel."""

    urn: str
    text: str
    received_at: datetime
    choice_id: str | None = None
    language_hint: str | None = None
    external_id: str | None = None

    @property
    def channel(self) -> str:
        """The channel part of the URN."""
        return self.urn.partition(":")[0]

    def to_payload(self) -> dict[str, Any]:
        """Serialise for the inbox."""
        return {
            "text": self.text,
            "choice_id": self.choice_id,
            "language_hint": self.language_hint,
        }

    @classmethod
    def from_payload(
        cls, *, urn: str, payload: dict[str, Any], received_at: datetime, external_id: str
    ) -> Inbound:
        """Rebuild an inbound message stored in the inbox."""
        return cls(
            urn=urn,
            text=str(payload.get("text") or ""),
            choice_id=payload.get("choice_id"),
            language_hint=payload.get("language_hint"),
            received_at=received_at,
            external_id=external_id,
        )


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message the bot decided to send; the dispatcher renders and sends it."""

    text: str
    choices: tuple[Choice, ...] = ()
    multi: bool = False
    attachments: tuple[Attachment, ...] = ()
    kind: str = "reply"
    meta: dict[str, Any] = field(default_factory=dict)

    def with_lead(self, lead: str) -> Outgoing:
        """Return this message with `lead` as its first paragraph (everything else kept)."""
        return replace(self, text=f"{lead}\n\n{self.text}") if lead else self

    def to_body(self) -> dict[str, Any]:
        """Serialise for the outbox."""
        return {
            "text": self.text,
            "choices": [[c.id, c.label] for c in self.choices],
            "multi": self.multi,
            "attachments": [[a.kind, a.filename, a.path, a.caption] for a in self.attachments],
            "meta": self.meta,
        }

    @classmethod
    def from_body(cls, body: dict[str, Any], *, kind: str = "reply") -> Outgoing:
        """Rebuild a message from its outbox body."""
        return cls(
            text=str(body.get("text", "")),
            choices=tuple(Choice(id=c[0], label=c[1]) for c in body.get("choices", [])),
            multi=bool(body.get("multi", False)),
            attachments=tuple(Attachment(*a) for a in body.get("attachments", [])),
            kind=kind,
            meta=dict(body.get("meta", {})),
        )
