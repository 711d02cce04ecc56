"""Quote-to-order latency through the real ccxt client and the local fake venues.

    python benchmarks/live_latency.py               # 30 s live session (Upbit + Binance fakes)
    python benchmarks/live_latency.py --seconds 60 --json

Runs scenarios/live_upbit_binance_btc.yaml in live mode against tests/fakevenues on
127.0.0.1 and prints, per venue, the time from the arrival of the book a decision used to
the order's request leaving (``quote_to_send``) and to the venue's answer
(``quote_to_ack``), median and p99 (ms), next to the loop's own figures (quote to decision,
decision to order, µs). Everything runs on this machine, the fakes included: the figures are
the framework's and ccxt's overhead plus loopback HTTP, not an exchange's. Nothing asserts
them.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fakevenues.server import FakeVenues  # noqa: E402

from arbframe.plugins import build_registry, get_plugin_manager  # noqa: E402
from arbframe.runner import Run  # noqa: E402
from arbframe.scenario import load_scenario  # noqa: E402

SCENARIO = ROOT / "scenarios" / "live_upbit_binance_btc.yaml"


def measure(seconds: int) -> dict:
    with FakeVenues() as fake, tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.yaml"
        # No guard cooldowns in the way: as many orders as the premium allows.
        path.write_text(f"extends: {SCENARIO}\nname: live_latency\nguards: []\n")
        env = {**fake.env(), "ARBFRAME_MODE": "live", "ARBFRAME_DURATION": f"{seconds}s"}
        pm = get_plugin_manager()
        registry = build_registry(pm)
        run = Run(load_scenario(path, registry, env=env), registry, pm, live=True)
        summary = run.execute()
    out = {"orders": summary["orders"]["submitted"], "loop": summary["loop"], "venues": {}}
    for name, stats in summary["venues"].items():
        out["venues"][name] = {k: v for k, v in stats.items() if k.startswith("quote_to")}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure(args.seconds)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['orders']} orders in {args.seconds} s")
    for venue, figures in result["venues"].items():
        print(f"  {venue:8} " + "  ".join(f"{k} {v}" for k, v in sorted(figures.items())))
    loop = result["loop"]
    for key in ("quote_to_decision_us", "decision_to_order_us"):
        print(f"  loop {key}: p50 {loop[key]['p50']} p99 {loop[key]['p99']}")


if __name__ == "__main__":
    main()
