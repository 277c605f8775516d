"""Render the reliability suite's figures (the JSON ``RELIABILITY_REPORT`` asked for) into
RELIABILITY.md, between its ``<!-- figures:begin -->`` and ``<!-- figures:end -->`` markers.

    python tests/reliability/render_figures.py build/reliability.json RELIABILITY.md

``make reliability`` runs the suite with the report on, then this. A figure no test recorded is
shown as "not recorded", never as 0: a missing test must not read as a clean result.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

BEGIN, END = "<!-- figures:begin -->", "<!-- figures:end -->"

# (figure name in the JSON, what the table calls it)
ROWS = [
    ("orders", "Orders placed under faults (faulted placements, the 1,000-order run, SIGKILLed kernels)"),
    ("requests", "REST requests sent by the faulted-placement tests"),
    ("requests_faulted", "... of which faulted by the broker"),
    ("duplicates", "Duplicate orders at the broker"),
    ("lost", "Lost orders (an intent with no ledger row, or a broker order on no intent's row)"),
    ("not_placed_but_at_broker", 'Orders reported as "not placed" that exist at the broker'),
    ("untyped_errors", "Errors outside the AlpacaNbError tree"),
    ("unknown_outcomes", "Placements whose outcome was unknown (OrderOutcomeUnknownError)"),
    ("unknown_then_resolved", "... resolved afterwards (placing again with the same id, or a sync)"),
    ("sigkills", "Kernels killed with SIGKILL at random moments"),
    ("stream_fills_checked", "Fills checked after trade_updates drops, duplicates and reordering"),
    ("bad_inputs_tried", "Bad inputs tried (each: typed error, no request)"),
    ("secrets_scanned", "Places scanned for secrets (logs, reprs, verbose tracebacks, ledger, journal, notebooks)"),
    ("secrets_found", "Secrets found there"),
    ("live_guard_cases", "Live-guard cases tried (6 paths x 7 states)"),
    ("live_guard_sent", "... sent, armed and within the caps"),
    ("live_guard_refused", "... refused with nothing sent that changes the account"),
    ("shared_ledger.processes", "Processes sharing one ledger, each following the stream"),
    ("shared_ledger.duckdb_errors", "... raw DuckDB errors they saw"),
]


def _value(figures: dict, name: str) -> str:
    value = figures
    for part in name.split("."):  # "shared_ledger.processes": a field of a recorded mapping
        if not isinstance(value, dict) or part not in value:
            return "not recorded"
        value = value[part]
    if name == "requests_faulted" and figures.get("requests"):
        return f"{value:,} ({100 * value / figures['requests']:.1f}%)"
    return f"{value:,}" if isinstance(value, (int, float)) else str(value)


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def render(report: dict) -> str:
    figures = report.get("figures", {})
    tests = report.get("tests", {})
    lines = [
        f"Run of {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on commit `{_commit()}`, Python "
        f"{platform.python_version()}: {tests.get('passed', 0)} tests passed, {tests.get('failed', 0)} failed"
        f"{', ' + str(tests['skipped']) + ' skipped' if tests.get('skipped') else ''}.",
        "",
        "| Figure | Value |",
        "|---|---:|",
    ]
    lines += [f"| {label} | {_value(figures, name)} |" for name, label in ROWS]
    kinds = figures.get("faults_by_kind") or {}
    if kinds:
        lines += [
            "",
            "Faults injected, by kind (REST: `status:N` refused before processing, "
            "`status_after:N` after it, `drop_after` answer lost, `cut_body:*` body cut off, "
            "`delay*` held past the client's timeout; `stream:*` on trade_updates):",
            "",
            "| Fault | Times |",
            "|---|---:|",
        ]
        lines += [f"| `{kind}` | {count:,} |" for kind, count in sorted(kinds.items())]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    report = json.loads(Path(argv[0]).read_text())
    target = Path(argv[1])
    text = target.read_text()
    if BEGIN not in text or END not in text:
        print(f"{target} has no {BEGIN} ... {END} section to fill", file=sys.stderr)
        return 2
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    target.write_text(f"{head}{BEGIN}\n{render(report)}\n{END}{tail}")
    print(f"figures written to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
