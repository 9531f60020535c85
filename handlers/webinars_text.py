"""What webinar messages say: titles, times in the reader's zone, reminders, notices, files."""

from __future__ import annotations

from datetime import datetime, timedelta

from babel.lists import format_list

from handlers.definitions import catalog
from handlers.i18n import NATIVE_NAMES, pick, t
from handlers.messages import Attachment, Choice, Outgoing
from handlers.webinars_ics import CalendarEvent, write
from handlers.webinars_time import show_duration, show_time, show_until, zone_of
from storage.models import Contact
from storage.webinars_models import Webinar, WebinarRegistration

CREATE_FORM = "webinar_create"
SURVEY = "webinar_survey"


def text_of(texts: dict[str, str], lang: str) -> str:
    """A webinar text in `lang`, else English, else any language given."""
    return texts.get(lang) or texts.get("en") or next(iter(texts.values()), "")


def title(webinar: Webinar, lang: str) -> str:
    """The webinar's title in `lang`."""
    return text_of(webinar.title, lang) or f"#{webinar.id}"


def reader_zone(
    webinar: Webinar, contact: Contact | None, registration: WebinarRegistration | None = None
) -> tuple[str, str]:
    """The zone to show times in and where it came from (`contact` or `organiser`)."""
    if contact is not None and contact.timezone and zone_of(contact.timezone) is not None:
        return contact.timezone, "contact"
    if (
        registration is not None
        and registration.zone_source == "contact"
        and zone_of(registration.timezone) is not None
    ):
        return registration.timezone, "contact"
    return webinar.timezone, "organiser"


def local_time(webinar: Webinar, zone: str, lang: str) -> str:
    """The start shown in a zone."""
    return show_time(webinar.starts_at, zone, lang)


def when_lines(webinar: Webinar, zone: str, source: str, lang: str) -> str:
    """The start in the reader's time and the organiser's (or only the organiser's, said so)."""
    organiser = show_time(webinar.starts_at, webinar.timezone, lang)
    if source == "organiser":
        return t("web_when_no_zone", lang, time=organiser)
    mine = t("web_when_local", lang, time=show_time(webinar.starts_at, zone, lang))
    if zone == webinar.timezone:
        return mine
    return f"{mine}\n{t('web_when_organiser', lang, time=organiser)}"


def focus_label(focus: str | None, lang: str) -> str | None:
    """The focus area's label in `lang` (from the create form's options)."""
    if not focus:
        return None
    option = catalog()[CREATE_FORM].question("focus").option(focus)
    return pick(option.label, lang) if option else focus


def languages_label(codes: list[str], lang: str) -> str:
    """Interpretation languages by their own names."""
    names = [NATIVE_NAMES.get(code, code) for code in codes]
    return format_list(names, locale=lang) if names else t("web_none", lang)


def offsets_label(offsets: list[int], lang: str) -> str:
    """Reminder offsets in words (`1 day and 1 hour`)."""
    return format_list([show_duration(m, lang) for m in offsets], locale=lang)


def details(
    webinar: Webinar,
    zone: str,
    source: str,
    lang: str,
    *,
    seats_left: int | None = None,
    with_link: bool = False,
) -> str:
    """A webinar's full description for one reader."""
    lines = [f"«{title(webinar, lang)}»"]
    description = text_of(webinar.description, lang)
    if description:
        lines.append(description)
    lines.append("")
    lines.append(when_lines(webinar, zone, source, lang))
    lines.append(t("web_duration", lang, duration=show_duration(webinar.duration_minutes, lang)))
    if webinar.interpretation:
        lines.append(
            t("web_interpretation", lang, languages=languages_label(webinar.interpretation, lang))
        )
    focus = focus_label(webinar.focus_area, lang)
    if focus:
        lines.append(t("web_focus", lang, focus=focus))
    if webinar.registration_deadline is not None:
        shown = show_time(webinar.registration_deadline, zone, lang)
        lines.append(t("web_deadline", lang, time=shown))
    if seats_left is not None:
        lines.append(t("web_status_seats", lang, seats=seats_left))
    if with_link and webinar.join_url:
        lines.append(t("web_join_link", lang, link=webinar.join_url))
    return "\n".join(lines)


