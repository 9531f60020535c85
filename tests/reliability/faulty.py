"""The fake platforms with the fault modes they lack, and a count of every fault they served.

`FaultyTelegram` adds slow answers (a call to a chat answered only after a delay, and then
carried out: the client may have given up, as with a real timeout) on top of the fake's
scripted errors (429 with retry_after, 5xx, 403, 400, raw bodies such as malformed JSON).
`FaultyTwilio` adds garbled answers (any status with a body that is not Twilio's JSON, the
message not accepted) on top of its scripted error codes, Retry-After and delays.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from typing import Any

from aiohttp import web
from starlette.requests import Request
from starlette.responses import Response

from tests.fakes.telegram_api import SEND_METHODS, FakeTelegram, Scripted
from tests.fakes.twilio_api import FakeTwilioAPI
from tests.fakes.twilio_api import Scripted as TwilioScripted


class FaultyTelegram(FakeTelegram):
    """The fake Bot API, with slow answers per chat and a tally of the faults served."""

    def __init__(self, **kwargs: Any) -> None:
        """Start with no slow chats and no faults served."""
        super().__init__(**kwargs)
        self.faults: Counter[str] = Counter()
        self._slow: dict[int, list[float]] = {}  # chat → [seconds, times left (-1: always)]
        self._slow_lock = threading.Lock()

    def __enter__(self) -> FaultyTelegram:
        """Start on entry."""
        self.start()
        return self

    def slow(self, chat_id: int, seconds: float, *, times: int = 1) -> None:
        """Answer the next `times` sends to a chat (-1: all) only after `seconds`."""
        with self._slow_lock:
            self._slow[chat_id] = [seconds, times]

    def _delay(self, chat_id: int | None) -> float:
        """The delay scripted for this chat's next send, if any."""
        with self._slow_lock:
            entry = self._slow.get(chat_id or 0)
            if entry is None or entry[1] == 0:
                return 0.0
            entry[1] -= 1 if entry[1] > 0 else 0
            return entry[0]

    async def _endpoint(self, request: Request) -> Response:
        """Delay a slow chat's sends, then answer as the fake does."""
        method = request.path_params["method"]
        if method in SEND_METHODS:
            params = await self._read(request)  # the body is cached for the fake's own read
            chat = params.get("chat_id")
            delay = self._delay(int(chat) if chat and str(chat).lstrip("-").isdigit() else None)
            if delay:
                self.faults["slow"] += 1
                await asyncio.sleep(delay)
        return await super()._endpoint(request)

    def _scripted(self, method: str, chat_id: int | None) -> Scripted | None:
        """Take a scripted error and count it by status (and raw body)."""
        found = super()._scripted(method, chat_id)
        if found is not None:
            self.faults[f"{found.status}{' raw' if found.body is not None else ''}"] += 1
        return found


class FaultyTwilio(FakeTwilioAPI):
    """The fake Twilio, with garbled answers per recipient and a tally of the faults served."""

    def __init__(self, **kwargs: Any) -> None:
        """Start with nothing garbled and no faults served."""
        super().__init__(**kwargs)
        self.faults: Counter[str] = Counter()
        self._garbled: dict[str, list[tuple[int, str]]] = {}
        self._garble_lock = threading.Lock()

    def __enter__(self) -> FaultyTwilio:
        """Start on entry."""
        self.start()
        return self

    def garble(
        self, to: str, *, status: int = 201, body: str = "{not json", times: int = 1
    ) -> None:
        """Answer the next `times` messages to `to` with this status and a non-JSON body."""
        with self._garble_lock:
            self._garbled.setdefault(to.removeprefix("whatsapp:"), []).extend(
                [(status, body)] * times
            )

    async def _create_message(self, request: web.Request) -> web.Response:
        """Garble the answer when scripted (nothing is accepted), else answer as the fake does."""
        form = await request.post()  # cached: the fake's own handler reads it again
        to = str(form.get("To", "")).removeprefix("whatsapp:")
        with self._garble_lock:
            queue = self._garbled.get(to) or []
            garbled = queue.pop(0) if queue else None
        if garbled is not None:
            self.faults[f"{garbled[0]} garbled"] += 1
            kind = "text/html" if garbled[1].startswith("<") else "application/json"
            return web.Response(status=garbled[0], text=garbled[1], content_type=kind)
        return await super()._create_message(request)

    def _next_script(self, to: str) -> TwilioScripted | None:
        """Take a scripted answer and count it (by error code, or as a delay)."""
        found = super()._next_script(to)
        if found is not None:
            self.faults[str(found.code) if found.code is not None else "slow"] += 1
        return found


class NoGazetteer:
    """Stands where the gazetteer goes when no inbound message is routed (none is built)."""

    def __getattr__(self, name: str) -> Any:
        """Fail loudly if something asks for it after all."""
        raise AssertionError(f"the gazetteer was used ({name})")
