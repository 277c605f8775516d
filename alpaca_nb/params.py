"""Argument checks for every public helper, in one place.

A helper checks all of its arguments before it sends anything. A bad one raises
:class:`~alpaca_nb.errors.InvalidArgumentError` (a ``ValueError``) whose ``argument`` names it
and whose message says what would be accepted, with a "did you mean" for a near miss among
fixed choices::

    params.symbols("aapl, msft")                 # ['AAPL', 'MSFT']
    params.symbol("ıntc")                        # refused: non-ASCII (it would become INTC)
    params.timestamp(12345, "start")             # refused: a number is not a time
    params.choice("iexx", "feed", FEEDS)         # refused: ... (did you mean 'iex'?)

What is accepted:

- **Symbols**: ASCII only, checked *before* upper-casing (``"ıntc".upper()`` is ``"INTC"``,
  ``"ſpy".upper()`` is ``"SPY"``). Then Alpaca's grammar: 1 to :data:`MAX_SYMBOL_LENGTH`
  letters and digits, starting with a letter, with single ``.``, ``/`` or ``-`` between parts
  (``AAPL``, ``BRK.B``, ``BTC/USD``). Lower case is upper-cased; surrounding spaces dropped.
  A list of symbols is a comma-separated string or an iterable of strings, never empty.
- **Times**: ``datetime``, ``date``, ``pandas.Timestamp``, ``numpy.datetime64``, an ISO 8601
  string (``"2024-01-02"``, ``"2024-01-02T14:30:00Z"``, ``"2024-01-02 09:30-05:00"``),
  ``"now"`` or ``"today"`` (New York's date). A naive time is UTC, as at Alpaca (``tz=``
  only converts what comes back). Numbers are refused: ``start=12345`` has no unit (use
  ``pd.Timestamp(12345, unit="s", tz="UTC")``). So are other string forms (``"01/02/2024"``
  is January or February), times outside :data:`EARLIEST` .. :data:`LATEST`, and a start
  after its end.
- **Choices** (feeds, sorts, statuses, activity types, ...): the value or an enum whose
  ``.value`` it is, in any case.
- **Counts** (``limit``, ``max_rows``): an ``int`` (not a bool or float) in range.
- **Zones** (``tz``): an IANA name known to :mod:`zoneinfo` (``"America/New_York"``) or a
  ``tzinfo``.

Large symbol lists are split into requests of legal size by :func:`symbol_chunks`.
"""

from __future__ import annotations

import difflib
import enum
import functools
import math
import numbers
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, tzinfo
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, overload
from urllib.parse import quote_plus

from .errors import InvalidArgumentError

if TYPE_CHECKING:
    import pandas as pd

# -- fixed choices (Alpaca's, from its OpenAPI specs and alpaca-py's enums) ----------------------

FEEDS = ("iex", "sip", "delayed_sip", "otc", "boats", "overnight")
ADJUSTMENTS = ("raw", "split", "dividend", "spin-off", "all")
SORTS = ("asc", "desc")
ORDER_STATUSES = ("open", "closed", "all")
MAX_ORDERS = 500  # Alpaca lists at most 500 orders per request
ACTIVITY_TYPES = (
    "FILL",
    "TRANS",
    "MISC",
    "ACATC",
    "ACATS",
    "CFEE",
    "CGD",
    "CIL",
    "CSD",
    "CSW",
    "DIV",
    "DIVCGL",
    "DIVCGS",
    "DIVFEE",
    "DIVFT",
    "DIVNRA",
    "DIVROC",
    "DIVTW",
    "DIVTXEX",
    "DIVWH",
    "EXTRD",
    "FEE",
    "FOPT",
    "FXTRD",
    "INT",
    "INTNRA",
    "INTPNL",
    "INTTW",
    "JNL",
    "JNLC",
    "JNLS",
    "MA",
    "MEM",
    "NC",
    "OCT",
    "OPASN",
    "OPCA",
    "OPCSH",
    "OPEXC",
    "OPEXP",
    "OPTRD",
    "PTC",
    "PTR",
    "REORG",
    "SPIN",
    "SPLIT",
    "SWP",
    "VOF",
    "WH",
)
ASSET_STATUSES = ("active", "inactive")
ASSET_CLASSES = ("us_equity", "us_option", "crypto", "crypto_perp")
EXCHANGES = ("AMEX", "ARCA", "BATS", "NYSE", "NASDAQ", "NYSEARCA", "OTC", "CRYPTO")
ASSET_ATTRIBUTES = (
    "ptp_no_exception",
    "ptp_with_exception",
    "ipo",
    "has_options",
    "options_late_close",
    "fractional_eh_enabled",
    "overnight_tradable",
    "overnight_halted",
)
HISTORY_TIMEFRAMES = ("1Min", "5Min", "15Min", "1H", "1D")
HISTORY_INTRADAY_DAYS = 30  # Alpaca: intraday portfolio history spans at most 30 days

