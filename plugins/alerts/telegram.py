"""`telegram`: alerts as Telegram messages (python-telegram-bot), and operator commands.

Messages go through the alert engine's throttle (``alerting:``: dedupe, grouping, rate
limit), formatted by severity: an emoji and heading, the title, the time, the session, the
rule and the detail. The bot token and chat ids come only from the environment
(``token: ${TELEGRAM_BOT_TOKEN}``); the token appears in no output, log or error.

With ``commands: true``, a wall-clock session polls the bot's updates (getUpdates) and
answers ``/status``, ``/pnl``, ``/positions``, ``/pause SYMBOL``, ``/resume SYMBOL`` and
``/stop`` from the chats in ``allowed_chats`` (default: ``chat_ids``); a command from any
other chat, or an unknown one, is refused with a reply and logged on stderr. Updates sent
before the session started are skipped (yesterday's /stop does not end today's session).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

from arbframe.alerting import Message, MessageChannel
from arbframe.errors import ArbframeError, ConfigError
from arbframe.hookspecs import hookimpl
from arbframe.schema import DURATION, SECRET
from arbframe.secrets import reveal
from arbframe.units import parse_duration

SEVERITIES = ["P0", "P1", "P2", "P3"]
HEADINGS = {"P0": ("🔴", "CRITICAL"), "P1": ("🟠", "HIGH"), "P2": ("🟡", "MEDIUM"),
            "P3": ("🔵", "LOW")}  # fmt: skip


def format_message(message: Message) -> str:
    """The text of a message, as D76-2 lays it out."""
    emoji, heading = HEADINGS[message.severity]
    if message.kind == "suppressed":
        counts = ", ".join(f"{sev} x {n}" for sev, n in message.suppressed.items())
        lines = [f"⚠️ [{message.severity}] {message.title}", f"Time: {message.time}",
                 f"Session: {message.session}", f"Held back: {counts}"]  # fmt: skip
        return "\n".join(lines)
    lines = [f"{emoji} [{message.severity}] {heading}: {message.title}",
             f"Time: {message.time}", f"Session: {message.session}"]  # fmt: skip
    if message.kind == "alert":
        [alert] = message.alerts
        lines.append(f"Rule: {alert.rule}")
        if alert.detail:
            lines.append(f"Detail: {alert.detail}")
    else:
        for alert in message.alerts:
            mark = HEADINGS[alert.severity][0]
            detail = f": {alert.detail}" if alert.detail else ""
            lines.append(f"• {mark} [{alert.severity}] {alert.title} ({alert.rule}){detail}")
    return "\n".join(lines)


def format_reply(command: str, status: int, reply: dict[str, Any]) -> str:
    """An operator command's answer, as a chat message."""
    if status != 200:
        return f"❌ /{command}: {reply.get('error', 'refused')}"
    if command in ("pause", "resume"):
        paused = ", ".join(reply["paused"]) or "none"
        return f"✅ {command}d {reply['symbol']} (paused: {paused})"
    if command == "stop":
        return f"🛑 stopping session (open trades: {reply['open_trades']}, {reply['on_stop']})"
    if command == "help":
        return "Commands: " + " ".join(f"/{c}" for c in reply["commands"])
    lines = [f"📊 Session {reply['session']}"]
    if "pnl" in reply:
        pnl, trades = reply["pnl"], reply["trades"]
        lines.append(f"PnL: {pnl['net']} {pnl['currency']} over {trades['closed']} closed "
                     f"trades; {trades['open']} open")  # fmt: skip
    if "paused" in reply:
        lines.append(f"Paused: {', '.join(reply['paused']) or 'none'}")
    if "positions" in reply:
        if not reply["positions"]:
            lines.append("No open positions")
        for p in reply["positions"]:
            legs = ", ".join(f"{leg['venue']} {leg['position']}" for leg in p["legs"])
            lines.append(f"• {p['trade_id']} {p['state']}: {legs}")
    return "\n".join(lines)


def _chats(value: Any, key: str) -> list[int | str]:
    text = reveal(value) or ""
    chats: list[int | str] = []
    for part in (p.strip() for p in text.split(",")):
        if part.lstrip("-").isdigit():
            chats.append(int(part))
        elif part.startswith("@") and len(part) > 1:
            chats.append(part)
        elif part:
            raise ConfigError(f"{value}: not a chat id ({part!r}: a number or @channel)", (key,))
    if not chats:
        raise ConfigError(f"{value} holds no chat id (comma-separated numbers)", (key,))
    return chats


