"""The `arbframe` command: run, validate, plugins, schema."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from arbframe import __version__
from arbframe.errors import ArbframeError
from arbframe.outputs import dumps
from arbframe.paths import output_dir_problem
from arbframe.plugins import Registry, build_registry, get_plugin_manager, one_line
from arbframe.report import format_summary
from arbframe.runner import Run
from arbframe.scenario import load_scenario
from arbframe.schema import composed_schema, summary_schema
from arbframe.units import parse_duration


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except ArbframeError as err:
        print(str(err), file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`: not an error worth a traceback
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (lives until exit)
        return 1
    except Exception as err:  # a bug (ours or a plugin's): one line, the traceback in a file
        print(
            f"arbframe: internal error: {one_line(err)} ({_save_traceback(err, argv)})",
            file=sys.stderr,
        )
        return 3


def _save_traceback(err: Exception, argv: list[str] | None) -> str:
    """Write the traceback to a new crash file; say where (or why not)."""
    directory = Path(os.environ.get("ARBFRAME_CRASH_DIR") or tempfile.gettempdir())
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    path = directory / f"arbframe-crash-{stamp}-{os.getpid()}.txt"
    command = sys.argv[1:] if argv is None else argv
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with path.open("x", encoding="utf-8") as out:
            out.write(f"arbframe {__version__}, Python {sys.version.split()[0]}\n")
            out.write(f"command: arbframe {shlex.join(command)}\n\n")
            out.write("".join(traceback.format_exception(err)))
    except OSError as write_error:
        return f"traceback not saved: {one_line(write_error)}"
    return f"full traceback in {path}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="arbframe",
        description="Declarative cross-exchange arbitrage: run, validate and inspect scenarios.",
    )
    parser.add_argument("--version", action="version", version=f"arbframe {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")

    run = sub.add_parser(
        "run",
        help="run a scenario and check its expectations",
        description="Run a scenario. Exit 0 when every expectation holds, 1 when one "
        "fails, 2 on invalid input, 3 on an internal error, 130 when interrupted (Ctrl-C "
        "or SIGTERM: the partial record is kept).",
    )
    run.add_argument("scenario", type=Path, help="scenario YAML file")
    run.add_argument(
        "--out",
        type=Path,
        help="write fills/trades/orders.jsonl here as the run goes, and summary.json",
    )
    run.add_argument("--seed", type=_seed, help="override the scenario's seed (>= 0)")
    run.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    run.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress line on stderr (default: when stderr is a terminal)",
    )
    run.set_defaults(func=cmd_run)

    validate = sub.add_parser(
        "validate",
        help="check scenario files without running them",
        description="Validate scenario files. Exit 0 if all are valid, 2 "
        "otherwise; each error names file:line:column and the key.",
    )
    validate.add_argument("scenarios", type=Path, nargs="+", help="scenario YAML files")
    validate.add_argument("--json", action="store_true", help="machine-readable result")
    validate.set_defaults(func=cmd_validate)

    plugins = sub.add_parser(
        "plugins",
        help="list plugin kinds, types and their packages",
        description="List every registered component type.",
    )
    plugins.add_argument("--json", action="store_true", help="machine-readable listing")
    plugins.set_defaults(func=cmd_plugins)

    schema = sub.add_parser(
        "schema",
        help="print the composed JSON Schema",
        description="Print the scenario schema composed with every "
        "installed plugin's config schema (for editors), or the summary's.",
    )
    schema.add_argument("which", nargs="?", choices=["scenario", "summary"], default="scenario")
    schema.set_defaults(func=cmd_schema)
    return parser


def _registry(warn: bool = True) -> Any:
    """The plugin manager and registry; a warning on stderr for each broken plugin."""
    pm = get_plugin_manager()
    registry = build_registry(pm)
    for broken in registry.broken if warn else ():
        print(
            f"warning: {broken.describe()}; its component types are unavailable",
            file=sys.stderr,
        )
    return pm, registry


def cmd_run(args: argparse.Namespace) -> int:
    pm, registry = _registry()
    loaded = load_scenario(args.scenario, registry)
    if args.out is not None:
        problem = output_dir_problem(args.out)
        if problem:
            raise ArbframeError(f"--out {args.out}: {problem}")
    run = Run(loaded, registry, pm, seed=args.seed)
    show = sys.stderr.isatty() if args.progress is None else args.progress
    progress = Progress(run) if show else None
    started = time.perf_counter()
    # Ctrl-C or a kill ends the run between two instants, keeping the record whole; a second
    # Ctrl-C interrupts at once.
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in handlers:
        signal.signal(sig, _stopper(run))
    try:
        summary = run.execute(progress=progress, out_dir=args.out)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    wall = time.perf_counter() - started
    if progress is not None:
        progress.clear()
    if args.json:
        print(dumps(summary))
    else:
        print(format_summary(summary, wall_s=wall, out_dir=args.out))
    if run.interrupted:
        print(_kept(run, summary, args.out), file=sys.stderr)
        return 130
    return 0 if summary["passed"] else 1


def _seed(text: str) -> int:
    seed = int(text)
    if seed < 0:
        raise argparse.ArgumentTypeError(f"a seed is >= 0, not {seed}")
    return seed


def _stopper(run: Run) -> Any:
    def stop(signum: int, frame: Any) -> None:
        if run.stop.requested:
            raise KeyboardInterrupt
        run.stop.request()  # wakes a wall-clock run sleeping until its next instant

    return stop


def _kept(run: Run, summary: dict[str, Any], out: Path | None) -> str:
    counts = f"{len(run.ledger.fills):,} fills, {len(run.execution.closed):,} closed trades"
    at = summary["time"]["last"] or "the start"
    if out is None:
        return f"interrupted at {at}: {counts} (nothing written: no --out)"
    return (
        f"interrupted at {at}: kept {counts} and every settled order in {out} "
        "(summary.json marked complete: false)"
    )


class Progress:
    """A progress line on stderr, redrawn at most every half second of wall time."""

    EVERY_S = 0.5

    def __init__(self, run: Run) -> None:
        self.run = run
        self.total = parse_duration(run.scenario["duration"])
        self.last = time.perf_counter()
        self.width = 0

    def __call__(self, elapsed_ns: int, quotes: int) -> None:
        now = time.perf_counter()
        if now - self.last < self.EVERY_S:
            return
        self.last = now
        closed = self.run.execution.closed
        pnl = sum((t.net_pnl for t in closed), start=0)
        pct = min(100.0, 100.0 * elapsed_ns / self.total) if self.total else 0.0
        text = (
            f"{self.run.name}: {pct:5.1f}%  quotes {quotes:,}  trades {len(closed):,}  "
            f"pnl {float(pnl):,.2f} {self.run.info.report_currency}"
        )
        sys.stderr.write("\r" + text.ljust(self.width))
        sys.stderr.flush()
        self.width = len(text)

    def clear(self) -> None:
        if self.width:
            sys.stderr.write("\r" + " " * self.width + "\r")
            sys.stderr.flush()


def cmd_validate(args: argparse.Namespace) -> int:
    pm, registry = _registry()
    results = []
    for path in args.scenarios:
        try:
            # Wiring too (venues, capital, FX, feed files), as `run` would, without running.
            Run(load_scenario(path, registry), registry, pm)
            results.append({"file": str(path), "valid": True})
        except ArbframeError as err:
            results.append({"file": str(path), "valid": False, "error": str(err)})
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            print(
                f"{r['file']}: ok" if r["valid"] else r["error"],
                file=sys.stdout if r["valid"] else sys.stderr,
            )
    return 0 if all(r["valid"] for r in results) else 2


def cmd_plugins(args: argparse.Namespace) -> int:
    _, registry = _registry(warn=False)  # broken plugins are part of the listing
    rows = _plugin_rows(registry)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no component types registered", file=sys.stderr)
        return 0
    types = [r for r in rows if not r["broken"]]
    widths = [max((len(r[k]) for r in types), default=0) for k in ("kind", "type", "distribution")]
    for r in types:
        print(
            f"{r['kind']:<{widths[0]}}  {r['type']:<{widths[1]}}  "
            f"{r['distribution']:<{widths[2]}}  {r['description']}"
        )
    for b in registry.broken:
        print(f"broken: {b.describe()}")
    return 0


def _plugin_rows(registry: Registry) -> list[dict[str, Any]]:
    """One row per registered type, then one per broken plugin (`broken`: its reason)."""
    rows: list[dict[str, Any]] = [
        {
            "kind": i.kind,
            "type": i.type_name,
            "plugin": i.plugin,
            "distribution": i.distribution,
            "module": i.cls.__module__,
            "class": f"{i.cls.__module__}.{i.cls.__qualname__}",
            "description": i.cls.description,
            "broken": None,
        }
        for i in registry.all()
    ]
    rows += [
        {
            "kind": None,
            "type": None,
            "plugin": b.plugin,
            "distribution": b.distribution,
            "module": b.module,
            "class": None,
            "description": None,
            "broken": b.reason,
        }
        for b in registry.broken
    ]
    return rows


def cmd_schema(args: argparse.Namespace) -> int:
    if args.which == "summary":
        print(json.dumps(summary_schema(), indent=2))
    else:
        _, registry = _registry()
        print(json.dumps(composed_schema(registry), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
