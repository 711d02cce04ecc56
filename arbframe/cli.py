"""The `arbframe` command: run, validate, plugins, schema, report, ..."""

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

from arbframe import __version__, metrics, runfiles
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
    start = run.add_mutually_exclusive_group()
    start.add_argument(
        "--resume",
        nargs="?",
        const="",
        metavar="SESSION",
        help="continue the scenario's session (or SESSION) from its latest valid snapshot; "
        "refuses when there is none",
    )
    start.add_argument(
        "--reset",
        action="store_true",
        help="start the session clean, forgetting its snapshots",
    )
    run.add_argument(
        "--live",
        action="store_true",
        help="confirm real orders: a scenario with mode: live refuses to start without it",
    )
    run.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    run.add_argument(
        "--metrics",
        type=Path,
        metavar="FILE",
        help="write the run's Prometheus metrics to FILE (text exposition format) at the end",
    )
    run.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress line on stderr (default: when stderr is a terminal)",
    )
    run.add_argument(
        "--report",
        action="store_true",
        help="also write the run's HTML report to OUT/report.html (needs --out)",
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
    _add_state_commands(sub)
    _add_control_commands(sub)
    _add_report_commands(sub)
    _add_tuning_commands(sub)
    _add_data_commands(sub)
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
    if args.report and args.out is None:
        raise ArbframeError("arbframe run: --report needs --out DIR (it writes DIR/report.html)")
    pm, registry = _registry()
    loaded = load_scenario(args.scenario, registry)
    if args.out is not None:
        problem = output_dir_problem(args.out)
        if problem:
            raise ArbframeError(f"--out {args.out}: {problem}")
    run = Run(
        loaded,
        registry,
        pm,
        seed=args.seed,
        resume=args.resume is not None,
        reset=args.reset,
        session=args.resume or None,
        live=args.live,
    )
    if args.live and run.info.mode != "live":
        print(f"warning: --live has no effect: the scenario's mode is {run.info.mode}",
              file=sys.stderr)  # fmt: skip
    for venue in run.venues.values():  # real venues: what the start-up check found
        for line in getattr(venue, "describe", list)():
            print(line, file=sys.stderr)
    metrics.check_path(args.metrics)
    exporter = metrics.serve(run)  # the scenario's `metrics:`: /metrics while the run lasts
    try:
        return _execute(args, run, exporter)
    finally:
        if exporter is not None:
            exporter.close()


def _execute(args: argparse.Namespace, run: Run, exporter: metrics.Exporter | None) -> int:
    show = sys.stderr.isatty() if args.progress is None else args.progress
    progress = Progress(run) if show else None
    started = time.perf_counter()
    # Ctrl-C or a kill ends the run between two instants, keeping the record whole; a second
    # Ctrl-C interrupts at once.
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in handlers:
        signal.signal(sig, _stopper(run))
    run_file = None
    try:
        # Only once the handlers are in: the SIGTERM of an `arbframe stop` stops gracefully.
        run_file = _claim_run_file(run, args.scenario)
        summary = run.execute(progress=progress, out_dir=args.out)
    finally:
        if run_file is not None:
            runfiles.release(run_file)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    wall = time.perf_counter() - started
    if exporter is not None:
        exporter.finished()
    if args.metrics is not None:
        metrics.write(run, args.metrics, exporter)
    if progress is not None:
        progress.clear()
    if args.json:
        print(dumps(summary))
    else:
        print(format_summary(summary, wall_s=wall, out_dir=args.out))
    if exporter is not None and not run.interrupted:
        exporter.linger()  # `metrics.linger`: a scraper still gets the final figures
    if args.report:  # whatever the verdict: a failed or interrupted run is worth a look
        from arbframe.html_report import write_run_report

        print(f"report: {write_run_report(args.out)}", file=sys.stderr)
    if run.interrupted:
        print(_kept(run, summary, args.out), file=sys.stderr)
        return 130
    return 0 if summary["passed"] else 1


def _claim_run_file(run: Run, scenario: Path) -> runfiles.RunFile | None:
    """The run file `arbframe stop` finds this run by; None when there can be none."""
    try:
        return runfiles.claim(run.info.session, scenario)
    except runfiles.SessionRunning as err:
        if run.sessions is not None:  # both processes would write the session's snapshots
            raise
        why = f"session {err.holder.session} is already running (pid {err.holder.pid})"
    except OSError as err:
        why = f"cannot write its run file: {one_line(err)}"
    print(f"warning: {why}; `arbframe stop` cannot reach this run", file=sys.stderr)
    return None


def _seed(text: str) -> int:
    seed = int(text)
    if seed < 0:
        raise argparse.ArgumentTypeError(f"a seed is >= 0, not {seed}")
    return seed


def _stopper(run: Run) -> Any:
    signals = 0

    def stop(signum: int, frame: Any) -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            run.stop.request()  # wakes a wall-clock run sleeping until its next instant
        elif signals == 2:
            raise KeyboardInterrupt
        # Any later one: the record is being written and connections closed; let them be.

    return stop


def _kept(run: Run, summary: dict[str, Any], out: Path | None) -> str:
    counts = f"{len(run.ledger.fills):,} fills, {len(run.execution.closed):,} closed trades"
    if run.execution.jobs:  # positions at the venues the session still holds
        counts += f", {len(run.execution.jobs):,} trades still open"
    at = summary["time"]["last"] or "the start"
    resume = ""
    if run.sessions is not None and run.sessions.taken:
        resume = f"; continue with --resume (session {run.info.session})"
    if out is None:
        return f"interrupted at {at}: {counts} (nothing written: no --out){resume}"
    return (
        f"interrupted at {at}: kept {counts} and every settled order in {out} "
        f"(summary.json marked complete: false){resume}"
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


# ---- state stores: sessions, reset, keyspace ------------------------------------------------


def _add_state_commands(sub: Any) -> None:
    where = (
        "The stores are the scenario's state: blocks; without a scenario (or blocks), "
        "$ARBFRAME_DATABASE_URL adds postgres and $ARBFRAME_REDIS_URL adds redis, and without "
        "a durable one of those the embedded sqlite store ($ARBFRAME_STATE_DIR/state.db, else "
        ".arbframe/state.db) is used."
    )
    sessions = sub.add_parser(
        "sessions",
        help="list sessions and their last valid snapshot in the state stores",
        description="List the sessions each state store holds, with the newest snapshot "
        "whose payload matches its checksum (what a resume would use) and the seqs of "
        f"damaged ones. {where} Exit 0, or 1 when a store cannot be reached.",
    )
    sessions.add_argument("scenario", type=Path, nargs="?", help="scenario YAML file")
    sessions.add_argument("--json", action="store_true", help="machine-readable listing")
    sessions.set_defaults(func=cmd_sessions)

    reset = sub.add_parser(
        "reset",
        help="forget a session's state in the state stores",
        description=f"Delete every snapshot (and hot key) of SESSION. {where} Asks first on "
        "a terminal; without one, refuses unless --yes (exit 2). Exit 0 when done, 1 when "
        "declined or a store cannot be reached.",
    )
    reset.add_argument("session", help="the session id (session:, else the scenario's name)")
    reset.add_argument("scenario", type=Path, nargs="?", help="scenario YAML file")
    reset.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    reset.set_defaults(func=cmd_reset)

    stop = sub.add_parser(
        "stop",
        help="stop a running `arbframe run` session gracefully",
        description="Send SIGTERM to the `arbframe run` process of SESSION (without SESSION: "
        "the only one running), found by its run file in $ARBFRAME_STATE_DIR/sessions (else "
        ".arbframe/sessions): it stops between two instants, takes a final snapshot, writes "
        "its outputs and exits 130; resume it with `arbframe run SCENARIO --resume`. A second "
        "stop interrupts it at once. Exit 0 when it stopped, 1 when it still runs after "
        "--timeout, 2 when no such session runs (or, without SESSION, several do).",
    )
    stop.add_argument("session", nargs="?", help="the session id (default: the only one running)")
    stop.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for it to end (default 30)"
    )
    stop.add_argument("--json", action="store_true", help="machine-readable result")
    stop.description += (
        " A wall-clock session is asked through its control endpoint (which closes open "
        "trades first with control.on_stop: close); SIGTERM when it serves none."
    )
    stop.set_defaults(func=cmd_stop)

    keyspace = sub.add_parser(
        "keyspace",
        help="check that Redis keys follow arbframe's layout and TTL policy",
        description="Scan arbframe:* in Redis and report keys that do not follow "
        "arbframe:{env}:{session}:{domain}:{symbol}:{field} (part count, unknown domain) or "
        "lack the TTL the policy requires. Exit 0 when compliant, 1 when not, 2 when Redis "
        "cannot be reached.",
    )
    keyspace.add_argument("--url", help="Redis URL (default: $ARBFRAME_REDIS_URL, else local)")
    keyspace.add_argument("--env", help="check only this env's keys (arbframe:ENV:*)")
    keyspace.add_argument("--json", action="store_true", help="machine-readable report")
    keyspace.set_defaults(func=cmd_keyspace)


def _state_stores(scenario: Path | None) -> tuple[list[Any], dict[str, str]]:
    """The stores for an operations command, opened; and {store name: why unreachable}."""
    from arbframe.stores import DEFAULT_SQLITE, open_stores

    _, registry = _registry()
    loaded = load_scenario(scenario, registry) if scenario is not None else None
    down: dict[str, str] = {}
    stores = open_stores(
        loaded, registry, DEFAULT_SQLITE, lambda store, err: down.setdefault(store.name, str(err))
    )
    return stores, down


def cmd_sessions(args: argparse.Namespace) -> int:
    from arbframe.components import StoreUnavailable
    from arbframe.stores import check_session, describe

    stores, down = _state_stores(args.scenario)
    listing = []
    try:
        for store in stores:
            entry: dict[str, Any] = {"store": describe(store), "type": store.type_name}
            entry["durable"], entry["error"], entry["sessions"] = store.durable, None, []
            try:
                for held in store.sessions():
                    check = check_session(store, held["session"])
                    entry["sessions"].append({**check.as_dict(), "last_ts": held["last_ts"]})
            except StoreUnavailable as err:
                entry["error"] = str(err)
            entry["error"] = entry["error"] or None
            listing.append(entry)
    finally:
        for store in stores:
            store.close()
    if args.json:
        print(json.dumps({"stores": listing}, indent=2))
    else:
        print(_sessions_text(listing))
    return 1 if any(e["error"] for e in listing) else 0


def _sessions_text(listing: list[dict[str, Any]]) -> str:
    lines = []
    for entry in listing:
        lines.append(entry["store"] + ("" if entry["durable"] else " [not durable]"))
        if entry["error"]:
            lines.append(f"  unreachable: {entry['error']}")
        elif not entry["sessions"]:
            lines.append("  no sessions")
        else:
            rows = [("SESSION", "SNAPSHOTS", "LAST", "VALID", "VALID TAKEN AT (UTC)", "CORRUPT")]
            rows += [_session_row(s) for s in entry["sessions"]]
            widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
            lines += [
                "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                for row in rows
            ]
    return "\n".join(lines)


def _session_row(s: dict[str, Any]) -> tuple[str, ...]:
    taken = s["valid_taken_at"]
    when = datetime.fromtimestamp(taken, UTC).strftime("%Y-%m-%d %H:%M:%S") if taken else "-"
    valid = "none" if s["valid_seq"] is None else str(s["valid_seq"])
    corrupt = ",".join(map(str, s["corrupt"])) or "-"
    return (s["session"], str(s["snapshots"]), str(s["last_seq"]), valid, when, corrupt)


def cmd_reset(args: argparse.Namespace) -> int:
    from arbframe.components import StoreUnavailable
    from arbframe.stores import describe

    if not args.yes and not sys.stdin.isatty():  # before connecting to anything
        print(
            f"arbframe reset: refusing to reset session {args.session} without --yes "
            "(stdin is not a terminal, so there is no one to confirm)",
            file=sys.stderr,
        )
        return 2
    stores, _ = _state_stores(args.scenario)
    failed = False
    try:
        names = ", ".join(describe(store) for store in stores)
        if not args.yes:
            answer = input(f"Delete every snapshot of session {args.session} in {names}? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("nothing reset")
                return 1
        for store in stores:
            try:
                gone = store.reset(args.session)
                print(f"{describe(store)}: {gone} snapshot{'' if gone == 1 else 's'} removed")
            except StoreUnavailable as err:
                failed = True
                print(f"{describe(store)}: not reset: {err}", file=sys.stderr)
    finally:
        for store in stores:
            store.close()
    return 1 if failed else 0


def cmd_stop(args: argparse.Namespace) -> int:
    running = runfiles.running()
    listing = ", ".join(f"{r.session} (pid {r.pid}, {r.scenario})" for r in running) or "none"
    if args.session is not None:
        target = next((r for r in running if r.session == args.session), None)
        if target is None:
            raise ArbframeError(
                f"arbframe stop: session {args.session} is not running (running: {listing})"
            )
    elif len(running) == 1:
        target = running[0]
    else:
        many = "no session is running" if not running else "several sessions are running"
        raise ArbframeError(f"arbframe stop: {many}; name one (running: {listing})")
    started = time.monotonic()
    try:
        if not _stop_through_control(target):  # else SIGTERM, as before there was control
            os.kill(target.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass  # it ended meanwhile: stopped all the same
    except PermissionError:
        print(f"arbframe stop: not allowed to signal pid {target.pid}", file=sys.stderr)
        return 1
    stopped = target.wait(max(0.0, args.timeout))
    waited = round(time.monotonic() - started, 3)
    if args.json:
        print(json.dumps({**target.as_dict(), "stopped": stopped, "waited_s": waited}, indent=2))
    elif stopped:
        print(f"stopped session {target.session} (pid {target.pid}) in {waited:.1f} s")
    else:
        print(
            f"session {target.session} (pid {target.pid}) still runs after {waited:.1f} s; "
            f"`arbframe stop {target.session}` again interrupts it at once",
            file=sys.stderr,
        )
    return 0 if stopped else 1


# ---- operator control: status, pause, resume (arbframe.control) ------------------------------


def _add_control_commands(sub: Any) -> None:
    how = (
        "Through the session's control endpoint on 127.0.0.1 (a wall-clock run serves one; "
        "its address and token are in $ARBFRAME_STATE_DIR/sessions/<session>.control, else "
        ".arbframe/sessions). Exit 0 when done, 1 when the session refused, 2 when no such "
        "session runs or it serves no endpoint."
    )
    status = sub.add_parser(
        "status",
        help="a running session's positions, PnL and paused symbols",
        description=f"Show a running session: open positions, PnL, paused symbols. {how}",
    )
    status.add_argument("session", nargs="?", help="the session id (default: the only one running)")
    status.add_argument("--json", action="store_true", help="machine-readable status")
    status.set_defaults(func=cmd_control, command="status")
    for name, what in (("pause", "refuse new entries on"), ("resume", "allow entries again on")):
        parser = sub.add_parser(
            name,
            help=f"{what} a symbol in a running session",
            description=f"{what.capitalize()} SYMBOL from the next quote on (open trades, "
            f"exits and unwinds carry on). {how}",
        )
        parser.add_argument("symbol", help="the symbol, e.g. BTC")
        parser.add_argument("--session", help="the session id (default: the only one running)")
        parser.add_argument("--json", action="store_true", help="machine-readable reply")
        parser.set_defaults(func=cmd_control, command=name)


def cmd_control(args: argparse.Namespace) -> int:
    from arbframe import control

    symbol = getattr(args, "symbol", None)
    session = args.session
    try:
        target, status, reply = control.request(session, args.command, [symbol] if symbol else None)
    except OSError as err:
        raise ArbframeError(f"arbframe {args.command}: the session did not answer: {err}") from None
    if args.json:
        print(json.dumps(reply, indent=2))
    elif status != 200:
        print(f"arbframe {args.command}: {reply.get('error', f'HTTP {status}')}", file=sys.stderr)
    elif args.command == "status":
        print(_status_text(reply))
    else:
        paused = ", ".join(reply["paused"]) or "none"
        print(f"{args.command}d {reply['symbol']} in session {target.session} (paused: {paused})")
    return 0 if status == 200 else 1


def _status_text(s: dict[str, Any]) -> str:
    lines = [
        f"session {s['session']} ({s['scenario']}, {s['mode']}, pid {s['pid']}) at {s['now']}",
        f"pnl {s['pnl']['net']} {s['pnl']['currency']}: {s['trades']['closed']} closed, "
        f"{s['trades']['open']} open; paused: {', '.join(s['paused']) or 'none'}",
    ]
    for p in s["positions"]:
        legs = ", ".join(f"{leg['venue']} {leg['position']}" for leg in p["legs"])
        lines.append(f"  {p['trade_id']}  {p['state']}  {legs}")
    return "\n".join(lines)


def _stop_through_control(target: runfiles.RunFile) -> bool:
    """Ask the session's control endpoint to stop; False when it serves none or fails."""
    from arbframe import control

    if control.read_control(target) is None:
        return False
    try:
        _, status, _ = control.request(target.session, "stop")
    except (OSError, ArbframeError):
        return False
    return status == 200


def cmd_keyspace(args: argparse.Namespace) -> int:
    import redis

    from arbframe.keyspace import check_keyspace, connect
    from arbframe.stores import REDIS_URL_ENV

    url = args.url or os.environ.get(REDIS_URL_ENV) or "redis://127.0.0.1:6379/0"
    client = connect(url)
    try:
        scanned, problems = check_keyspace(client, args.env)
    except (redis.ConnectionError, redis.TimeoutError) as err:
        raise ArbframeError(f"arbframe keyspace: cannot reach Redis: {err}") from None
    finally:
        client.close()
    if args.json:
        rows = [{"key": p.key, "problem": p.problem} for p in problems]
        print(json.dumps({"keys": scanned, "problems": rows}, indent=2))
    else:
        for p in problems:
            print(f"{p.key}: {p.problem}")
        print(f"{scanned} keys checked, {len(problems)} not compliant")
    return 1 if problems else 0


# ---- reports: one HTML file for a run directory or a study -----------------------------------


def _add_report_commands(sub: Any) -> None:
    report = sub.add_parser(
        "report",
        help="write a self-contained HTML report of a run directory or an Optuna study",
        description="Write one HTML file that opens offline (plotly.js inline, no CDN). For a "
        "run directory (`arbframe run SCENARIO --out DIR`): realised equity and drawdown, PnL "
        "by symbol and route, exit reasons, entry and exit spreads, guard triggers and faults "
        "over time, alerts, the trades. For a study (`arbframe tune`): best trial against the "
        "baseline, optimisation history, parameter importance, sensitivity, walk-forward, "
        "stress, the trials. The argument is a study's name when no file or directory of that "
        "name exists and it holds no /. Prints the path. Exit 0, or 2 when it is neither a run "
        "directory nor a study.",
    )
    report.add_argument("target", metavar="RUN_DIR|STUDY", help="a run directory or a study name")
    report.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="FILE",
        help="where to write (default: RUN_DIR/report.html, or ./STUDY-report.html)",
    )
    report.add_argument(
        "--storage",
        metavar="URL",
        help="the studies' storage (default: $ARBFRAME_DATABASE_URL, else "
        "sqlite:///$ARBFRAME_STATE_DIR/studies.db, the state dir defaulting to .arbframe)",
    )
    report.add_argument("--json", action="store_true", help='print {"path": ...} as JSON')
    report.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from arbframe.html_report import write_run_report

    target = Path(args.target)
    if target.exists() or os.sep in args.target:  # a path: a run directory, or a clear error
        path = write_run_report(target, args.output)
    else:
        from arbframe.studies import study_storage
        from arbframe.study_report import write_study_report

        path = write_study_report(args.target, study_storage(args.storage), args.output)
    print(json.dumps({"path": str(path)}) if args.json else path)
    return 0


# ---- parameter tuning (arbframe.tuning) ------------------------------------------------------


def _add_tuning_commands(sub: Any) -> None:
    tune = sub.add_parser(
        "tune",
        help="search a scenario's parameters (its tuning: block) with Optuna",
        description="Run the trials of the scenario's tuning: block in worker processes, each "
        "a full run of the scenario with the trial's parameters. The study lives in "
        "$ARBFRAME_DATABASE_URL (PostgreSQL) when set, else in $ARBFRAME_STATE_DIR/studies.db "
        "(else .arbframe/studies.db); the same command on other machines joins it. Exit 0 "
        "when tuning.expect holds, 1 when it fails, 2 on invalid input, 3 on an internal error.",
    )
    tune.add_argument("scenario", type=Path, nargs="?", help="scenario YAML file with tuning:")
    tune.add_argument(
        "--trials", type=_positive, help="trials in the study (default: tuning.trials)"
    )
    tune.add_argument(
        "--workers", type=_positive, help="worker processes (default: tuning.workers)"
    )
    tune.add_argument("--storage", help="study storage URL (default: see above)")
    tune.add_argument(
        "--study", help="study name (default: tuning.study, else the scenario's name)"
    )
    tune.add_argument(
        "--top",
        type=_positive,
        metavar="N",
        help="rank the stored trials of the study, run nothing",
    )
    tune.add_argument("--json", action="store_true", help="machine-readable result on stdout")
    tune.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress line on stderr (default: when stderr is a terminal)",
    )
    tune.add_argument(
        "--walk-forward",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run tuning.walk_forward when the scenario has one (default: yes)",
    )
    tune.add_argument(
        "--stress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="re-run trials through tuning.stress scenarios when it has them (default: yes)",
    )
    tune.set_defaults(func=cmd_tune)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"at least 1, not {value}")
    return value