class _Redact(logging.Filter):
    """The token out of any record of the HTTP libraries (their URLs hold it)."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if self.secret in text:
            record.msg, record.args = text.replace(self.secret, "***"), None
        return True


class TelegramAlerts(MessageChannel):
    type_name = "telegram"
    interface_version = 2
    description = "Alerts as Telegram messages (throttled); operator commands from allowed chats."
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["token", "chat_ids"],
        "properties": {
            "token": {**SECRET, "description": "The bot's token: ${VARIABLE} only."},
            "chat_ids": {
                **SECRET,
                "description": "Chats to send to, comma-separated ids: ${VARIABLE} only.",
            },  # fmt: skip
            "min_severity": {"enum": SEVERITIES, "default": "P2"},
            "base_url": {
                "type": "string",
                "default": "https://api.telegram.org/bot",
                "description": "The Bot API's address (a self-hosted Bot API server).",
            },
            "commands": {
                "type": "boolean",
                "default": False,
                "description": "Answer operator commands (wall-clock sessions).",
            },
            "allowed_chats": {
                **SECRET,
                "description": "Chats whose commands are obeyed, "
                "comma-separated (default: chat_ids).",
            },  # fmt: skip
            "poll": {**DURATION, "default": "2s", "description": "getUpdates long-poll wait."},
        },
    }

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Any) -> None:
        super().__init__(config, name=name, ctx=ctx)
        self.token = reveal(config["token"]) or ""
        if not self.token:
            raise ConfigError(f"{config['token']} is empty", ("token",))
        self.secrets = [self.token]
        self.chats = _chats(config["chat_ids"], "chat_ids")
        self.allowed = set(
            _chats(
                config.get("allowed_chats", config["chat_ids"]),
                "allowed_chats" if "allowed_chats" in config else "chat_ids",
            )
        )
        self.poll = parse_duration(config.get("poll", "2s")) / 1e9
        self.bot: Any = None
        self.poller: asyncio.Task[None] | None = None
        self.refused_commands = 0

    async def open(self) -> None:
        from telegram import Bot
        from telegram.error import InvalidToken, TelegramError
        from telegram.request import HTTPXRequest

        redact = _Redact(self.token)
        for logger in ("httpx", "httpcore", "telegram"):
            logging.getLogger(logger).addFilter(redact)
        logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines print the URL
        self.bot = Bot(
            self.token,
            base_url=self.config.get("base_url", "https://api.telegram.org/bot"),
            request=HTTPXRequest(connection_pool_size=4),
            get_updates_request=HTTPXRequest(),
        )
        try:
            await self.bot.initialize()  # getMe: a refused token stops the run before it trades
        except InvalidToken:
            raise ArbframeError(
                f"{self.name} (telegram): the Bot API refused the token {self.config['token']}"
            ) from None
        except TelegramError as err:
            self.warn(f"the Bot API cannot be reached ({type(err).__name__}); messages will "
                      "be tried as they come")  # fmt: skip

    async def transmit(self, message: Message) -> None:
        text = format_message(message)
        for chat in self.chats:
            await self.bot.send_message(chat, text)

    async def aclose(self) -> None:
        if self.poller is not None:
            self.poller.cancel()
            await asyncio.gather(self.poller, return_exceptions=True)
        if self.bot is not None:
            await self.bot.shutdown()

    # ---- operator commands ---------------------------------------------------------------------

    def serve_commands(self, operator: Any) -> None:
        if not self.config.get("commands"):
            return
        if self.courier is None:
            self.start()
        assert self.courier is not None

        async def begin() -> None:
            self.poller = asyncio.get_running_loop().create_task(self._poll(operator))

        self.courier.call(begin(), self.send_timeout)

    def stop_commands(self) -> None:
        if self.poller is not None and self.courier is not None:
            self.courier.loop.call_soon_threadsafe(self.poller.cancel)

    async def _poll(self, operator: Any) -> None:
        from telegram.error import TelegramError

        offset = None
        try:  # what was sent before this session started is not for it
            old = await self.bot.get_updates(offset=-1, timeout=0)
            if old:
                offset = old[-1].update_id + 1
        except TelegramError as err:
            self.warn(f"getUpdates failed: {type(err).__name__}")
        while True:
            try:
                updates = await self.bot.get_updates(
                    offset=offset, timeout=self.poll, allowed_updates=["message"]
                )
            except TelegramError as err:
                self.warn(f"getUpdates failed: {type(err).__name__}: {err}")
                await asyncio.sleep(self.poll)
                continue
            for update in updates:
                offset = update.update_id + 1
                await self._command(update, operator)

    async def _command(self, update: Any, operator: Any) -> None:
        message, chat = update.effective_message, update.effective_chat
        text = (message.text or "").strip() if message is not None else ""
        if chat is None or not text.startswith("/"):
            return
        word, *args = text.split()
        command = word[1:].split("@")[0].lower()
        if chat.id not in self.allowed:
            self.refused_commands += 1
            print(f"telegram: refused /{command} from chat {chat.id}: not an allowed chat",
                  file=sys.stderr)  # fmt: skip
            reply = f"⛔ /{command} refused: this chat may not control the session"
        else:
            status, answer = await asyncio.wrap_future(operator.submit(command, args))
            if status != 200:
                print(f"telegram: /{command} from chat {chat.id} refused: "
                      f"{answer.get('error')}", file=sys.stderr)  # fmt: skip
            else:
                print(f"telegram: /{command} {' '.join(args)} from chat {chat.id} applied".strip(),
                      file=sys.stderr)  # fmt: skip
            reply = format_reply(command, status, answer)
        try:
            await self.bot.send_message(chat.id, reply)
        except Exception as err:  # the command was applied; only its answer is lost
            self.warn(f"reply not sent: {type(err).__name__}")


@hookimpl
def arbframe_register_alerts(register: Any) -> None:
    register(TelegramAlerts)