# -- sizes ---------------------------------------------------------------------------------------

MAX_SYMBOL_LENGTH = 15
# One request carries at most this many symbols, and at most this many characters of the
# URL-encoded ``symbols=`` value. Alpaca documents 100 for its option endpoints and none for
# stocks; its URLs, like the local broker's (aiohttp: 8,190 bytes a request line), are bounded.
MAX_SYMBOLS_PER_REQUEST = 100
MAX_SYMBOLS_QUERY_CHARS = 2_000

# Times a pandas Timestamp can hold (nanoseconds in int64), as whole days.
EARLIEST = date(1677, 9, 22)
LATEST = date(2262, 4, 10)

# Only ASCII blanks are trimmed: a non-ASCII character, even a space, makes a value refused.
_BLANKS = " \t\n\r\f\v"


# -- choices -------------------------------------------------------------------------------------


def did_you_mean(value: Any, choices: Iterable[str]) -> str:
    """`` (did you mean 'limit'?)`` when ``value`` is close to one of ``choices``, else ``""``."""
    if not isinstance(value, str):
        return ""
    options = {str(c).lower(): str(c) for c in choices}
    close = difflib.get_close_matches(value.strip().lower(), list(options), n=1, cutoff=0.6)
    return f" (did you mean {options[close[0]]!r}?)" if close else ""


def _listing(choices: Sequence[str], most: int = 12) -> str:
    shown = ", ".join(map(repr, choices[:most]))
    return shown + (f", ... ({len(choices)} in all)" if len(choices) > most else "")


def choice(
    value: Any,
    argument: str,
    choices: Sequence[str],
    *,
    error: type[InvalidArgumentError] = InvalidArgumentError,
    verb: str = "use",
) -> str:
    """One of ``choices``, matched in any case (an enum gives its ``.value``); returns the
    choice as spelled in ``choices``. The message says "``verb`` one of ..."."""
    text = value.value if isinstance(value, enum.Enum) else value
    if isinstance(text, str) and text.isascii():
        wanted = text.strip(_BLANKS)
        if wanted in choices:
            return wanted
        for option in choices:
            if option.lower() == wanted.lower():
                return option
    raise error(
        f"{argument}={value!r} is not valid: {verb} one of {_listing(choices)}{did_you_mean(text, choices)}", argument
    )


def choice_list(value: Any, argument: str, choices: Sequence[str], *, verb: str = "use") -> list[str]:
    """Several of ``choices``: a comma-separated string or an iterable; never empty."""
    items = _items(value, argument, "e.g. " + repr(choices[0]))
    picked = [choice(item, argument, choices, verb=verb) for item in items]
    if not picked:
        raise InvalidArgumentError(f"{argument}={value!r} is empty: give at least one of {_listing(choices)}", argument)
    return list(dict.fromkeys(picked))


def _items(value: Any, argument: str, example: str) -> list[Any]:
    """A comma-separated string's non-blank parts, or an iterable's items."""
    if isinstance(value, str):
        return [part.strip(_BLANKS) for part in value.split(",") if part.strip(_BLANKS)]
    if isinstance(value, (bytes, bytearray, Mapping)) or not isinstance(value, Iterable):
        raise InvalidArgumentError(
            f"{argument}={value!r} is of type {type(value).__name__}: give a string or a list of strings ({example})",
            argument,
        )
    return list(value)


# -- symbols -------------------------------------------------------------------------------------

_SYMBOL = re.compile(r"[A-Z][A-Z0-9]*(?:[./-][A-Z0-9]+)*", re.ASCII)
SYMBOL_FORM = (
    f"1 to {MAX_SYMBOL_LENGTH} ASCII letters and digits starting with a letter, with '.', '/' "
    "or '-' between parts (e.g. 'AAPL', 'BRK.B', 'BTC/USD')"
)