def cmd_tune(args: argparse.Namespace) -> int:
    from arbframe import studies
    from arbframe.tuning import load_tuning
    from arbframe.tuning_summary import Options, summary_text, tune

    storage = studies.study_storage(args.storage)
    if args.top is not None and args.scenario is None and args.study:
        return _print_top(storage, args.study, args.top, args.json)
    if args.scenario is None:
        raise ArbframeError("arbframe tune: name a scenario (or --top N with --study NAME)")
    tuning = load_tuning(args.scenario)
    name = args.study or tuning.study
    if args.top is not None:
        return _print_top(storage, name, args.top, args.json)
    options = Options(
        trials=args.trials or tuning.trials,
        workers=args.workers or tuning.workers,
        storage=storage,
        study=name,
        walk_forward=args.walk_forward,
        stress=args.stress,
        progress=sys.stderr.isatty() if args.progress is None else args.progress,
    )
    if tuning.grid and options.trials > len(tuning.grid):
        raise ArbframeError(
            f"--trials {options.trials}: the grid has {len(tuning.grid)} combinations"
        )
    summary = tune(tuning, options)
    if args.json:
        print(dumps(summary))
    else:
        top = studies.top_rows(_study(storage, name), 5)
        print(summary_text(summary, top))
    return 0 if summary["passed"] else 1


