"""Which Azure credential the plugin uses, chosen once per process.

MLflow builds the registry store and the artifact repository from a URI alone, so a credential
cannot be passed to their constructors. :func:`configure` sets one for both; otherwise the local
workspace's token (loopback endpoints only) or ``DefaultAzureCredential`` without interactive login.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import threading
import time
from typing import Any, Optional
from urllib.parse import urlparse

from . import settings

_lock = threading.Lock()
_configured: Optional[Any] = None
_default: Optional[Any] = None


class StaticTokenCredential:
    """A ``TokenCredential`` for a fixed bearer token (the local workspace's)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any):
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, int(time.time()) + 3600)

    def __repr__(self) -> str:  # never show the token
        return "StaticTokenCredential(<redacted>)"


def configure(credential: Optional[Any] = None, *, ml_client: Optional[Any] = None) -> None:
    """Use ``credential`` (an azure-core ``TokenCredential``) or an ``MLClient``'s credential in this process.

    Call it before the first registry call; it applies to the registry store and the artifact
    repository alike. ``configure(None)`` returns to the default chain.
    """
    global _configured
    if ml_client is not None:
        if credential is not None:
            raise ValueError("Pass either credential or ml_client, not both")
        # MLClient exposes no public credential attribute; _credential has held it since 1.0.
        credential = getattr(ml_client, "_credential", None)
        if credential is None:
            raise ValueError("This MLClient carries no credential; pass configure(credential=...) instead")
    if credential is not None and not hasattr(credential, "get_token"):
        raise TypeError(f"credential must be an azure-core TokenCredential, got {type(credential).__name__}")
    with _lock:
        _configured = credential
    from . import session

    session.reset()


def is_loopback(url: str) -> bool:
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_SECRET_IN_TEXT = re.compile(r"(?i)\b(sig|AccountKey)=[^&;\s'\"]+")
"""A SAS signature (``sig=``, URL-encoded or not) or a connection string's ``AccountKey=``."""

_URL_LOGGERS = ("urllib3.connectionpool", "urllib3.poolmanager", "urllib3.util.retry")
"""urllib3 loggers that print request URLs (at DEBUG) — and a SAS is part of every blob URL."""


def redact(text: str) -> str:
    """``text`` with SAS signatures and account keys masked."""
    return _SECRET_IN_TEXT.sub(lambda m: f"{m.group(1)}=<redacted>", text)


class RedactingFilter(logging.Filter):
    """Masks SAS signatures in log records (MLflow < 3.x leaves urllib3's request lines as they are)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is not ours to fix
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def keep_secrets_out_of_logs() -> None:
    """Install :class:`RedactingFilter` on urllib3's URL-logging loggers (idempotent).

    A filter on the emitting logger applies before any handler, whoever configured logging.
    """
    for name in _URL_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())


def resolve(endpoint: str) -> Any:
    """The credential for ``endpoint``: configured, else local token (loopback only), else the default chain."""
    global _default
    keep_secrets_out_of_logs()  # before the first blob client exists: its URLs will carry the datastore SAS
    with _lock:
        if _configured is not None:
            return _configured
        token = os.environ.get(settings.LOCAL_TOKEN)
        if token and is_loopback(endpoint):
            return StaticTokenCredential(token)
        if _default is None:
            from azure.identity import DefaultAzureCredential

            # Never open a browser or prompt: a headless job must fail fast with a message instead.
            _default = DefaultAzureCredential(exclude_interactive_browser_credential=True)
        return _default
