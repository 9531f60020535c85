"""The Content API helper creates the generic interactive templates through twilio's client."""

from __future__ import annotations

import asyncio
import json

from bot.channels.whatsapp_content import create_all, definitions
from bot.channels.whatsapp_render import parse_content
from bot.settings import get_settings
from tests.fakes.twilio_api import FakeTwilioAPI


def test_definitions_put_every_field_in_variables() -> None:
    """Body, titles and ids are variables, each with a sample, so one template fits all."""
    three = definitions()["quick_reply"][3]
    body = three["types"]["twilio/quick-reply"]
    assert body["body"] == "{{1}}"
    assert body["actions"][2] == {"title": "{{6}}", "id": "{{7}}"}
    assert sorted(three["variables"], key=int) == [str(i) for i in range(1, 8)]
    ten = definitions()["list_picker"][10]["types"]["twilio/list-picker"]
    assert ten["button"] == "{{2}}" and ten["items"][9] == {"item": "{{21}}", "id": "{{22}}"}


def test_the_templates_are_created_through_the_content_api() -> None:
    """twilio's client posts JSON to content.twilio.com, rewritten to TWILIO_API_BASE_URL."""
    with FakeTwilioAPI(auth_token="content-token") as fake:
        settings = get_settings(
            twilio_account_sid=fake.account_sid,
            twilio_auth_token="content-token",
            twilio_api_base_url=fake.base_url,
        )
        block = asyncio.run(create_all(settings))
        created = list(fake.contents)
    assert len(created) == 3 + 9
    first = created[0]
    assert first["friendly_name"] == "citybot_quick_reply_1"
    assert first["types"] == {
        "twilio/quick-reply": {"body": "{{1}}", "actions": [{"title": "{{2}}", "id": "{{3}}"}]}
    }
    config = parse_content(json.loads(json.dumps(block)))
    assert sorted(config.quick_reply) == [1, 2, 3]
    assert sorted(config.list_picker) == list(range(2, 11))
    assert config.quick_reply[1] == first["sid"]
