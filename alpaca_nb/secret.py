"""A string that never shows itself: API keys and secrets, and URLs that carry a password.

:class:`Secret` is a ``str``, so alpaca-py, ``requests``, ``json`` and ``msgpack`` put the real
characters on the wire, while everything that *displays* a value sees a mask::

    >>> s = Secret("SECRETsecret0123")
    >>> s, str(s), f"{s}", {"APCA-API-SECRET-KEY": s}
    (<hidden>, '<hidden>', '<hidden>', {'APCA-API-SECRET-KEY': <hidden>})
    >>> s.reveal()
    'SECRETsecret0123'

That covers ``repr`` (and so every ``capture_locals`` traceback, ``%xmode Verbose`` and the
repr of a dict of request headers), ``str``, f-strings and ``%``-formatting, and logging. The
characters are reached on purpose only: :meth:`Secret.reveal` (or ``.encode()``, which is what
``http.client`` calls when it writes a header). Operations that build a new string (``+``,
slicing, ``.upper()``) return a plain ``str``: never apply them to a secret.

A URL's ``user:password@`` is a secret too: :func:`without_userinfo` is the form to show.
"""

from __future__ import annotations

from typing import overload
from urllib.parse import urlsplit, urlunsplit

MASK = "<hidden>"
UNSET = "<unset>"


class Secret(str):
    """A ``str`` whose ``repr``, ``str`` and ``format`` are a mask; :meth:`reveal` is the value.

    Equality, hashing and ``bool`` are those of the underlying string, so a ``Secret`` compares
    equal to the plain text it wraps and an empty one is false.
    """

    __slots__ = ()

    def __new__(cls, value: str = "") -> Secret:
        if isinstance(value, Secret):
            return value
        if not isinstance(value, str):
            raise TypeError(f"a Secret wraps a str, not {type(value).__name__}")
        # str(value) would call a subclass's __str__; take the characters themselves.
        return super().__new__(cls, str.__str__(value))

    def reveal(self) -> str:
        """The plain text, for the one place that sends it (a header, an auth message)."""
        return str.__str__(self)

    def __repr__(self) -> str:
        return MASK if self else UNSET

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)


def without_userinfo(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@``: the form safe to show.

    >>> without_userinfo("https://key:secret@paper-api.alpaca.markets/v2")
    'https://***@paper-api.alpaca.markets/v2'
    """
    raw = url.reveal() if isinstance(url, Secret) else url
    try:
        if "@" not in urlsplit(raw).netloc:
            return raw
        return urlunsplit(urlsplit(raw)._replace(netloc="***@" + urlsplit(raw).netloc.rpartition("@")[2]))
    except ValueError:  # not even a URL: show no part that might be a password
        return "<an unreadable URL>" if "@" in raw else raw


@overload
def guard_url(url: str) -> str: ...
@overload
def guard_url(url: None) -> None: ...
def guard_url(url: str | None) -> str | None:
    """``url`` as a :class:`Secret` when it carries a ``user:password@``, else unchanged: a
    frame that holds the result shows no password, and the URL can still be checked."""
    return Secret(url) if url and has_userinfo(url) else url


def has_userinfo(url: str) -> bool:
    """``url`` names a user or password (``https://user:pass@host``)."""
    try:
        return "@" in urlsplit(url.reveal() if isinstance(url, Secret) else url).netloc
    except ValueError:
        return "@" in url
