"""JSON over HTTP for the route modules: msgspec-encoded bodies (Decimals as strings, datetimes as RFC 3339)."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

_encoder = msgspec.json.Encoder(decimal_format="string")


def json_response(body: Any, status: int = 200, headers: dict | None = None) -> web.Response:
    """Encode ``body`` with msgspec (Decimals as strings, datetimes as RFC 3339)."""
    return web.Response(body=_encoder.encode(body), status=status, headers=headers, content_type="application/json")


def encode_json(body: Any) -> bytes:
    return _encoder.encode(body)