def _symbol_problem(value: Any) -> str | None:
    """Why ``value`` is not a symbol, or None when it is one."""
    if not isinstance(value, str):
        return f"is of type {type(value).__name__}, not a string: give a ticker such as 'AAPL'"
    text = value.strip(_BLANKS)
    if not text.isascii():
        odd = "".join(dict.fromkeys(c for c in text if not c.isascii()))
        return (
            f"has non-ASCII characters ({odd!r}): Alpaca's symbols are ASCII, and a lookalike "
            "letter such as 'ı' or 'ſ' would turn into another ticker; retype it"
        )
    if len(text) > MAX_SYMBOL_LENGTH or not _SYMBOL.fullmatch(text.upper()):
        return f"is not a symbol: use {SYMBOL_FORM}"
    return None


def symbol(value: Any, argument: str = "symbol", *, error: type[InvalidArgumentError] = InvalidArgumentError) -> str:
    """One symbol, upper-cased: ``" brk.b "`` -> ``"BRK.B"`` (see the module docstring)."""
    problem = _symbol_problem(value)
    if problem:
        raise error(f"{argument}={value!r} {problem}", argument)
    text: str = value  # a str: _symbol_problem checked it
    return text.strip(_BLANKS).upper()


def symbols(value: Any, argument: str = "symbols", *, allow_all: bool = False) -> list[str]:
    """``"AAPL"``, ``"aapl,msft"`` or an iterable of strings -> unique upper-case symbols in
    order; never empty. With ``allow_all``, ``"*"`` (every symbol) gives ``["*"]``."""
    items = _items(value, argument, "'AAPL' or ['AAPL', 'MSFT']")
    names = []
    for item in items:
        if allow_all and isinstance(item, str) and item.strip(_BLANKS) == "*":
            return ["*"]
        problem = _symbol_problem(item)
        if problem:
            raise InvalidArgumentError(f"{argument}: {item!r} {problem}", argument)
        names.append(item.strip(_BLANKS).upper())
    if not names:
        every = ", or '*' for every symbol" if allow_all else ""
        raise InvalidArgumentError(
            f"{argument}={value!r}: give at least one symbol, e.g. 'AAPL' or ['AAPL', 'MSFT']{every}", argument
        )
    return list(dict.fromkeys(names))


def symbol_chunks(
    names: Sequence[str], *, max_symbols: int = MAX_SYMBOLS_PER_REQUEST, max_chars: int = MAX_SYMBOLS_QUERY_CHARS
) -> list[list[str]]:
    """``names`` in consecutive groups that each fit one request: at most ``max_symbols``
    symbols and ``max_chars`` characters of URL-encoded ``symbols=`` value."""
    chunks: list[list[str]] = []
    current: list[str] = []
    used = 0
    for name in names:
        size = len(quote_plus(name)) + (3 if current else 0)  # "%2C" between symbols
        if current and (len(current) >= max_symbols or used + size > max_chars):
            chunks.append(current)
            current, used, size = [], 0, len(quote_plus(name))
        current.append(name)
        used += size
    if current:
        chunks.append(current)
    return chunks


# -- times ---------------------------------------------------------------------------------------

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_ISO_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?"  # date, time
    r" ?(?:[Zz]|[+-]\d{2}(?::?\d{2})?)?",
    re.ASCII,
)  # offset
TIME_FORMS = (
    "a datetime, a date, a pandas Timestamp or an ISO 8601 string such as '2024-01-02' or "
    "'2024-01-02T14:30:00Z' (a time without an offset is UTC)"
)


class _Time(NamedTuple):
    stamp: pd.Timestamp  # in UTC (a day: its midnight)
    is_date: bool  # a calendar day, sent as YYYY-MM-DD
    aware: bool  # the caller gave a time zone (or "now")


