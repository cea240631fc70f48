"""Record the HTTP traffic azure-core sends in this process as JSON lines, with secrets scrubbed (``--record-traffic``).

What is seen: every request azure-core's ``RequestsTransport`` sends, each attempt of a retried one included: the
plugin's control-plane pipeline and its blob clients, azure-identity's token requests, and the Azure ML SDK's calls
when a test uses ``MLClient``. The plugin offers no hook of its own (its pipelines and blob clients are built inside
``azure/``), so the tap wraps the transport's ``send``, as the request counters do (``benchmarks/counting.py``); it
changes nothing it sees. Processes a test starts (``mlflow server``, fresh ``python -c``) are not recorded.

One line per exchange: ``seq``, ``time``, ``test`` (node id), ``agent`` (``plugin``, ``azure-ai-ml``, ``blob``,
``identity`` or ``other``, from the User-Agent), ``method``, ``url``, ``path``, ``query``, ``status``,
``elapsed_ms``, selected ``request_headers`` / ``response_headers``, ``request_body`` / ``response_body`` (JSON
and form bodies only; others as ``{"bytes": n}``, streamed answers as ``{"streamed": true}``), ``error``.

Scrubbed, wherever they appear (URLs, headers, bodies): ``Authorization`` values (the scheme is kept), SAS
signatures (``sig``; ``sv``/``sp``/``se``/``st``/``sr``/... are kept: they say what a SAS allows and until when,
which FIDELITY.md's rows are about, and grant nothing without ``sig``), the user-delegation key's object ids,
ARM's signed operation URLs (``c``/``s``/``h`` beside ``t``), account keys and client secrets (``listSecrets``
answers, datastore secrets), tokens (OAuth fields, JWTs anywhere, form fields of token requests), connection
strings' keys, and the user names in ``systemData`` (``createdBy``/``lastModifiedBy``, except the emulator's
``Local User``). A scrubbed value reads ``<scrubbed>``.
"""

from __future__ import annotations

import datetime
import itertools
import json
import re
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.parse import parse_qsl, unquote, unquote_plus, urlsplit

SCRUBBED = "<scrubbed>"

SECRET_QUERY = frozenset({
    "sig", "signature", "code", "client_secret", "client_assertion", "assertion", "access_token", "refresh_token",
    "id_token", "token", "password", "skoid", "sktid",
})
"""Query and form fields whose values are scrubbed. A SAS's other fields (``sv``, ``sp``, ``se``, ...) stay."""

SIGNED_POLL = frozenset({"c", "s", "h"})
"""ARM's signed operation URLs (``...&t=<time>&c=<certificate>&s=<signature>&h=<hash>``): scrubbed beside ``t``."""

SECRET_KEYS = frozenset({
    "key", "accountkey", "primarykey", "secondarykey", "connectionstring", "primaryconnectionstring",
    "secondaryconnectionstring", "clientsecret", "client_secret", "secret", "password", "access_token",
    "accesstoken", "refresh_token", "id_token", "token", "certificate", "privatekey", "client_assertion",
    "sharedaccesskey",
})
"""JSON keys (case-insensitive) whose values are scrubbed whole (``listSecrets`` answers, token answers, ...)."""

USER_KEYS = frozenset({"createdby", "lastmodifiedby"})
EMULATOR_USER = "Local User"

REQUEST_HEADERS = (
    "Content-Type", "If-Match", "If-None-Match", "Range", "x-ms-range", "x-ms-version", "x-ms-blob-type",
    "x-ms-lease-action", "x-ms-lease-duration", "x-ms-client-request-id", "User-Agent",
)
RESPONSE_HEADERS = (
    "Content-Type", "Location", "Azure-AsyncOperation", "Retry-After", "x-ms-request-id",
    "x-ms-correlation-request-id", "x-ms-client-request-id", "x-ms-response-type", "x-ms-error-code",
    "x-ms-async-operation-timeout", "WWW-Authenticate", "ETag", "x-ms-lease-state", "x-ms-lease-status",
)
AUTH_HEADERS = ("Authorization", "Proxy-Authorization", "x-ms-copy-source-authorization")
"""Recorded as their scheme and ``<scrubbed>``."""

_TEXT_SECRET = re.compile(
    r"(?i)\b(sig|signature|AccountKey|SharedAccessKey|SharedAccessSignature|client_secret|client_assertion"
    r"|access_token|refresh_token|id_token|password)(=|%3D)([^&;\s\"'\\<>]+)"
)
_AUTH_VALUE = re.compile(r"(?i)\b(Bearer|SharedKey|SharedKeyLite|Basic)\s+(?![A-Za-z_]+=)([^\s\"',\\]+)")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")


# ---------------------------------------------------------------------------------------------- scrubbing
def scrub_text(text: str) -> str:
    """``text`` with ``sig=``-style secrets, credentials after an auth scheme, and JWTs replaced."""
    text = _TEXT_SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}{SCRUBBED}", text)
    text = _AUTH_VALUE.sub(lambda m: f"{m.group(1)} {SCRUBBED}", text)
    return _JWT.sub(SCRUBBED, text)


