"""How a neutral message looks on WhatsApp: text, quick replies, a list, or an approved template.

In the 24-hour customer-service window (after the contact's last message) anything may be
sent. Choices become quick-reply buttons (at most 3, titles up to 20 characters) or a list
(up to 10 items of up to 24 characters) when the templates file names the generic in-session
Content templates for them (`interactive:`; see docs/whatsapp.md), and numbered text otherwise.
Typing the number or the label works in every case: the engine reads both.

Outside the window only an approved template may start a conversation: the templates file maps
each message kind and language to a ContentSid and the fields that fill its variables.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from handlers.i18n import t
from handlers.messages import Outgoing

logger = logging.getLogger(__name__)

BODY_LIMIT = 1600  # Twilio's limit for a message body
INTERACTIVE_BODY_LIMIT = 1024  # twilio/quick-reply and twilio/list-picker bodies
QUICK_REPLY_MAX, QUICK_REPLY_TITLE = 3, 20  # in session, without an approved template
LIST_MAX, LIST_ITEM = 10, 24
CHOICE_ID_LIMIT = 200
VARIABLE_LIMIT = 1024
RESERVED = "interactive"  # the top-level key of the in-session Content templates


class TemplateError(ValueError):
    """A template cannot be filled from a message (a variable's field is missing)."""


@dataclass(frozen=True, slots=True)
class Template:
    """An approved WhatsApp template: its ContentSid and where each variable's value comes from."""

    content_sid: str
    variables: tuple[tuple[str, str], ...] = ()  # (variable key, field of the message body)


@dataclass(frozen=True)
class ContentConfig:
    """The templates file: approved templates per kind and language, interactive Content SIDs."""

    templates: dict[str, dict[str, Template]] = field(default_factory=dict)
    quick_reply: dict[int, str] = field(default_factory=dict)
    list_picker: dict[int, str] = field(default_factory=dict)

    def template(self, kind: str, language: str) -> Template | None:
        """The approved template for a kind of message in a language, if one is configured."""
        return self.templates.get(kind, {}).get(language)


@dataclass(frozen=True, slots=True)
class WhatsAppRequest:
    """The parameters of one Twilio Messages.create call (besides To, From, StatusCallback)."""

    body: str | None = None
    content_sid: str | None = None
    content_variables: dict[str, str] | None = None
    media_urls: tuple[str, ...] = ()

    def params(self) -> dict[str, Any]:
        """Keyword arguments for `client.messages.create_async`."""
        found: dict[str, Any] = {}
        if self.content_sid is not None:
            found["content_sid"] = self.content_sid
            if self.content_variables:
                found["content_variables"] = json.dumps(self.content_variables)
            return found  # a Content template goes without Body and MediaUrl (error 63016)
        if self.body is not None:
            found["body"] = self.body
        if self.media_urls:
            found["media_url"] = list(self.media_urls)
        return found


def _content_sid(value: object, where: str) -> str:
    """Check that a configured value looks like a ContentSid."""
    if not isinstance(value, str) or not value.startswith("HX"):
        raise ValueError(f"{where}: a ContentSid starting with HX is required, got {value!r}")
    return value


def _template(entry: object, where: str) -> Template:
    """Read one `{content_sid, variables}` entry."""
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected a mapping with content_sid and variables")
    sid = _content_sid(entry.get("content_sid"), where)
    raw = entry.get("variables") or []
    if isinstance(raw, list):
        pairs = tuple((str(i), str(name)) for i, name in enumerate(raw, 1))
    elif isinstance(raw, dict):
        pairs = tuple((str(key), str(name)) for key, name in raw.items())
    else:
        raise ValueError(f"{where}: variables must be a list of field names or a mapping")
    return Template(content_sid=sid, variables=pairs)


def _sized(entry: object, where: str, largest: int) -> dict[int, str]:
    """Read `{number of choices: ContentSid}`."""
    if entry is None:
        return {}
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected a mapping of choice count to ContentSid")
    found: dict[int, str] = {}
    for count, sid in entry.items():
        if not str(count).isdigit() or not 1 <= int(count) <= largest:
            raise ValueError(f"{where}: {count!r} is not a number of choices from 1 to {largest}")
        found[int(count)] = _content_sid(sid, f"{where}.{count}")
    return found


def parse_content(data: object, *, source: str = "templates") -> ContentConfig:
    """Validate the parsed templates file (kind → language → template, plus `interactive`)."""
    if data is None:
        return ContentConfig()
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a mapping of message kind to languages")
    templates: dict[str, dict[str, Template]] = {}
    for kind, languages in data.items():
        if kind == RESERVED:
            continue
        if not isinstance(languages, dict):
            raise ValueError(f"{source}: {kind}: expected a mapping of language to template")
        templates[str(kind)] = {
            str(lang): _template(entry, f"{source}: {kind}.{lang}")
            for lang, entry in languages.items()
        }
    interactive = data.get(RESERVED) or {}
    if not isinstance(interactive, dict):
        raise ValueError(f"{source}: {RESERVED}: expected quick_reply and list_picker mappings")
    return ContentConfig(
        templates=templates,
        quick_reply=_sized(
            interactive.get("quick_reply"), f"{source}: {RESERVED}.quick_reply", QUICK_REPLY_MAX
        ),
        list_picker=_sized(
            interactive.get("list_picker"), f"{source}: {RESERVED}.list_picker", LIST_MAX
        ),
    )


def load_content(path: str | Path) -> ContentConfig:
    """Load the templates file; a missing file means no templates (proactive sends are held)."""
    file = Path(path)
    if not file.exists():
        logger.warning(
            "no WhatsApp templates file at %s: messages outside the 24-hour window will be "
            "held as needs_template",
            file,
        )
        return ContentConfig()
    with file.open(encoding="utf-8") as handle:
        return parse_content(yaml.safe_load(handle), source=str(file))


# -- in the window ---------------------------------------------------------------------------


def split_text(text: str, limit: int = BODY_LIMIT) -> list[str]:
    """Cut a long text into parts of at most `limit` characters, at paragraph or line ends."""
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = max(rest.rfind("\n\n", 0, limit), rest.rfind("\n", 0, limit))
        if cut <= 0:
            cut = rest.rfind(" ", 0, limit)
        if cut <= 0:
            cut = limit
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip("\n ")
    parts.append(rest)
    return [p for p in parts if p] or [""]


def numbered(message: Outgoing, lang: str) -> str:
    """The text, the choices as `1. …` lines and, when one of several is asked for, a hint."""
    lines = [message.text, ""] if message.text else []
    lines += [f"{number}. {choice.label}" for number, choice in enumerate(message.choices, 1)]
    # Multiple-choice questions carry their own hint; a lone choice (skip, "not listed") is an
    # aside to a typed answer, not the answer asked for.
    if len(message.choices) > 1 and not message.multi:
        lines += ["", t("wa_reply_number", lang)]
    return "\n".join(lines)


def _interactive(message: Outgoing, lang: str, content: ContentConfig) -> WhatsAppRequest | None:
    """Quick replies or a list when they fit and are configured; None for numbered text."""
    choices = message.choices
    labels = [c.label for c in choices]
    if (
        not choices
        or len(message.text) > INTERACTIVE_BODY_LIMIT
        or len(set(labels)) != len(labels)
        or any(not c.label.strip() or len(c.id) > CHOICE_ID_LIMIT for c in choices)
    ):
        return None
    variables = {"1": message.text or "…"}
    longest = max(len(label) for label in labels)
    count = len(choices)
    if count <= QUICK_REPLY_MAX and longest <= QUICK_REPLY_TITLE and count in content.quick_reply:
        for i, choice in enumerate(choices):
            variables[str(2 + 2 * i)] = choice.label
            variables[str(3 + 2 * i)] = choice.id
        return WhatsAppRequest(content_sid=content.quick_reply[count], content_variables=variables)
    if count <= LIST_MAX and longest <= LIST_ITEM and count in content.list_picker:
        variables["2"] = t("wa_list_button", lang)
        for i, choice in enumerate(choices):
            variables[str(3 + 2 * i)] = choice.label
            variables[str(4 + 2 * i)] = choice.id
        return WhatsAppRequest(content_sid=content.list_picker[count], content_variables=variables)
    return None


def _media(message: Outgoing) -> tuple[list[WhatsAppRequest], list[str]]:
    """Attachments with a public URL become media messages; the others are named in the text."""
    sends: list[WhatsAppRequest] = []
    named: list[str] = []
    for attachment in message.attachments:
        if attachment.path.startswith(("https://", "http://")):
            sends.append(
                WhatsAppRequest(body=attachment.caption or None, media_urls=(attachment.path,))
            )
        else:
            named.append(f"[{attachment.kind}: {attachment.filename}]")
    return sends, named


def session_requests(
    message: Outgoing, lang: str, content: ContentConfig
) -> list[WhatsAppRequest]:
    """Render a message for the open window: one request, or several for long text and media."""
    media, named = _media(message)
    if named:
        message = Outgoing(
            text="\n".join([message.text, *named]) if message.text else "\n".join(named),
            choices=message.choices,
            multi=message.multi,
            kind=message.kind,
            meta=message.meta,
        )
    interactive = _interactive(message, lang, content)
    if interactive is not None:
        return [*media, interactive]
    text = numbered(message, lang) if message.choices else message.text
    if not text and media:
        return media
    return [*media, *(WhatsAppRequest(body=part) for part in split_text(text))]


# -- outside the window ----------------------------------------------------------------------

_SPACES = re.compile(r"[ \u00a0]{4,}")


def _field(body: dict[str, Any], name: str) -> object:
    """A field of an outbox body: `text`, `meta.title`, or a bare meta key such as `title`."""
    meta = body.get("meta") or {}
    if "." in name:
        node: object = body
        for part in name.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return node
    if isinstance(meta, dict) and name in meta:
        return meta[name]
    return body.get(name)


def template_value(value: object) -> str:
    """A variable value WhatsApp accepts: one line, no tabs, no runs of four spaces."""
    text = " ".join(str(value).replace("\t", " ").splitlines())
    text = _SPACES.sub("   ", text).strip()
    return text[:VARIABLE_LIMIT]


def template_request(template: Template, body: dict[str, Any]) -> WhatsAppRequest:
    """Fill an approved template's variables from the message; TemplateError if one is empty."""
    variables: dict[str, str] = {}
    for key, name in template.variables:
        raw = _field(body, name)
        value = template_value(raw) if raw is not None else ""
        if not value:
            raise TemplateError(f"template variable {key} needs the field {name!r}")
        variables[key] = value
    return WhatsAppRequest(content_sid=template.content_sid, content_variables=variables or None)
