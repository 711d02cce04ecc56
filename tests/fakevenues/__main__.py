"""Serve the fake venues, or run a command against them.

python tests/fakevenues serve [--port N] [--seed S]   # prints KEY=VALUE lines, serves until killed
python tests/fakevenues run [--seed S] -- CMD ARG...  # CMD with those variables; its exit code
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading

if __package__ in (None, ""):  # run as a path: import the package from its parent folder
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from fakevenues.server import FakeVenues
else:
    from .server import FakeVenues


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fakevenues", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve until killed, printing the environment")
    serve.add_argument("--port", type=int, default=0)
    run = sub.add_parser("run", help="run CMD with the environment; exit with its code")
    run.add_argument("cmd", nargs=argparse.REMAINDER)
    for p in (serve, run):
        p.add_argument("--seed", type=int, default=1)
        p.add_argument("--interval", type=float, default=0.1, help="book updates, seconds")
    args = parser.parse_args(argv)
    options = {"seed": args.seed, "interval": args.interval}
    if args.command == "serve":
        with FakeVenues(port=args.port, **options) as venues:
            for key, value in venues.env().items():
                print(f"{key}={value}")
            sys.stdout.flush()
            done = threading.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: done.set())
            while not done.wait(1):
                pass
        return 0
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        parser.error("run needs a command after --")
    with FakeVenues(**options) as venues:
        env = {**os.environ, **venues.env()}
        proc = subprocess.Popen(cmd, env=env)
        signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            return proc.wait()


if __name__ == "__main__":
    sys.exit(main())