def meta(webinar: Webinar, zone: str, lang: str, now: datetime) -> dict[str, object]:
    """Fields WhatsApp templates may use (title, local time, link …)."""
    return {
        "webinar_id": webinar.id,
        "title": title(webinar, lang),
        "local_time": show_time(webinar.starts_at, zone, lang),
        "organiser_time": show_time(webinar.starts_at, webinar.timezone, lang),
        "link": webinar.join_url,
        "starts_at": webinar.starts_at.isoformat(),
        "until": show_until(webinar.starts_at - now, lang) if webinar.starts_at > now else "",
    }


def reminder(webinar: Webinar, zone: str, source: str, lang: str, now: datetime) -> Outgoing:
    """A reminder before the start, with the time and the join link."""
    head = t(
        "web_reminder",
        lang,
        title=title(webinar, lang),
        until=show_until(webinar.starts_at - now, lang),
    )
    lines = [head, when_lines(webinar, zone, source, lang)]
    if webinar.join_url:
        lines.append(t("web_join_link", lang, link=webinar.join_url))
    return Outgoing(text="\n".join(lines), kind="reminder", meta=meta(webinar, zone, lang, now))


def survey_invitation(webinar: Webinar, zone: str, lang: str, now: datetime) -> Outgoing:
    """The post-webinar survey invitation, with a button that starts it."""
    return Outgoing(
        text=t("web_survey_invite", lang, title=title(webinar, lang)),
        choices=(Choice(f"w:f{webinar.id}", t("web_button_survey", lang)),),
        kind="webinar_survey",
        meta=meta(webinar, zone, lang, now),
    )


def changed_notice(webinar: Webinar, zone: str, source: str, lang: str, now: datetime) -> Outgoing:
    """A registrant is told the webinar changed, with its current details."""
    body = details(webinar, zone, source, lang, with_link=True)
    return Outgoing(
        text=f"{t('web_changed_notice', lang, title=title(webinar, lang))}\n\n{body}",
        choices=(Choice(f"w:c{webinar.id}", t("web_button_calendar", lang)),),
        kind="webinar_update",
        meta=meta(webinar, zone, lang, now),
    )


def cancelled_notice(webinar: Webinar, zone: str, lang: str, now: datetime) -> Outgoing:
    """A registrant is told the webinar is cancelled."""
    shown = show_time(webinar.starts_at, zone, lang)
    return Outgoing(
        text=t("web_cancelled_notice", lang, title=title(webinar, lang), time=shown),
        kind="webinar_update",
        meta=meta(webinar, zone, lang, now),
    )


def calendar_file(webinar: Webinar, lang: str, now: datetime) -> Outgoing:
    """The webinar as an .ics file (UTC times, so any calendar shows it in its own zone)."""
    name = title(webinar, lang)
    description = text_of(webinar.description, lang)
    if webinar.join_url:
        description = f"{description}\n\n{t('web_join_link', lang, link=webinar.join_url)}"
    event = CalendarEvent(
        uid=f"webinar-{webinar.id}@citybot",
        sequence=webinar.version,
        starts_at=webinar.starts_at,
        duration=timedelta(minutes=webinar.duration_minutes),
        summary=name,
        description=description.strip(),
        url=webinar.join_url,
        stamp=now,
        cancelled=webinar.status == "cancelled",
    )
    filename = f"webinar-{webinar.id}.ics"
    path = write(event, f"webinar-{webinar.id}-v{webinar.version}-{lang}.ics")
    caption = t("web_ics_caption", lang, title=name)
    return Outgoing(
        text=caption,
        attachments=(Attachment(kind="document", filename=filename, path=str(path)),),
    )
