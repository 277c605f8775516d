"""Values as Alpaca writes and reads them: string numbers, RFC 3339 times, query parameters.

A parameter that does not parse is the 422 Alpaca gives, naming the field.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, overload

from .errors import unprocessable


def parse_bool(value: str | bool | None, default: bool = False) -> bool:
    """alpaca-py sends Python's ``True``/``False`` in query strings: accept any case."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    low = str(value).strip().lower()
    if low in ("true", "1", "yes"):
        return True
    if low in ("false", "0", "no"):
        return False
    raise unprocessable(f"invalid boolean value {value!r}")


def parse_time(value: str | None, field: str) -> datetime | None:
    """RFC 3339 (any offset, ``Z``, fractional seconds up to nanoseconds) or ``YYYY-MM-DD``.

    Returns an aware UTC datetime; a naive value is taken as UTC, as Alpaca does.
    """
    if value is None or value == "":
        return None
    text = str(value).strip()
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        text = text.replace("Z", "+00:00").replace("z", "+00:00")
        # Python parses at most microseconds: drop nanosecond digits.
        if "." in text:
            head, _, rest = text.partition(".")
            digits = len(rest) - len(rest.lstrip("0123456789"))
            frac, tail = rest[:digits], rest[digits:]
            text = f"{head}.{(frac + '000000')[:6]}{tail}"
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise unprocessable(f"invalid {field}: {value!r} is not an RFC 3339 timestamp or date") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def parse_int(
    value: Any, field: str, default: int | None = None, lo: int | None = None, hi: int | None = None
) -> int | None:
    if value is None or value == "":
        return default
    try:
        number = int(str(value))
    except ValueError:
        raise unprocessable(f"invalid {field}: {value!r} is not an integer") from None
    if (lo is not None and number < lo) or (hi is not None and number > hi):
        bounds = (
            f"between {lo} and {hi}"
            if lo is not None and hi is not None
            else (f"at least {lo}" if lo is not None else f"at most {hi}")
        )
        raise unprocessable(f"invalid {field}: {number} (must be {bounds})")
    return number


def parse_decimal(value: Any, field: str) -> Decimal | None:
    """A JSON number or a numeric string, as Alpaca accepts both; 422 naming ``field`` else."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise unprocessable(f"invalid {field}: expected a number, got {type(value).__name__}")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise unprocessable(f"invalid {field}: {value!r} is not a number") from None
    if not number.is_finite():
        raise unprocessable(f"invalid {field}: {value!r} is not a finite number")
    return number


@overload
def fmt_time(dt: datetime) -> str: ...
@overload
def fmt_time(dt: None) -> None: ...
def fmt_time(dt: datetime | None) -> str | None:
    """RFC 3339 in UTC with a ``Z``, microseconds when present (as Alpaca prints them)."""
    if dt is None:
        return None
    dt = dt.astimezone(UTC)
    if dt.microsecond:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


@overload
def fmt_num(x: Decimal | float | int) -> str: ...
@overload
def fmt_num(x: None) -> None: ...
def fmt_num(x: Decimal | float | int | None) -> str | None:
    """Alpaca's string numbers: no exponent, no trailing zeros beyond what is meaningful."""
    if x is None:
        return None
    d = x if isinstance(x, Decimal) else Decimal(str(x))
    if d == d.to_integral_value():
        return str(d.quantize(Decimal(1)))
    return format(d.normalize(), "f")