def _instant(value: Any, argument: str) -> _Time | None:
    """``value`` read as a time; None stays None (see the module docstring for the forms)."""
    import numpy as np
    import pandas as pd  # only when a time is given: keeps `import alpaca_nb.params` light

    if value is None:
        return None
    given = value
    if isinstance(value, (bool, numbers.Number)):
        raise InvalidArgumentError(
            f"{argument}={given!r} is a number, and a number is not a time (seconds? days? since "
            f"when?): give {TIME_FORMS}; for epoch seconds pass pd.Timestamp({given!r}, unit='s', tz='UTC')",
            argument,
        )
    if isinstance(value, str):
        text = value.strip(_BLANKS)
        if text.lower() == "now":
            return _Time(pd.Timestamp.now(tz="UTC"), False, True)
        if text.lower() == "today":
            today = pd.Timestamp.now(tz="America/New_York").date()
            return _Time(pd.Timestamp(today.isoformat(), tz="UTC"), True, False)
        if _ISO_DATE.fullmatch(text):
            try:
                value = date.fromisoformat(text)
            except ValueError:
                raise InvalidArgumentError(
                    f"{argument}={given!r} is not a calendar date: give a real day as 'YYYY-MM-DD'", argument
                ) from None
        elif _ISO_TIME.fullmatch(text):
            value = text
        else:
            raise InvalidArgumentError(
                f"{argument}={given!r} is not a date or time: give {TIME_FORMS}, 'now' or 'today'", argument
            )
    elif not isinstance(value, (date, np.datetime64)):
        raise InvalidArgumentError(
            f"{argument}={given!r} is of type {type(value).__name__}: give {TIME_FORMS}", argument
        )
    if isinstance(value, date) and not isinstance(value, datetime):
        _in_range(value, given, argument)
        return _Time(pd.Timestamp(value.isoformat(), tz="UTC"), True, False)
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError) as err:
        if isinstance(err, OverflowError) or "out of" in str(err).lower():  # out of bounds / range
            _in_range(None, given, argument)
        raise InvalidArgumentError(f"{argument}={given!r} is not a date or time: give {TIME_FORMS}", argument) from None
    if pd.isna(stamp):  # pandas gives NaT for "NaT", "" and the like
        raise InvalidArgumentError(f"{argument}={given!r} is not a time (NaT): give {TIME_FORMS}", argument)
    _in_range(stamp.date(), given, argument)  # a day inside pandas' range: converting cannot overflow
    aware = stamp.tzinfo is not None
    return _Time(stamp.tz_convert("UTC") if aware else stamp.tz_localize("UTC"), False, aware)


def _in_range(day: date | None, value: Any, argument: str) -> None:
    if day is None or not EARLIEST <= day <= LATEST:
        raise InvalidArgumentError(
            f"{argument}={value!r} is out of range: give a time between {EARLIEST} and {LATEST}", argument
        )


def _wire(time: _Time) -> str:
    """Alpaca's form: ``YYYY-MM-DD`` for a day, else RFC 3339 in UTC (nanoseconds kept)."""
    stamp = time.stamp
    if time.is_date:
        return stamp.strftime("%Y-%m-%d")
    fraction = stamp.microsecond * 1000 + stamp.nanosecond
    text = stamp.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{fraction:09d}Z" if fraction else f"{text}Z"


def timestamp(value: Any, argument: str) -> str | None:
    """A start/end/after/until value as Alpaca reads it: ``YYYY-MM-DD`` for a day, else RFC 3339
    in UTC (``2024-01-02T14:30:00Z``, nanoseconds kept). ``None`` stays ``None``.

    >>> timestamp(datetime(2024, 1, 2, 14, 30), "start")      # naive: UTC
    '2024-01-02T14:30:00Z'
    """
    found = _instant(value, argument)
    return None if found is None else _wire(found)


def time_range(start: Any, end: Any, names: tuple[str, str] = ("start", "end")) -> tuple[str | None, str | None]:
    """Both ends as :func:`timestamp` gives them; refuses a start after its end (a day counts
    from its midnight UTC)."""
    first, last = _instant(start, names[0]), _instant(end, names[1])
    if first is not None and last is not None and first.stamp > last.stamp:
        raise InvalidArgumentError(f"{names[0]}={start!r} is after {names[1]}={end!r}: swap them", names[0])
    return (None if first is None else _wire(first)), (None if last is None else _wire(last))


def market_day(value: Any, argument: str) -> str | None:
    """A day of the trading calendar as ``YYYY-MM-DD``: a date is itself, a naive datetime its
    own date, an aware time (or "now") its New York day. ``None`` stays ``None``."""
    found = _instant(value, argument)
    if found is None:
        return None
    stamp = found.stamp.tz_convert("America/New_York") if found.aware else found.stamp
    return stamp.strftime("%Y-%m-%d")


def day_range(start: Any, end: Any, names: tuple[str, str] = ("start", "end")) -> tuple[str | None, str | None]:
    """Both ends as :func:`market_day` gives them; refuses a start after its end."""
    first, last = market_day(start, names[0]), market_day(end, names[1])
    if first is not None and last is not None and first > last:
        raise InvalidArgumentError(f"{names[0]}={start!r} is after {names[1]}={end!r}: swap them", names[0])
    return first, last


