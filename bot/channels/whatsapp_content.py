"""Create the generic in-session Content templates that render choices as buttons or a list.

WhatsApp shows quick-reply buttons and list pickers only through Content templates. These are
sent inside the 24-hour window, so they need no approval: one template per number of choices,
whose body, titles and ids are all variables, serves every question of every survey in every
language. Run once per Twilio account and paste the printed block into the templates file:

    python -m bot.channels.whatsapp_content            # creates them (TWILIO_* from .env)
    python -m bot.channels.whatsapp_content --dry-run  # prints the definitions only

Without them the bot sends numbered text, which always works.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

import yaml
from twilio.rest import Client
from twilio.rest.content.v1.content import ContentList

from bot.channels.whatsapp_http import BaseUrlHttpClient
from bot.channels.whatsapp_render import LIST_MAX, QUICK_REPLY_MAX, RESERVED
from bot.settings import Settings, get_settings


def quick_reply(count: int) -> dict[str, Any]:
    """A twilio/quick-reply template with `count` buttons: body {{1}}, then title and id."""
    samples = {"1": "Do you agree?"}
    actions = []
    for i in range(count):
        title, ident = str(2 + 2 * i), str(3 + 2 * i)
        samples[title], samples[ident] = f"Option {i + 1}", f"s1:o{i + 1}"
        actions.append({"title": f"{{{{{title}}}}}", "id": f"{{{{{ident}}}}}"})
    return {
        "friendly_name": f"citybot_quick_reply_{count}",
        "language": "en",
        "variables": samples,
        "types": {"twilio/quick-reply": {"body": "{{1}}", "actions": actions}},
    }


def list_picker(count: int) -> dict[str, Any]:
    """A twilio/list-picker template with `count` items: body {{1}}, button {{2}}, item, id."""
    samples = {"1": "What would you like to do?", "2": "Choose"}
    items = []
    for i in range(count):
        item, ident = str(3 + 2 * i), str(4 + 2 * i)
        samples[item], samples[ident] = f"Option {i + 1}", f"m:o{i + 1}"
        items.append({"item": f"{{{{{item}}}}}", "id": f"{{{{{ident}}}}}"})
    return {
        "friendly_name": f"citybot_list_picker_{count}",
        "language": "en",
        "variables": samples,
        "types": {"twilio/list-picker": {"body": "{{1}}", "button": "{{2}}", "items": items}},
    }


def definitions() -> dict[str, dict[int, dict[str, Any]]]:
    """Every generic template: quick replies for 1–3 choices, lists for 2–10."""
    return {
        "quick_reply": {n: quick_reply(n) for n in range(1, QUICK_REPLY_MAX + 1)},
        "list_picker": {n: list_picker(n) for n in range(2, LIST_MAX + 1)},
    }


async def create_all(settings: Settings) -> dict[str, dict[str, dict[int, str]]]:
    """Create the templates through the Content API; return the `interactive:` block."""
    if not (settings.twilio_account_sid and settings.twilio_auth_token):
        raise SystemExit("set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
    http = BaseUrlHttpClient(
        base_url=settings.twilio_api_base_url, timeout=settings.send_timeout_seconds
    )
    client = Client(
        username=settings.twilio_account_sid,
        password=settings.twilio_auth_token.get_secret_value(),
        http_client=http,
    )
    block: dict[str, dict[int, str]] = {"quick_reply": {}, "list_picker": {}}
    try:
        for kind, per_count in definitions().items():
            for count, definition in per_count.items():
                created = await client.content.v1.contents.create_async(
                    ContentList.ContentCreateRequest(definition)
                )
                block[kind][count] = str(created.sid)
    finally:
        await http.close()
    return {RESERVED: block}


def main(argv: list[str] | None = None) -> None:
    """Create the templates (or print them) and print the YAML to add to the templates file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="print the definitions only")
    args = parser.parse_args(argv)
    if args.dry_run:
        print(json.dumps(definitions(), indent=2))  # noqa: T201
        return
    block = asyncio.run(create_all(get_settings()))
    print(yaml.safe_dump(block, sort_keys=False), end="")  # noqa: T201


if __name__ == "__main__":
    main()
