"""Which Azure credential the plugin uses, chosen once per process.

MLflow builds the registry store and the artifact repository from a URI alone, so a credential
cannot be passed to their constructors. :func:`configure` sets one for both; otherwise the local
workspace's token (loopback endpoints only) or ``DefaultAzureCredential`` without interactive login.

Every credential the plugin builds gets :func:`token_request_options`: the plugin's connect and read
timeouts, its retry count and a deadline per token request (``MLFLOW_AZUREML_TOKEN_TIMEOUT``), so an
identity endpoint that accepts the connection and never answers fails the first registry call with
``UNAUTHENTICATED`` instead of blocking it (azure-identity alone waits 300 s per attempt, and retries).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import threading
import time
from functools import cache
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
            # The options reach each credential of the chain (environment, workload and managed identity,
            # shared cache, broker); the developer tools run as processes with their own timeout (10 s).
            _default = DefaultAzureCredential(exclude_interactive_browser_credential=True, **token_request_options())
        return _default


# ------------------------------------------------------------------------------------ token requests
_DEADLINE = "mlflow_azureml_registry.token_deadline"
"""Key, in a token request's pipeline context, of its deadline (``time.monotonic()``); kept across retries."""

_sending = threading.local()
"""``deadline``: the deadline of the token request this thread sends (for the retry policy's sleeps)."""


def token_request_options(
    http: Optional[settings.HttpSettings] = None, timeout: Optional[float] = None
) -> dict[str, Any]:
    """Keyword arguments that bound every token request of an azure-identity credential built with them.

    azure-identity's defaults wait 300 s for a connection and 300 s for each answer, and retry: an
    endpoint that accepts the connection and never answers blocks for over 20 minutes. With these, each
    attempt waits at most the plugin's connect and read timeouts (``http``, default
    :func:`settings.http_settings`), failures are retried at most ``retry_total`` times, and the whole
    request (attempts, back-off and ``Retry-After`` waits) ends ``timeout`` seconds after it began
    (default :func:`settings.token_timeout`). Only public azure-core options are used, accepted by every
    credential that sends HTTP: ``transport``, ``raw_request_hook`` and ``retry_total``.
    """
    http = http if http is not None else settings.http_settings()
    timeout = timeout if timeout is not None else settings.token_timeout()
    connect, read = min(http.connect_timeout, timeout), min(http.read_timeout, timeout)
    return {
        "transport": _token_transport_class()(connection_timeout=connect, read_timeout=read),
        "raw_request_hook": _TokenDeadline(timeout, connect, read),
        "retry_total": http.retry_total,
    }


class _TokenDeadline:
    """Called before each attempt of a token request (azure-core's ``raw_request_hook``, after the retry policy).

    The first attempt starts the request's deadline; each attempt's connect and read timeouts are cut to
    what is left of it; once it has passed, the attempt fails at once with a message that says so.
    """

    def __init__(self, timeout: float, connect: float, read: float) -> None:
        self.timeout, self.connect, self.read = timeout, connect, read

    def __call__(self, request: Any) -> None:
        context = request.context
        now = time.monotonic()
        deadline = context.get(_DEADLINE)
        if deadline is None:
            deadline = context[_DEADLINE] = now + self.timeout
        _sending.deadline = deadline
        left = deadline - now
        if left <= 0:
            from azure.core.exceptions import ServiceResponseTimeoutError

            # Not ClientAuthenticationError: azure-identity then treats it as it treats its own timeouts
            # (IMDS is skipped as unavailable; other credentials stop the chain with this message).
            where = urlparse(request.http_request.url)
            raise ServiceResponseTimeoutError(
                f"no token from {where.scheme}://{where.netloc}{where.path} within {self.timeout:g} s, retries "
                f"included (set {settings.TOKEN_TIMEOUT} to wait longer)"
            )
        options = context.options
        options["connection_timeout"] = min(_seconds(options.get("connection_timeout"), self.connect), left)
        options["read_timeout"] = min(_seconds(options.get("read_timeout"), self.read), left)

    def __repr__(self) -> str:
        return f"_TokenDeadline({self.timeout:g} s)"


def _seconds(value: Any, default: float) -> float:
    """A timeout option as a number (a credential's own, such as IMDS's probe), else ``default``."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


@cache
def _token_transport_class() -> type:
    """azure-core's ``RequestsTransport`` whose sleeps between attempts end at the token request's deadline.

    Defined on first use: importing azure-core's transports is not free, and this module is imported early.
    """
    from azure.core.pipeline.transport import RequestsTransport

    class TokenRequestTransport(RequestsTransport):
        def sleep(self, duration: float) -> None:
            deadline = getattr(_sending, "deadline", None)
            if deadline is not None:  # a back-off or a server's Retry-After never outlasts the deadline
                duration = min(duration, max(0.0, deadline - time.monotonic()))
            super().sleep(duration)

    return TokenRequestTransport
