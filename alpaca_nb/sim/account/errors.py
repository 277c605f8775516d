"""Alpaca's error answer: an HTTP status and ``{"code": int, "message": str}``, raised as :class:`SimError`.

Account and route code raise it; the server's middleware turns it into that body. The helpers
build the 400 / 403 / 404 / 422 answers Alpaca gives, with its codes.
"""

from __future__ import annotations


class SimError(Exception):
    """An Alpaca error answer: HTTP ``status`` and body ``{"code": code, "message": message}``."""

    def __init__(self, status: int, code: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.details: dict = {}  # extra body fields, e.g. 403's available / existing_qty

    def body(self) -> dict:
        return {"code": self.code, "message": self.message, **self.details}


def unprocessable(message: str) -> SimError:
    """422 with Alpaca's generic validation code; the message names the field."""
    return SimError(422, 42210000, message)


def forbidden(message: str) -> SimError:
    """403: buying power, available quantity, shorting."""
    return SimError(403, 40310000, message)


def not_found(message: str = "resource not found") -> SimError:
    return SimError(404, 40410000, message)


def bad_request(message: str) -> SimError:
    """400: a body that is not JSON, or not an object."""
    return SimError(400, 40010000, message)
