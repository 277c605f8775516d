"""``python -m alpaca_nb.sim`` / ``alpaca-nb sim``: run and manage the local broker."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def build_parser(prog: str = "alpaca-nb sim") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="The local Alpaca-compatible broker.")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="serve in the foreground (the default)")
    for p in (parser, serve):
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=0, help="0 picks a free port")
        p.add_argument("--seed", type=int, default=42, help="seed of the synthetic market")
        p.add_argument("--key", help="API key to accept (default: ALPACA_API_KEY or local-key)")
        p.add_argument("--secret", help="API secret to accept (default: ALPACA_API_SECRET or local-secret)")
        p.add_argument("--state-dir", type=Path, help="where the account is kept (default: ~/.alpaca_nb/sim)")
        p.add_argument("--market-hours", choices=("continuous", "nyse"), default="continuous")
        p.add_argument("--rate-limit", type=int, default=200, help="requests per minute per key; 0 = none")
    for name, text in (
        ("start", "start detached in the background (or show the running one)"),
        ("stop", "stop the background broker"),
        ("status", "show the running broker"),
        ("reset", "start the local account afresh"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--state-dir", type=Path)
    return parser


def main(argv: list[str] | None = None, prog: str = "alpaca-nb sim") -> int:
    from . import process
    from .home import read_registry

    args = build_parser(prog).parse_args(argv)
    command = args.command or "serve"
    if command == "serve":
        if (args.key is None) != (args.secret is None):
            print("give both --key and --secret, or neither", file=sys.stderr)
            return 2
        try:
            process.serve_forever(
                host=args.host,
                port=args.port,
                seed=args.seed,
                key=args.key,
                secret=args.secret,
                state_dir=args.state_dir,
                market_hours=args.market_hours,
                rate_limit=args.rate_limit or None,
            )
        except KeyboardInterrupt:
            pass
        return 0
    if command == "start":
        info = process.start_detached(args.state_dir)
        print(f"local broker running at {info['url']} (pid {info['pid']})")
    elif command == "stop":
        print("stopped" if process.stop(args.state_dir) else "no local broker was running")
    elif command == "status":
        found = read_registry(args.state_dir)
        print(f"running at {found['url']} (pid {found['pid']}, seed {found['seed']})" if found else "not running")
        return 0 if found else 1
    elif command == "reset":
        print(process.reset(args.state_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main(prog="python -m alpaca_nb.sim"))