def scrub_query(query: str) -> str:
    """A raw query string (no ``?``) with secret fields' values scrubbed; other values kept as sent."""
    pairs = [part.partition("=") for part in query.split("&")] if query else []
    names = {unquote_plus(name).lower() for name, _, _ in pairs}
    signed_poll = "t" in names and bool(names & SIGNED_POLL)
    out = []
    for raw_name, eq, value in pairs:
        name = unquote_plus(raw_name).lower()
        secret = name in SECRET_QUERY or (signed_poll and name in SIGNED_POLL)
        out.append(f"{raw_name}{eq}{SCRUBBED if secret and eq else scrub_text(value)}")
    return "&".join(out)


def scrub_url(url: str) -> str:
    """``url`` with its query scrubbed (:func:`scrub_query`); a bare query (``?sv=...``, a SAS token) works too."""
    base, sep, rest = url.partition("?")
    if not sep:
        return scrub_text(url)
    query, hash_sep, fragment = rest.partition("#")
    return f"{scrub_text(base)}?{scrub_query(query)}{hash_sep}{scrub_text(fragment)}"


def scrub_json(value: Any, key: str = "") -> Any:
    """A parsed JSON value with secret keys' values, secrets in strings and user names scrubbed."""
    lowered = key.lower()
    if lowered in SECRET_KEYS and value not in (None, "", [], {}):
        return SCRUBBED
    if lowered in USER_KEYS and isinstance(value, str) and value not in ("", EMULATOR_USER):
        return SCRUBBED
    if isinstance(value, Mapping):
        return {str(k): scrub_json(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_json(v) for v in value]
    if isinstance(value, str):
        return scrub_url(value) if "?" in value else scrub_text(value)
    return value


def scrub_form(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Form fields (a token request's body) with secret fields scrubbed."""
    out = {}
    for name, value in fields.items():
        secret = str(name).lower() in SECRET_QUERY and value not in (None, "")
        out[str(name)] = SCRUBBED if secret else scrub_json(value if isinstance(value, str) else str(value), str(name))
    return out


def _header(headers: Mapping[str, Any], name: str) -> Optional[str]:
    lowered = name.lower()
    for key, value in headers.items():
        if str(key).lower() == lowered:
            return str(value)
    return None


def scrub_headers(headers: Mapping[str, Any], keep: tuple[str, ...]) -> dict[str, str]:
    """The ``keep`` headers present (values scrubbed), and any auth header as ``<scheme> <scrubbed>``."""
    out: dict[str, str] = {}
    for name in AUTH_HEADERS:
        value = _header(headers, name)
        if value is not None:
            scheme = value.split(None, 1)[0] if " " in value.strip() else ""
            out[name] = f"{scheme} {SCRUBBED}".strip()
    for name in keep:
        value = _header(headers, name)
        if value is not None:
            out[name] = scrub_url(value) if "?" in value else scrub_text(value)
    return out


def body_of(data: Any, content_type: Optional[str]) -> Any:
    """What is recorded of a body: scrubbed JSON or form fields, else its size only (blobs, XML)."""
    if data is None or (isinstance(data, (bytes, bytearray, str)) and len(data) == 0):
        return None
    if isinstance(data, Mapping):
        return {"form": scrub_form(data)}
    if not isinstance(data, (bytes, bytearray, str)):
        return {"stream": True}
    kind = (content_type or "").lower()
    size = len(data)
    if "json" in kind or "x-www-form-urlencoded" in kind:
        try:
            text = data if isinstance(data, str) else bytes(data).decode("utf-8")
            if "json" in kind:
                return scrub_json(json.loads(text))
            return {"form": scrub_form(dict(parse_qsl(text, keep_blank_values=True)))}
        except (ValueError, UnicodeDecodeError):
            pass
    return {"bytes": size}


def agent_of(user_agent: Optional[str]) -> str:
    """Who sent a request, from its User-Agent."""
    agent = (user_agent or "").lower()
    for needle, name in (("mlflow-azureml-registry", "plugin"), ("azure-ai-ml", "azure-ai-ml"),
                         ("storage-blob", "blob"), ("identity", "identity"), ("msal", "identity")):
        if needle in agent:
            return name
    return "other"


def record_of(
    method: str,
    url: str,
    request_headers: Mapping[str, Any],
    request_data: Any,
    status: Optional[int],
    response_headers: Mapping[str, Any],
    response_data: Any,
    *,
    streamed: bool = False,
    error: Optional[str] = None,
    elapsed_ms: Optional[float] = None,
    test: Optional[str] = None,
    seq: int = 0,
) -> dict[str, Any]:
    """One exchange as recorded, secrets scrubbed. ``request_data``/``response_data``: bytes, str, form dict or
    None; ``status`` None when no answer came (``error`` names the exception)."""
    parts = urlsplit(url)
    query = {unquote_plus(k): v for k, v in parse_qsl(scrub_query(parts.query), keep_blank_values=True)}
    return {
        "seq": seq,
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"),
        "test": test,
        "agent": agent_of(_header(request_headers, "User-Agent")),
        "method": method.upper(),
        "url": scrub_url(url),
        "host": parts.netloc,
        "path": scrub_text(unquote(parts.path)),
        "query": {k: scrub_text(v) if v != SCRUBBED else v for k, v in query.items()},
        "status": status,
        "elapsed_ms": None if elapsed_ms is None else round(elapsed_ms, 1),
        "request_headers": scrub_headers(request_headers, REQUEST_HEADERS),
        "response_headers": scrub_headers(response_headers, RESPONSE_HEADERS),
        "request_body": body_of(request_data, _header(request_headers, "Content-Type")),
        "response_body": {"streamed": True} if streamed else body_of(
            response_data, _header(response_headers, "Content-Type")
        ),
        "error": error,
    }


def dumps(record: dict[str, Any]) -> str:
    """The JSON line, with one more pass of :func:`scrub_text` over it (a secret in a field no rule names)."""
    return scrub_text(json.dumps(record, ensure_ascii=False, default=str))


# ---------------------------------------------------------------------------------------------- the tap
class Exchange:
    """One request azure-core's transport sent, and its answer (``response`` None when it raised ``error``)."""

    def __init__(self, request: Any, response: Any, kwargs: dict[str, Any], elapsed_s: float,
                 error: Optional[BaseException]) -> None:
        self.request, self.response, self.error = request, response, error
        self.streamed = bool(kwargs.get("stream"))
        self.elapsed_s = elapsed_s

    @property
    def method(self) -> str:
        return str(self.request.method)

    @property
    def url(self) -> str:
        return str(self.request.url)

    @property
    def status(self) -> Optional[int]:
        return None if self.response is None else int(self.response.status_code)

    def response_content(self) -> Optional[bytes]:
        """The answer's bytes when they were read already (never for a streamed answer: that would consume it)."""
        internal = getattr(self.response, "internal_response", None)
        if internal is None or self.streamed:
            return None
        return internal.content

    def record(self, *, test: Optional[str], seq: int) -> dict[str, Any]:
        headers = dict(self.response.headers) if self.response is not None else {}
        return record_of(
            self.method, self.url, dict(self.request.headers), getattr(self.request, "data", None), self.status,
            headers, self.response_content(), streamed=self.streamed and self.response is not None,
            error=None if self.error is None else type(self.error).__name__,
            elapsed_ms=self.elapsed_s * 1000, test=test, seq=seq,
        )


Listener = Callable[[Exchange], None]
_lock = threading.Lock()
_listeners: list[Listener] = []
_original: Optional[Callable[..., Any]] = None
listener_failures: list[str] = []
"""Exceptions listeners raised (a listener never fails a request: its failure is kept here instead)."""


def _send(self: Any, request: Any, **kwargs: Any) -> Any:
    original = _original
    assert original is not None  # set before this function is ever installed, never cleared
    started = time.monotonic()
    try:
        response = original(self, request, **kwargs)
    except BaseException as exc:
        _notify(Exchange(request, None, kwargs, time.monotonic() - started, exc))
        raise
    _notify(Exchange(request, response, kwargs, time.monotonic() - started, None))
    return response


def _notify(exchange: Exchange) -> None:
    for listener in list(_listeners):
        try:
            listener(exchange)
        except Exception as exc:
            listener_failures.append(f"{type(listener).__name__}: {type(exc).__name__}: {exc}"[:500])


def add_listener(listener: Listener) -> None:
    """Call ``listener(exchange)`` after every request azure-core's ``RequestsTransport`` sends in this process."""
    global _original
    from azure.core.pipeline.transport import RequestsTransport

    with _lock:
        _listeners.append(listener)
        if RequestsTransport.send is not _send:  # on top of whatever is there (another test's wrapper too)
            _original = RequestsTransport.send
            RequestsTransport.send = _send  # type: ignore[method-assign]


def remove_listener(listener: Listener) -> None:
    """Stop calling ``listener``; the last one gone, the transport's own ``send`` is put back (unless someone
    wrapped it meanwhile: then the tap stays in their chain, calling nobody)."""
    from azure.core.pipeline.transport import RequestsTransport

    with _lock:
        if listener in _listeners:
            _listeners.remove(listener)
        if not _listeners and _original is not None and RequestsTransport.send is _send:
            RequestsTransport.send = _original  # type: ignore[method-assign]


class Recorder:
    """A listener writing each exchange as a JSON line to ``path`` (truncated first); ``test`` is the node id
    the next lines are attributed to."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("w", encoding="utf-8")
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self.test: Optional[str] = None
        self.lines = 0

    def __call__(self, exchange: Exchange) -> None:
        line = dumps(exchange.record(test=self.test, seq=next(self._seq)))
        with self._lock:
            if not self._file.closed:
                self._file.write(line + "\n")
                self._file.flush()
                self.lines += 1

    def close(self) -> None:
        with self._lock:
            self._file.close()
