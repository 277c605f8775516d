"""``/v2/account/configurations``: the account settings a user may change, type-checked.

The ones the engine honours: ``suspend_trade`` (refuse new orders), ``no_shorting``,
``fractional_trading``, ``max_margin_multiplier`` ("1" makes a cash account, "2" Reg T
margin). The others are kept and echoed, as Alpaca's paper accounts do.
"""

from __future__ import annotations

from typing import Any

from .errors import unprocessable

DEFAULT_CONFIG: dict[str, Any] = {
    "dtbp_check": "entry",
    "trade_confirm_email": "all",
    "suspend_trade": False,
    "no_shorting": False,
    "fractional_trading": True,
    "max_margin_multiplier": "2",
    "max_options_trading_level": 0,
    "pdt_check": "entry",
    "ptp_no_exception_entry": False,
    "disable_overnight_trading": False,
}

_BOOLEANS = (
    "suspend_trade",
    "no_shorting",
    "fractional_trading",
    "ptp_no_exception_entry",
    "disable_overnight_trading",
)
_CHOICES = {
    "dtbp_check": ("both", "entry", "exit"),
    "pdt_check": ("both", "entry", "exit"),
    "trade_confirm_email": ("all", "none"),
    "max_margin_multiplier": ("1", "2"),
    "max_options_trading_level": (0, 1, 2, 3),
}


def update_config(config: dict, patch: Any) -> dict:
    """``config`` with ``patch`` applied; 422 naming the field for a wrong type or value.
    Unknown keys are ignored, as Alpaca ignores them."""
    if not isinstance(patch, dict):
        raise unprocessable("request body must be a JSON object")
    out = dict(config)
    for key, value in patch.items():
        if key in _BOOLEANS:
            if not isinstance(value, bool):
                raise unprocessable(f"invalid {key}: expected a boolean, got {value!r}")
        elif key in _CHOICES:
            if (
                key == "max_margin_multiplier"
                and isinstance(value, (int, float))
                and not isinstance(value, bool)
                and value == int(value)
            ):
                value = str(int(value))
            if value not in _CHOICES[key] or isinstance(value, bool):
                allowed = ", ".join(str(c) for c in _CHOICES[key])
                raise unprocessable(f"invalid {key}: {value!r} (one of {allowed})")
        else:
            continue
        out[key] = value
    return out