def _study(storage: str, name: str) -> Any:
    import optuna

    from arbframe import studies

    try:
        return optuna.load_study(study_name=name, storage=studies.open_storage(storage))
    except KeyError:
        raise ArbframeError(f"no study named {name} in {studies.shown(storage)}") from None


def _print_top(storage: str, name: str, n: int, as_json: bool) -> int:
    from arbframe import studies

    rows = studies.top_rows(_study(storage, name), n)
    if as_json:
        print(dumps(rows))
    elif rows:
        print(studies.top_text(rows))
    else:
        print(f"study {name} has no completed trial yet", file=sys.stderr)
    return 0


# ---- market data: record, data import, data info (arbframe.marketdata, arbframe.recording) ----


def _add_data_commands(sub: Any) -> None:
    layout = (
        "The dataset is Parquet in the layout DIR/venue=V/symbol=S/date=YYYY-MM-DD/part-*.parquet "
        "(docs/data.md); a replay feed reads it when a venue's path is the directory."
    )
    record = sub.add_parser(
        "record",
        help="record a scenario's order books to a Parquet dataset (no trading)",
        description="Run the scenario's venues and feeds without trading and write every book "
        "they publish to DIR. Real venues (venue_books) are recorded for --duration of wall "
        "time; simulated feeds for --duration of their own time, as fast as they go. Ctrl-C or "
        f"SIGTERM ends the recording and keeps what it has. {layout} Exit 0, 2 on bad input, "
        "130 when interrupted.",
    )
    record.add_argument("scenario", type=Path, help="scenario YAML file")
    record.add_argument("--out", type=Path, required=True, metavar="DIR", help="dataset directory")
    record.add_argument(
        "--duration", help="how long to record, e.g. 30s, 2h (default: the scenario's duration)"
    )
    record.add_argument(
        "--levels", type=int, default=10, help="levels per side kept (default 10; deeper dropped)"
    )
    record.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress line on stderr (default: when stderr is a terminal)",
    )
    record.add_argument("--json", action="store_true", help="print the result as JSON")
    record.set_defaults(func=cmd_record)

    data = sub.add_parser(
        "data",
        help="market data: import CSV to Parquet, describe a dataset",
        description=f"Market data files. {layout}",
    )
    data_sub = data.add_subparsers(title="data commands", metavar="COMMAND", dest="data_command")
    data_sub.required = True
    imp = data_sub.add_parser(
        "import",
        help="convert recorded CSV books to the Parquet dataset",
        description="Read CSV books with the replay feed's own reader (same column mapping, "
        "same checks, same file:line errors) and write them to DIR. Files of one venue and "
        "symbol must follow each other in time, after (or before) what DIR holds of that "
        "market: an overlapping span is refused. Exit 0, 2 on a bad file or flag.",
    )
    imp.add_argument("files", type=Path, nargs="+", metavar="FILE", help="CSV files (.csv, .gz)")
    imp.add_argument("--venue", required=True, help="the venue the books are from")
    imp.add_argument("--symbol", required=True, help="the symbol, e.g. LINK")
    imp.add_argument("--out", type=Path, required=True, metavar="DIR", help="dataset directory")
    imp.add_argument(
        "--columns",
        nargs="+",
        default=[],
        metavar="KEY=TEMPLATE",
        help="column names, as the replay feed's columns: (timestamp, bid_price, bid_size, "
        "ask_price, ask_size; {i} is the level), e.g. bid_price=bidp{i}",
    )
    imp.add_argument(
        "--timestamp-unit",
        choices=["iso", "s", "ms", "us", "ns"],
        default="iso",
        help="ISO 8601 text (default) or epoch numbers in this unit",
    )
    imp.add_argument("--levels", type=int, help="levels per side (default: all in the file)")
    imp.add_argument("--json", action="store_true", help="print the result as JSON")
    imp.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress line on stderr (default: when stderr is a terminal)",
    )
    imp.set_defaults(func=cmd_data_import)
    info = data_sub.add_parser(
        "info",
        help="what a dataset holds: rows, venues, symbols, time span",
        description="Rows, files and time span per venue and symbol of a dataset.",
    )
    info.add_argument("dir", type=Path, help="dataset directory")
    info.add_argument("--json", action="store_true", help="machine-readable listing")
    info.set_defaults(func=cmd_data_info)


