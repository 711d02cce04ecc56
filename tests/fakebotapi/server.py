"""``FakeBotAPI``: the Bot API methods python-telegram-bot calls, on an aiohttp server on
127.0.0.1, in a thread of its own with its own loop. Real clients talk to it through their
``base_url`` (``fake.base_url``, e.g. ``http://127.0.0.1:PORT/bot``).

    with FakeBotAPI(token) as api:
        Bot(token, base_url=api.base_url)        # getMe, sendMessage, getUpdates work
        api.command(chat_id=42, text="/status")  # an update the next getUpdates returns
        api.messages                             # every sendMessage: chat_id, text, at

A request whose token is not ``token`` answers 401 Unauthorized (as Telegram does) and is
counted in ``refused``; unknown methods answer 404.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from aiohttp import web

BOT_ID = 7000001


class FakeBotAPI:
    def __init__(self, token: str, host: str = "127.0.0.1") -> None:
        self.token = token
        self.host = host
        self.messages: list[dict[str, Any]] = []
        """Every message sent: ``chat_id`` (int), ``text``, ``at`` (monotonic seconds)."""
        self.calls: list[str] = []
        """Every method called with the right token, in order."""
        self.refused = 0
        self.updates: list[dict[str, Any]] = []
        self._next_update = 1
        self._next_message = 1
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="fakebotapi", daemon=True)
        self._arrived: asyncio.Event | None = None
        self.port = 0

    # ---- the server's life --------------------------------------------------------------------

    def __enter__(self) -> FakeBotAPI:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake Bot API did not start")
        return self

    def __exit__(self, *exc: Any) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self._ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        self._arrived = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/bot"

    # ---- what a test does ----------------------------------------------------------------------

    def command(self, chat_id: int, text: str, user_id: int | None = None) -> None:
        """A message from ``chat_id`` that the bot's next getUpdates returns."""

        def add() -> None:
            entities = []
            if text.startswith("/"):
                entities = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
            uid = user_id or chat_id
            self.updates.append({
                "update_id": self._next_update,
                "message": {
                    "message_id": 10_000 + self._next_update,
                    "date": int(time.time()),
                    "chat": {"id": chat_id, "type": "private", "first_name": "op"},
                    "from": {"id": uid, "is_bot": False, "first_name": "op"},
                    "text": text,
                    "entities": entities,
                },
            })  # fmt: skip
            self._next_update += 1
            assert self._arrived is not None
            self._arrived.set()

        self.loop.call_soon_threadsafe(add)

    def to(self, chat_id: int) -> list[str]:
        """The texts sent to ``chat_id``."""
        return [m["text"] for m in list(self.messages) if m["chat_id"] == chat_id]

    # ---- the Bot API ---------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            self.refused += 1
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        method = request.match_info["method"]
        params = await _params(request)
        self.calls.append(method)
        handler = getattr(self, f"_{method}", None)
        if handler is None:
            return web.json_response(
                {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
            )
        return web.json_response({"ok": True, "result": await handler(params)})

    async def _getMe(self, params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        return {"id": BOT_ID, "is_bot": True, "first_name": "arbframe", "username": "arb_bot",
                "can_join_groups": False, "can_read_all_group_messages": False,
                "supports_inline_queries": False}  # fmt: skip

    async def _sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        chat_id = int(params["chat_id"])
        text = str(params["text"])
        self.messages.append({"chat_id": chat_id, "text": text, "at": time.monotonic()})
        self._next_message += 1
        return {
            "message_id": self._next_message,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "arbframe"},
            "text": text,
        }

    async def _getUpdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:  # noqa: N802
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        if offset < 0:  # the last -offset updates
            return self.updates[offset:]
        pending = [u for u in self.updates if u["update_id"] >= offset]
        if not pending and timeout > 0:  # long polling: wait for one, or the timeout
            assert self._arrived is not None
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), min(timeout, 5))
            except TimeoutError:
                return []
            pending = [u for u in self.updates if u["update_id"] >= offset]
        return pending

    async def _deleteWebhook(self, params: dict[str, Any]) -> bool:  # noqa: N802
        return True


async def _params(request: web.Request) -> dict[str, Any]:
    """python-telegram-bot posts form fields (JSON-encoded values) or JSON."""
    if request.content_type == "application/json":
        data = await request.json()
        return data if isinstance(data, dict) else {}
    form = await request.post()
    params: dict[str, Any] = dict(request.query)
    params.update({k: v for k, v in form.items() if isinstance(v, str)})
    return params
