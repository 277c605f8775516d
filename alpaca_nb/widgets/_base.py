"""What every alpaca_nb widget shares: its service, the environment banner, the status line,
error reporting, throttled background refreshes, HTML tables and cleanup on ``close()``."""

from __future__ import annotations

import functools
import getpass
import html
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import ipywidgets as widgets
import pandas as pd

from ..errors import AlpacaNbError, OrderValidationError
from ..models import AlpacaEnvironment

log = logging.getLogger("alpaca_nb")

ERROR_COLOR, OK_COLOR, INFO_COLOR = "#c62828", "#2e7d32", "#37474f"
_BANNERS = {  # background, label, what it means
    AlpacaEnvironment.LOCAL: ("#455a64", "LOCAL", "local broker, no real money"),
    AlpacaEnvironment.PAPER: ("#2e7d32", "PAPER", "paper trading, no real money"),
    AlpacaEnvironment.LIVE: (ERROR_COLOR, "&#9888; LIVE", "REAL MONEY: orders are real trades"),
}


def os_user() -> str:
    """The operating system's user name (who places an order when nobody says)."""
    try:
        return getpass.getuser()
    except Exception:
        return os.environ.get("USER") or os.environ.get("USERNAME") or "notebook"


def escape(value: Any) -> str:
    """Text for an HTML element body (quotes kept readable)."""
    return html.escape(str(value), quote=False)


def hide(widget: widgets.Widget, hidden: bool = True) -> None:
    """Show or hide a control (keeps its value)."""
    widget.layout.display = "none" if hidden else None


def is_shown(widget: widgets.Widget) -> bool:
    return widget.layout.display != "none"


