"""``python -m bench [name ...]``: run every benchmark (or the named ones) and print results."""

from __future__ import annotations

import argparse
import importlib
import sys

BENCHMARKS = ("bars", "stream", "ledger", "service")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names", nargs="*", metavar="name", help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})"
    )
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}: choose from {', '.join(BENCHMARKS)}")
    failed = 0
    for name in args.names or BENCHMARKS:
        module = importlib.import_module(f"bench.{name}")
        failed += module.main([]) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
