"""The Bot API methods the fake Telegram implements, one handler each."""

from __future__ import annotations

import time
from typing import Any

from tests.fakes.telegram_protocol import BotMessage
from tests.fakes.telegram_state import TelegramState


class TelegramMethods(TelegramState):
    """The handlers of the Bot API methods: `_m_<method>(params)` → (status, result)."""

    def _send(self, method: str, params: dict[str, Any], text: str) -> tuple[int, Any]:
        """Store a sent message and return it."""
        chat_id = int(params["chat_id"])
        markup = params.get("reply_markup")
        if markup is not None:
            for row in markup.get("inline_keyboard", []):
                for button in row:
                    data = button.get("callback_data", "")
                    if not 1 <= len(data.encode("utf-8")) <= 64:
                        return 400, "Bad Request: BUTTON_DATA_INVALID"
        if not text and method == "sendMessage":
            return 400, "Bad Request: message text is empty"
        if len(text) > (4096 if method == "sendMessage" else 1024):
            return 400, "Bad Request: message is too long"
        extra: dict[str, Any] = {}
        if method == "sendDocument":
            upload = params.get("document") or {}
            extra["document"] = {
                "file_id": f"doc{len(self.messages)}",
                "file_unique_id": f"udoc{len(self.messages)}",
                "file_name": upload.get("filename", "file"),
                "file_size": upload.get("size", 0),
            }
        if method == "sendPhoto":
            upload = params.get("photo") or {}
            extra["photo"] = [
                {
                    "file_id": f"ph{len(self.messages)}",
                    "file_unique_id": f"uph{len(self.messages)}",
                    "width": 640,
                    "height": 480,
                    "file_size": upload.get("size", 0),
                }
            ]
        message = BotMessage(
            message_id=self._next_message_id(chat_id),
            chat_id=chat_id,
            method=method,
            text=text,
            reply_markup=markup,
            at=time.monotonic(),
            date=int(self.clock()),
            extra=extra,
        )
        self.messages.append(message)
        return 200, self._message_json(message)

    def _m_getMe(self, _params: dict[str, Any]) -> tuple[int, Any]:
        """The bot itself."""
        return 200, {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "City partners",
            "username": self.username,
            "can_join_groups": False,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def _m_setWebhook(self, params: dict[str, Any]) -> tuple[int, Any]:
        """Register the webhook URL and secret."""
        secret = params.get("secret_token")
        if secret is not None and not (
            1 <= len(secret) <= 256 and all(c.isalnum() or c in "_-" for c in secret)
        ):
            return 400, "Bad Request: secret token contains unallowed characters"
        self.webhook_url = str(params.get("url", ""))
        self.webhook_secret = secret
        self.webhook_allowed = params.get("allowed_updates")
        if params.get("drop_pending_updates"):
            self._pending.clear()
        return 200, True

    def _m_deleteWebhook(self, params: dict[str, Any]) -> tuple[int, Any]:
        """Forget the webhook."""
        self.webhook_url, self.webhook_secret = "", None
        if params.get("drop_pending_updates"):
            self._pending.clear()
        return 200, True

    def _m_getWebhookInfo(self, _params: dict[str, Any]) -> tuple[int, Any]:
        """What is registered."""
        return 200, {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }

    def _m_sendMessage(self, params: dict[str, Any]) -> tuple[int, Any]:
        """A text message."""
        return self._send("sendMessage", params, str(params.get("text", "")))

    def _m_sendDocument(self, params: dict[str, Any]) -> tuple[int, Any]:
        """A document."""
        return self._send("sendDocument", params, str(params.get("caption", "")))

    def _m_sendPhoto(self, params: dict[str, Any]) -> tuple[int, Any]:
        """A photo."""
        return self._send("sendPhoto", params, str(params.get("caption", "")))

    def _m_answerCallbackQuery(self, params: dict[str, Any]) -> tuple[int, Any]:
        """Stop the button's spinner; a query is answered once."""
        query_id = str(params.get("callback_query_id"))
        if self.queries.get(query_id, True):
            return (
                400,
                "Bad Request: query is too old and response timeout expired"
                " or query ID is invalid",
            )
        self.queries[query_id] = True
        return 200, True

    def _m_editMessageReplyMarkup(self, params: dict[str, Any]) -> tuple[int, Any]:
        """Replace (or, without reply_markup, remove) a message's inline keyboard."""
        chat_id, message_id = params.get("chat_id"), params.get("message_id")
        found = [m for m in self.messages if m.chat_id == chat_id and m.message_id == message_id]
        if not found:
            return 400, "Bad Request: message to edit not found"
        message = found[0]
        markup = params.get("reply_markup") or None
        if markup is not None and not markup.get("inline_keyboard"):
            markup = None
        if markup == message.reply_markup:
            return 400, (
                "Bad Request: message is not modified: specified new message content and reply"
                " markup are exactly the same as a current content and reply markup of the message"
            )
        message.reply_markup = markup
        return 200, self._message_json(message)

    def _m_setMyCommands(self, params: dict[str, Any]) -> tuple[int, Any]:
        """Register the command menu for a language (None: everyone else)."""
        commands = params.get("commands") or []
        for command in commands:
            name, description = command.get("command", ""), command.get("description", "")
            valid = 1 <= len(name) <= 32 and all(
                c.islower() or c.isdigit() or c == "_" for c in name
            )
            if not valid or not 1 <= len(description) <= 256:
                return 400, "Bad Request: BOT_COMMAND_INVALID"
        self.commands[params.get("language_code") or None] = commands
        return 200, True

    def _m_getMyCommands(self, params: dict[str, Any]) -> tuple[int, Any]:
        """The command menu of a language."""
        return 200, self.commands.get(params.get("language_code") or None, [])
