"""A fake Twilio API on loopback, and a loopback server for the bot's ASGI app.

`FakeTwilioAPI` is a real HTTP server (aiohttp, 127.0.0.1, a random port, its own thread and
event loop) that twilio's own client talks to through `TWILIO_API_BASE_URL`. It implements
`POST /2010-04-01/Accounts/{Sid}/Messages.json` (Basic auth, Twilio-shaped JSON and errors,
`{"code", "message", "more_info", "status"}`), records every message, returns scripted errors
per recipient (21610, 63016, 20429/429, 500 …) or answers late, enforces a messages-per-second
limit on arrival (GCRA, 5 % of a second of tolerance; 429 + 20429 beyond, counted), can stall
like a congested link (requests pile up, then arrive together), implements `POST /v1/Content`,
and plays Twilio's side of the webhooks: signed inbound messages and signed status callbacks,
signed (with twilio's RequestValidator) for the public URL and delivered to the bot's loopback
address, as a reverse proxy would. It never sends anywhere but 127.0.0.1.

The pieces live in their own modules, re-exported here: Twilio's codes, forms and the
records (`twilio_protocol`), the fake itself (`twilio_server`), the loopback plumbing and
`AppServer` (`loopback`), and `WhatsAppBot` (`twilio_harness`).
"""

from tests.fakes.loopback import LOOPBACK, AppServer, T, wait_until
from tests.fakes.twilio_harness import WhatsAppBot
from tests.fakes.twilio_protocol import (
    ERRORS,
    SANDBOX_FROM,
    Scripted,
    SentMessage,
    inbound_form,
    new_sid,
    sign,
)
from tests.fakes.twilio_server import FakeTwilioAPI

__all__ = [
    "ERRORS",
    "LOOPBACK",
    "SANDBOX_FROM",
    "T",
    "AppServer",
    "FakeTwilioAPI",
    "Scripted",
    "SentMessage",
    "WhatsAppBot",
    "inbound_form",
    "new_sid",
    "sign",
    "wait_until",
]