# -- bar timeframes ------------------------------------------------------------------------------

_TIMEFRAME = re.compile(r"^\s*(\d{1,3})?\s*([A-Za-z]+)\s*$", re.ASCII)
_UNIT_WORDS = {
    "min": "Min",
    "mins": "Min",
    "minute": "Min",
    "minutes": "Min",
    "hour": "Hour",
    "hours": "Hour",
    "day": "Day",
    "days": "Day",
    "week": "Week",
    "weeks": "Week",
    "month": "Month",
    "months": "Month",
}
# Alpaca's one-letter forms are case-sensitive: "M" is a month, "T" a minute.
_UNIT_LETTERS = {"T": "Min", "H": "Hour", "h": "Hour", "D": "Day", "d": "Day", "W": "Week", "w": "Week", "M": "Month"}
_AMOUNTS = {"Min": range(1, 60), "Hour": range(1, 24), "Day": (1,), "Week": (1,), "Month": (1, 2, 3, 4, 6, 12)}
TIMEFRAME_FORMS = (
    "'1Min'..'59Min' (or '5T'), '1Hour'..'23Hour' (or '4H'), '1Day' ('1D'), "
    "'1Week' ('1W'), '1Month', '2Month', '3Month', '4Month', '6Month', '12Month' "
    "('3M'), or an alpaca-py TimeFrame"
)


def timeframe(value: Any, argument: str = "timeframe") -> str:
    """Alpaca's form of a bar timeframe: ``"5Min"``, ``"1Hour"``, ``"1Day"``, ``"1Week"``, ...

    Accepts alpaca-py's ``TimeFrame`` and strings like ``"1Min"``, ``"5min"``, ``"15T"``,
    ``"1Hour"``, ``"1D"``, ``"Day"``, ``"1Week"``, ``"3Month"``; ``"1m"`` is refused (minute
    or month?).

    >>> timeframe("15min"), timeframe(TimeFrame.Day)
    ('15Min', '1Day')
    """
    text = value if isinstance(value, str) else getattr(value, "value", None)
    match = _TIMEFRAME.match(text) if isinstance(text, str) and text.isascii() else None
    unit = None
    if match:
        word = match.group(2)
        unit = _UNIT_LETTERS.get(word) if len(word) == 1 else _UNIT_WORDS.get(word.lower())
    amount = int(match.group(1) or 1) if match else 0
    if unit is None or amount not in _AMOUNTS[unit]:
        hint = " ('m' is ambiguous: write 'Min' or 'Month')" if match and match.group(2) == "m" else ""
        raise InvalidArgumentError(
            f"{argument}={value!r} is not a valid bar timeframe{hint}: use {TIMEFRAME_FORMS}", argument
        )
    return f"{amount}{unit}"


_PERIOD = re.compile(r"(\d{1,4})([DWMA])", re.ASCII)
_PERIOD_DAYS = {"D": 1, "W": 7, "M": 30, "A": 365}


def history_period(value: Any, argument: str = "period") -> str | None:
    """A portfolio-history ``period``: a number and D, W, M or A (``"1M"``); None stays None."""
    if value is None:
        return None
    text = value.strip(_BLANKS).upper() if isinstance(value, str) and value.isascii() else None
    match = _PERIOD.fullmatch(text) if text else None
    if not match or int(match.group(1)) < 1:
        raise InvalidArgumentError(
            f"{argument}={value!r} is not a period: give a number and D (days), W "
            "(weeks), M (months) or A (years), e.g. '1W' or '3M'",
            argument,
        )
    return text


def period_days(period: str) -> int:
    """Roughly how many days a valid :func:`history_period` spans (a month is 30 days)."""
    match = _PERIOD.fullmatch(period)
    if match is None:
        raise ValueError(f"period {period!r} is not valid: history_period() checks it first")
    return int(match.group(1)) * _PERIOD_DAYS[match.group(2)]


# -- numbers, flags, zones, callables ------------------------------------------------------------


def count(
    value: Any, argument: str, *, minimum: int = 1, maximum: int | None = None, allow_none: bool = False
) -> int | None:
    """An ``int`` from ``minimum`` to ``maximum`` (a bool or a float is refused)."""
    if value is None and allow_none:
        return None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        number = int(value)
        if number >= minimum and (maximum is None or number <= maximum):
            return number
    top = f" to {maximum:,}" if maximum is not None else " or more"
    none = " (or None)" if allow_none else ""
    raise InvalidArgumentError(
        f"{argument}={value!r} is not valid: give a whole number (int) from {minimum}{top}{none}", argument
    )


