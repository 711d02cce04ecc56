"""`webhook`: each alert message POSTed as JSON to a URL (aiohttp), through the alert
engine's throttle. The URL often holds a credential (Slack, Discord): it comes only from the
environment (``url: ${ALERT_WEBHOOK_URL}``), as does an optional bearer ``token``, and
neither appears in any output. The body is ``Message.as_dict()``: ``kind``
(alert/group/suppressed), ``severity``, ``title``, ``session``, ``ts``, ``time``,
``alerts`` (``ts``, ``severity``, ``rule``, ``title``, ``detail`` each) and ``suppressed``.
A non-2xx answer counts as a failed message (``summary.alerting.channels``)."""

from __future__ import annotations

from typing import Any

from arbframe.alerting import Message, MessageChannel
from arbframe.errors import ConfigError
from arbframe.hookspecs import hookimpl
from arbframe.schema import DURATION, SECRET
from arbframe.secrets import reveal
from arbframe.units import parse_duration


class WebhookAlerts(MessageChannel):
    type_name = "webhook"
    interface_version = 2
    description = "Alert messages POSTed as JSON to a URL (throttled)."
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["url"],
        "properties": {
            "url": {**SECRET, "description": "Where to POST: ${VARIABLE} only."},
            "token": {**SECRET, "description": "Sent as `Authorization: Bearer <token>`."},
            "min_severity": {"enum": ["P0", "P1", "P2", "P3"], "default": "P2"},
            "timeout": {**DURATION, "default": "5s", "description": "Per request."},
        },
    }

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Any) -> None:
        super().__init__(config, name=name, ctx=ctx)
        self.url = reveal(config["url"]) or ""
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError(f"{config['url']} is not an http(s) URL", ("url",))
        self.token = reveal(config.get("token"))
        self.secrets = [s for s in (self.url, self.token) if s]
        self.timeout = parse_duration(config.get("timeout", "5s")) / 1e9
        self.session: Any = None

    async def open(self) -> None:
        import aiohttp

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self.session = aiohttp.ClientSession(
            headers=headers, timeout=aiohttp.ClientTimeout(total=self.timeout)
        )

    async def transmit(self, message: Message) -> None:
        async with self.session.post(self.url, json=message.as_dict()) as answer:
            if not 200 <= answer.status < 300:
                raise RuntimeError(f"the endpoint answered HTTP {answer.status}")

    async def aclose(self) -> None:
        if self.session is not None:
            await self.session.close()


@hookimpl
def arbframe_register_alerts(register: Any) -> None:
    register(WebhookAlerts)
