"""Open a page in headless Chromium through the DevTools protocol and say what happened:
uncaught exceptions, console and log errors, every URL it requested, what each chart drew,
and a screenshot of each chart.

Debian's `chromium` package; without it the tests skip, unless CI (``CI`` or
``ARBFRAME_REQUIRE_SERVICES=1``) requires it, where they fail.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from PIL import Image

WAIT_S = 60.0  # a bound on waiting for the browser, never an assertion

CHARTS_JS = """
Array.from(document.querySelectorAll('[data-chart]')).map(d => {
  const plot = d.querySelector('.js-plotly-plot');
  // The plotting areas (one drag rectangle per subplot): legends and axes left out.
  const boxes = Array.from(d.querySelectorAll('.nsewdrag')).map(e => e.getBoundingClientRect());
  const left = Math.min(...boxes.map(b => b.left)), top = Math.min(...boxes.map(b => b.top));
  const right = Math.max(...boxes.map(b => b.right));
  const bottom = Math.max(...boxes.map(b => b.bottom));
  return {name: d.dataset.chart, traces: plot && plot._fullData ? plot._fullData.length : -1,
          svgs: d.querySelectorAll('.main-svg').length, subplots: boxes.length,
          x: left + window.scrollX, y: top + window.scrollY, w: right - left, h: bottom - top};
})
"""


def chromium() -> str:
    """The path of Chromium; skip without it, unless CI requires it."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = "chromium not found (Debian: apt-get install chromium)"
        if os.environ.get("CI") or os.environ.get("ARBFRAME_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{message}; CI must run the browser tests")
        pytest.skip(message)
    return found


@dataclass
class Visit:
    errors: list[str] = field(default_factory=list)
    """Uncaught exceptions, console.error/assert calls and error log entries."""
    requests: list[str] = field(default_factory=list)
    charts: dict[str, dict[str, Any]] = field(default_factory=dict)
    """By ``data-chart`` name: traces (plotly's _fullData), svgs, subplots, the plotting
    area's box."""
    shots: dict[str, Image.Image] = field(default_factory=dict)
    """A screenshot of each chart's plotting area."""


def visit(url: str) -> Visit:
    return asyncio.run(_visit(chromium(), url))


async def _visit(binary: str, url: str) -> Visit:
    with tempfile.TemporaryDirectory() as profile:
        process = await asyncio.create_subprocess_exec(
            binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--remote-debugging-port=0", f"--user-data-dir={profile}",
            "--host-resolver-rules=MAP * ~NOTFOUND",  # offline, whatever the machine has
            "--window-size=1280,900", "about:blank",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            port = await asyncio.wait_for(_devtools_port(process), WAIT_S)
            drain = asyncio.create_task(_drain(process))
            try:
                return await asyncio.wait_for(_inspect(port, url), WAIT_S)
            finally:
                drain.cancel()
        finally:
            process.terminate()
            await process.wait()


async def _devtools_port(process: asyncio.subprocess.Process) -> int:
    assert process.stderr is not None
    seen = []
    while line := await process.stderr.readline():
        seen.append(line.decode(errors="replace"))
        found = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", seen[-1])
        if found:
            return int(found.group(1))
    raise AssertionError("chromium ended before it listened:\n" + "".join(seen[-20:]))


async def _drain(process: asyncio.subprocess.Process) -> None:
    assert process.stderr is not None
    while await process.stderr.readline():  # a full pipe would block the browser
        pass


async def _inspect(port: int, url: str) -> Visit:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/json/list") as answer:
            targets = await answer.json()
        page = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        async with http.ws_connect(page, max_msg_size=0) as ws:
            cdp = Devtools(ws)
            for domain in ("Runtime", "Log", "Page", "Network"):
                await cdp.call(f"{domain}.enable")
            mark = len(cdp.events)
            navigated = await cdp.call("Page.navigate", url=url)
            assert "errorText" not in navigated, navigated
            await cdp.event("Page.loadEventFired", after=mark)
            assert await cdp.evaluate("location.href") == url
            # Two animation frames: every newPlot has drawn.
            await cdp.evaluate(
                "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
            )
            visit = Visit()
            for chart in await cdp.evaluate(CHARTS_JS):
                visit.charts[chart["name"]] = chart
                if chart["subplots"]:
                    visit.shots[chart["name"]] = await cdp.screenshot(chart)
            visit.errors, visit.requests = cdp.errors(), cdp.requests()
            cdp.reader.cancel()
            return visit


class Devtools:
    """A DevTools protocol session on one page: calls, and every event it sent."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws, self.sent = ws, 0
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            data = json.loads(message.data)
            if "id" in data:
                self.pending.pop(data["id"]).set_result(data)
            else:
                self.events.append(data)
                self.arrived.set()

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.sent += 1
        reply = self.pending[self.sent] = asyncio.get_running_loop().create_future()
        await self.ws.send_json({"id": self.sent, "method": method, "params": params})
        data = await reply
        if "error" in data:
            raise AssertionError(f"{method}: {data['error']}")
        return data["result"]

    async def event(self, method: str, after: int = 0) -> dict[str, Any]:
        """The first ``method`` event from the ``after``-th on, once it has come."""
        while True:
            found = [e for e in self.events[after:] if e["method"] == method]
            if found:
                return found[0]
            self.arrived.clear()
            await self.arrived.wait()

    async def evaluate(self, expression: str) -> Any:
        result = await self.call(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def screenshot(self, box: dict[str, Any]) -> Image.Image:
        clip = {"x": box["x"], "y": box["y"], "width": box["w"], "height": box["h"], "scale": 1}
        shot = await self.call(
            "Page.captureScreenshot", format="png", clip=clip, captureBeyondViewport=True
        )
        return Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("RGB")

    def errors(self) -> list[str]:
        found = []
        for e in self.events:
            method, params = e["method"], e.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                found.append(f"exception: {details.get('exception', {}).get('description')}")
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                found.append(f"console.{params['type']}: {params['args']}")
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.append(f"log: {params['entry']['text']}")
        return found

    def requests(self) -> list[str]:
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e["method"] == "Network.requestWillBeSent"
        ]


def colour_pixels(image: Image.Image, colour: str, tolerance: int = 16) -> int:
    """How many pixels are within ``tolerance`` of ``colour`` (#rrggbb) on every channel."""
    want = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return sum(
        n
        for n, pixel in image.getcolors(image.width * image.height) or ()
        if all(abs(a - b) <= tolerance for a, b in zip(pixel, want, strict=True))
    )


def vivid_pixels(image: Image.Image) -> int:
    """How many pixels are neither white, black nor grey: what a chart drew in colour."""
    colours = image.getcolors(image.width * image.height) or ()
    return sum(n for n, (r, g, b) in colours if max(r, g, b) - min(r, g, b) > 60)
