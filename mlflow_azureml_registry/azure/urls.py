"""URLs to Azure ML: every part built from a user's value is percent-encoded here, and only here."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode


def segment(value: Any) -> str:
    """One URL path segment, percent-encoded (``/``, ``+``, ``#``, ``?``, ``%`` and the rest); every ARM
    path part built from a user's value goes through here."""
    return quote(str(value), safe="")


def with_query(url: str, params: dict[str, Any]) -> str:
    """``url`` with ``params`` appended, keys and values percent-encoded.

    azure-core's ``HttpRequest(params=...)`` expects values already quoted: a tag value ``a+b`` reached the
    service as ``a b``, ``x&y`` added a parameter and ``a#b`` began a fragment. ``None`` values are left out.
    """
    pairs = [(k, v) for k, v in params.items() if v is not None]
    if not pairs:
        return url
    query = urlencode([(str(k), str(v)) for k, v in pairs], quote_via=quote, safe="")
    return f"{url}{'&' if '?' in url else '?'}{query}"