def _dataset_writer(out: Path, levels: int, **options: Any) -> Any:
    from arbframe.marketdata import DatasetWriter

    problem = output_dir_problem(out)
    if problem:
        raise ArbframeError(f"--out {out}: {problem}")
    if levels < 1:
        raise ArbframeError(f"--levels: at least 1, not {levels}")
    return DatasetWriter(out, levels=levels, **options)


def _record_report(args: argparse.Namespace, stats: Any, what: str) -> None:
    result = stats.as_dict()
    if args.json:
        print(json.dumps(result, indent=2))
        return
    span = f" from {result['first']} to {result['last']}" if result["first"] else ""
    print(
        f"{what} {result['books']:,} books{span} into {len(result['files'])} file(s) in {args.out}"
    )
    for market, n in result["by_market"].items():
        print(f"  {market}: {n:,}")
    if result["fx_updates_not_recorded"]:
        print(f"  {result['fx_updates_not_recorded']:,} FX updates not recorded (rates, not books)")
    if result["crossed_books_not_recorded"]:
        print(f"  {result['crossed_books_not_recorded']:,} crossed books not recorded")


def _progress_for(args: argparse.Namespace) -> Any:
    from arbframe.recording import progress_line

    show = sys.stderr.isatty() if args.progress is None else args.progress
    return progress_line(sys.stderr) if show else None