def flag(value: Any, argument: str) -> bool:
    """``True`` or ``False`` (numpy's too); anything else is refused, not read as truthy."""
    import numpy as np

    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise InvalidArgumentError(f"{argument}={value!r} is not valid: give True or False", argument)


def seconds(value: Any, argument: str, *, allow_none: bool = True) -> float | None:
    """A duration in seconds: a finite number, zero or more (None when ``allow_none``)."""
    if value is None and allow_none:
        return None
    number = _finite(value)
    if number is not None and number >= 0:
        return number
    none = " or None" if allow_none else ""
    raise InvalidArgumentError(
        f"{argument}={value!r} is not valid: give a number of seconds, 0 or more{none}", argument
    )


def amount(value: Any, argument: str) -> float:
    """A finite number (int, float, Decimal; not a bool)."""
    number = _finite(value)
    if number is not None:
        return number
    raise InvalidArgumentError(f"{argument}={value!r} is not valid: give a finite number", argument)


def _finite(value: Any) -> float | None:
    """``value`` as a finite float when it is a real number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, Decimal)):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):  # a signaling NaN
        return None
    return number if math.isfinite(number) else None


def callback(value: Any, argument: str) -> Any:
    """A callable, or None."""
    if value is None or callable(value):
        return value
    raise InvalidArgumentError(f"{argument}={value!r} is not callable: give a function (or None)", argument)


@functools.lru_cache(maxsize=1)
def _zone_names() -> tuple[str, ...]:
    import zoneinfo

    return tuple(sorted(zoneinfo.available_timezones()))


@functools.lru_cache(maxsize=256)
def _known_zone(name: str) -> bool:
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+)*", re.ASCII)


@overload
def tz(value: Any, argument: str = "tz", *, name_only: Literal[True]) -> str | None: ...
@overload
def tz(value: Any, argument: str = "tz", *, name_only: bool = False) -> str | tzinfo | None: ...
def tz(value: Any, argument: str = "tz", *, name_only: bool = False) -> str | tzinfo | None:
    """A time zone to show times in: an IANA name (``"America/New_York"``, ``"UTC"``) or a
    ``tzinfo`` (with ``name_only``: a name, or a ``ZoneInfo`` whose name is used). None stays None."""
    if value is None:
        return None
    if isinstance(value, tzinfo):
        key = getattr(value, "key", None)
        if not name_only:
            return value
        if isinstance(key, str):
            value = key
    if isinstance(value, str) and _ZONE_NAME.fullmatch(value.strip(_BLANKS)) and _known_zone(value.strip(_BLANKS)):
        return value.strip(_BLANKS)
    example = "'America/New_York' or 'UTC'"
    if isinstance(value, str):
        raise InvalidArgumentError(
            f"{argument}={value!r} is not a time zone: give an IANA name such as "
            f"{example}{did_you_mean(value, _zone_names())}",
            argument,
        )
    kind = "an IANA zone name" if name_only else f"an IANA zone name ({example}) or a tzinfo"
    raise InvalidArgumentError(
        f"{argument}={value!r} is of type {type(value).__name__}: give {kind}, or None", argument
    )


__all__ = [
    "FEEDS",
    "ADJUSTMENTS",
    "SORTS",
    "ORDER_STATUSES",
    "MAX_ORDERS",
    "ACTIVITY_TYPES",
    "ASSET_STATUSES",
    "ASSET_CLASSES",
    "EXCHANGES",
    "ASSET_ATTRIBUTES",
    "HISTORY_TIMEFRAMES",
    "HISTORY_INTRADAY_DAYS",
    "MAX_SYMBOL_LENGTH",
    "MAX_SYMBOLS_PER_REQUEST",
    "MAX_SYMBOLS_QUERY_CHARS",
    "EARLIEST",
    "LATEST",
    "SYMBOL_FORM",
    "TIME_FORMS",
    "TIMEFRAME_FORMS",
    "did_you_mean",
    "choice",
    "choice_list",
    "symbol",
    "symbols",
    "symbol_chunks",
    "timestamp",
    "time_range",
    "market_day",
    "day_range",
    "timeframe",
    "history_period",
    "period_days",
    "count",
    "flag",
    "seconds",
    "amount",
    "callback",
    "tz",
]