def guarded(doing: str) -> Callable:
    """Wrap a widget action so that any exception is shown in its status line and logged; the
    action then returns None. Widget callbacks never fail silently and never raise into the UI."""

    def wrap(method: Callable) -> Callable:
        @functools.wraps(method)
        def run(self: ServiceWidget, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except Exception as exc:
                self.report(exc, doing)
                return None

        return run

    return wrap


class Throttle:
    """Calls ``fn`` on a short-lived timer thread at most once per ``interval`` seconds after
    :meth:`poke` (cheap and safe from any thread, e.g. a stream callback); bursts coalesce."""

    def __init__(self, fn: Callable[[], Any], interval: float):
        self._fn = fn
        self.interval = interval
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._last = 0.0
        self._stopped = False

    def poke(self) -> None:
        with self._lock:
            if self._stopped or self._timer is not None:
                return
            delay = max(0.0, self._last + self.interval - time.monotonic())
            self._timer = threading.Timer(delay, self._run)
            self._timer.daemon = True
            self._timer.start()

    def _run(self) -> None:
        with self._lock:
            self._timer = None
            self._last = time.monotonic()
            if self._stopped:
                return
        try:
            self._fn()
        except Exception:
            log.exception("alpaca_nb widget: background refresh failed")

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()


def banner_html(service: Any) -> str:
    """The environment (LIVE in red and loud) and the account."""
    environment = service.environment
    background, label, meaning = _BANNERS[environment]
    size = "1.25em" if environment is AlpacaEnvironment.LIVE else "1em"
    return (
        f'<div style="background:{background};color:white;padding:4px 10px;border-radius:3px;'
        f'font-weight:bold;font-size:{size}">{label} &middot; account {escape(service.account_id)}'
        f" &middot; {meaning}</div>"
    )


class ServiceWidget(widgets.VBox):
    """A widget on an :class:`~alpaca_nb.service.AlpacaService`: ``banner`` says the environment
    and account, ``status`` says what the last action did or why it failed."""

    def __init__(self, service: Any = None, **kwargs: Any):
        super().__init__(**kwargs)
        if service is None:
            from ..session import default_service

            service = default_service()
        self.service = service
        self.environment: AlpacaEnvironment = service.environment
        self.banner = widgets.HTML(banner_html(service))
        self.status = widgets.HTML("")
        self._stoppers: list[Callable[[], Any]] = []

    # -- what the user reads ----------------------------------------------------------------------
    def show(self, text: str, kind: str = "info") -> None:
        """Put ``text`` in the status line; ``kind`` is info, ok, warn or error."""
        color = {"ok": OK_COLOR, "warn": ERROR_COLOR, "error": ERROR_COLOR}.get(kind, INFO_COLOR)
        weight = "bold" if kind in ("warn", "error") else "normal"
        self.status.value = f'<span style="color:{color};font-weight:{weight}">{escape(text)}</span>'

    def report(self, exc: BaseException, doing: str) -> None:
        """Show ``exc`` in the status line (the typed error's message) and log it."""
        if isinstance(exc, OrderValidationError) and exc.field:
            text = f"Invalid {exc.field}: {exc}"
        elif isinstance(exc, AlpacaNbError):
            text = f"{doing} failed ({type(exc).__name__}): {exc}"
        else:
            text = f"{doing} failed (unexpected {type(exc).__name__}): {exc}"
        self.show(text, "error")
        if isinstance(exc, AlpacaNbError):  # expected: the widget shows it, the log keeps it
            log.info("alpaca_nb %s: %s", type(self).__name__, text)
        else:
            log.error("alpaca_nb %s: %s", type(self).__name__, text, exc_info=exc)

    def __repr__(self) -> str:  # stable: nbval compares widget outputs by this text
        return f"{type(self).__name__}(environment={self.environment.value!r})"

    # -- following the account ------------------------------------------------------------------
    @guarded("follow trade updates")
    def follow_trade_updates(
        self, wanted: Callable[[Any], bool], refresh: Callable[[], Any], interval: float
    ) -> Throttle | None:
        """Call ``refresh`` (at most once per ``interval`` seconds, on a timer thread) after each
        trade update for which ``wanted(update)`` is true. The ledger follows the stream
        meanwhile: ``service.follow()`` is started if nothing follows it yet, and then stopped
        with this widget. Everything ends on :meth:`close`."""
        from ..ledger import Ledger

        throttle = Throttle(refresh, interval)
        self.on_close(throttle.stop)
        if isinstance(self.service.order_service, Ledger) and self.service.follower is None:
            self.on_close(self.service.follow().stop)

        def deliver(update: Any) -> None:  # on the stream's thread: short, and never raises
            try:
                if wanted(update):
                    throttle.poke()
            except Exception:
                log.exception("alpaca_nb %s: a trade update could not be handled", type(self).__name__)

        self.on_close(self.service.streams.on_trade_update(deliver, name=f"{type(self).__name__}@{id(self):x}").cancel)
        return throttle

    # -- lifetime ---------------------------------------------------------------------------------
    def on_close(self, stop: Callable[[], Any]) -> None:
        """Run ``stop`` (end a subscription, a timer) when the widget is closed."""
        self._stoppers.append(stop)

    def close(self) -> None:
        """Stop every subscription and timer of this widget, then close it."""
        stoppers = getattr(self, "_stoppers", [])
        while stoppers:
            stop = stoppers.pop()
            try:
                stop()
            except Exception:
                log.exception("alpaca_nb %s: stopping %r failed", type(self).__name__, stop)
        super().close()


# -- HTML tables -----------------------------------------------------------------------------------

Column = tuple[str, Callable[[dict], Any]]  # header, cell text from a row (dict)


def table_html(
    frame: pd.DataFrame,
    columns: Sequence[Column],
    *,
    empty: str = "Nothing to show",
    cell_style: Callable[[str, dict], str | None] | None = None,
    max_rows: int | None = None,
) -> str:
    """``frame`` as a small HTML table: one cell per (header, formatter); every text escaped."""
    if frame.empty:
        return f'<i style="color:{INFO_COLOR}">{escape(empty)}</i>'
    records = frame.head(max_rows).to_dict("records") if max_rows else frame.to_dict("records")
    th = "padding:2px 8px;text-align:right;border-bottom:1px solid #999"
    head = "".join(f'<th style="{th}">{escape(h)}</th>' for h, _ in columns)
    rows = []
    for row in records:
        cells = []
        for header, cell in columns:
            extra = (cell_style(header, row) if cell_style else None) or ""
            cells.append(f'<td style="padding:2px 8px;text-align:right;{extra}">{escape(cell(row))}</td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    more = ""
    if max_rows and len(frame) > max_rows:
        more = f'<div style="color:{INFO_COLOR}">showing {max_rows} of {len(frame)}</div>'
    return (
        f'<table style="border-collapse:collapse;font-family:monospace;font-size:12px">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{more}"
    )


def missing(value: Any) -> bool:
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def money(value: Any) -> str:
    """A price: whole cents at $1 and above, four decimals below; blank when missing."""
    if missing(value):
        return ""
    number = float(value)
    return f"{number:,.2f}" if abs(number) >= 1 or number == 0 else f"{number:,.4f}"


def quantity(value: Any) -> str:
    """A share count without trailing zeros (fractional shares keep their digits)."""
    if missing(value):
        return ""
    text = f"{float(value):,.6f}".rstrip("0").rstrip(".")
    return text or "0"


def timestamp(value: Any) -> str:
    """A time as ``YYYY-MM-DD HH:MM:SS`` (UTC, as the frames have it)."""
    return "" if missing(value) else pd.Timestamp(value).strftime("%Y-%m-%d %H:%M:%S")


def pl_style(value: Any) -> str | None:
    """Green for a gain, red for a loss."""
    if missing(value) or float(value) == 0:
        return None
    return f"color:{OK_COLOR if float(value) > 0 else ERROR_COLOR}"


def split_list(text: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``."""
    return [part.strip() for part in text.split(",") if part.strip()]


def options_keeping(select: widgets.SelectMultiple, options: Iterable[tuple[str, str]]) -> None:
    """Replace a SelectMultiple's options, keeping what is still selectable selected."""
    options = list(options)
    keep = tuple(v for v in select.value if v in {value for _label, value in options})
    if list(select.options) != options:
        select.options = options
    select.value = keep