def cmd_record(args: argparse.Namespace) -> int:
    from arbframe.recording import record

    pm, registry = _registry()
    run = Run(load_scenario(args.scenario, registry), registry, pm)
    text = args.duration or run.scenario["duration"]
    try:
        duration = parse_duration(text)
    except ValueError as err:
        raise ArbframeError(f"--duration: {err}") from None
    if duration <= 0:
        raise ArbframeError(f"--duration: must be positive, not {text!r}")
    # Parts closed every 10 minutes of data: a recording killed outright loses at most that.
    writer = _dataset_writer(args.out, args.levels, part_span_ns=600 * 10**9)
    closers = [v.aclose for v in run.venues.values() if hasattr(v, "aclose")]
    stats = record(run.feeds, writer, duration, progress=_progress_for(args), closers=closers)
    if args.progress is not False and (args.progress or sys.stderr.isatty()):
        sys.stderr.write("\n")
    _record_report(args, stats, "interrupted: kept" if stats.interrupted else "recorded")
    return 130 if stats.interrupted else 0


def cmd_data_import(args: argparse.Namespace) -> int:
    import jsonschema

    from arbframe.components import FeedContext, RunInfo
    from arbframe.errors import ConfigError
    from arbframe.recording import import_csv

    _, registry = _registry()
    replay = registry.get("feed", "replay").cls
    columns = {}
    for item in args.columns:
        key, sep, template = item.partition("=")
        if not sep or not template:
            raise ArbframeError(f"--columns: {item!r} is not KEY=TEMPLATE")
        keys = list(replay.config_schema["properties"]["columns"]["properties"])
        if key not in keys:
            raise ArbframeError(f"--columns: unknown key {key!r} (keys: {', '.join(keys)})")
        columns[key] = template
    ctx = FeedContext(
        info=RunInfo("import", 0, "backtest", "simulated", "USDT", "import"),
        resolve_path=Path,
        error=lambda path, message: ArbframeError(f"{'.'.join(map(str, path))}: {message}"),
        fx_rate=lambda currency: 1.0,
        venue_quote=lambda venue: "USDT",
    )
    feeds = []
    for path in args.files:
        if not path.is_file():
            raise ArbframeError(f"{path}: no such file")
        config: dict[str, Any] = {"symbol": args.symbol, "venues": {args.venue: str(path)}}
        config["timestamp_unit"] = args.timestamp_unit
        if columns:
            config["columns"] = columns
        if args.levels is not None:
            config["levels"] = args.levels
        try:
            jsonschema.validate(config, replay.config_schema)
            feeds.append(replay(config, name=str(path), ctx=ctx))
        except jsonschema.ValidationError as err:
            where = ".".join(map(str, err.absolute_path)) or "options"
            raise ArbframeError(f"{path}: {where}: {err.message}") from None
        except ConfigError as err:
            raise ArbframeError(f"{path}: {err.message}") from None
    levels = max(feed.csv_levels() for feed in feeds)  # the dataset's columns
    writer = _dataset_writer(args.out, levels, all_or_nothing=True)
    stats = import_csv(feeds, writer, progress=_progress_for(args))
    _record_report(args, stats, "imported")
    return 0


def cmd_data_info(args: argparse.Namespace) -> int:
    from arbframe.recording import describe

    info = describe(args.dir)
    if not info["markets"]:  # as replay does: a directory without parts is not a dataset
        raise ArbframeError(
            f"{args.dir}: no market data (no venue=*/symbol=*/date=*/part-*.parquet in it)"
        )
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{args.dir}: {info['rows']:,} books")
    for m in info["markets"]:
        print(f"  {m['venue']}/{m['symbol']}: {m['rows']:,} books in {m['files']} file(s), "
              f"{m['first']} to {m['last']}")  # fmt: skip
        if m["overlaps"]:
            print(f"    OVERLAPPING: {len(m['overlaps'])} part(s) start before the previous "
                  f"one ends; replay refuses this market. First: {m['overlaps'][0]}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
