"""The main menu and the language menu: contact-level prompts outside any survey."""

from __future__ import annotations

from handlers.context import Ctx
from handlers.i18n import NATIVE_NAMES, t
from handlers.messages import Choice, Outgoing
from storage import contacts

MENU_ITEMS = ("needs", "ppe", "register", "mydata", "language")
SURVEY_OF = {"needs": "development_needs", "ppe": "emergency_needs", "register": "registration"}


def menu_items(ctx: Ctx) -> list[str]:
    """Return the menu entries: the core ones, then those feature modules add."""
    from handlers import features

    return [*MENU_ITEMS[:2], *features.MENU, *MENU_ITEMS[2:]]


def main_menu(ctx: Ctx, *, lead: str = "") -> Outgoing:
    """Show what the contact can do; a typed number or a tap picks an entry."""
    items = menu_items(ctx)
    contacts.update_contact(
        session=ctx.session, contact=ctx.contact, prompt="menu", prompt_data={}
    )
    text = t("menu_text", ctx.lang)
    return Outgoing(
        text=f"{lead}\n\n{text}" if lead else text,
        choices=tuple(Choice(f"m:{item}", t(f"menu_{item}", ctx.lang)) for item in items),
    )


def language_menu(ctx: Ctx, *, then: str = "menu", lead: str = "") -> Outgoing:
    """Offer every supported language by its own name."""
    contacts.update_contact(
        session=ctx.session, contact=ctx.contact, prompt="language", prompt_data={"then": then}
    )
    languages = ctx.config.supported_languages
    prompt = " / ".join(
        t("choose_language", lang) for lang in dict.fromkeys((ctx.lang, *languages))
    )
    return Outgoing(
        text=f"{lead}\n\n{prompt}" if lead else prompt,
        choices=tuple(Choice(f"l:{lang}", NATIVE_NAMES[lang]) for lang in languages),
    )
