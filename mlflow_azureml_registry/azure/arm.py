"""The HTTP pipeline to Azure Resource Manager: auth, retries honouring Retry-After, timeouts, errors.

Built on azure-core's pipeline (as the Azure SDKs are) rather than on azure-ai-ml's private REST
clients, so the plugin depends only on public, stable APIs.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Optional
from urllib.parse import urlparse

from azure.core import PipelineClient
from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.policies import (
    BearerTokenCredentialPolicy,
    ContentDecodePolicy,
    HeadersPolicy,
    HttpLoggingPolicy,
    NetworkTraceLoggingPolicy,
    ProxyPolicy,
    RequestIdPolicy,
    RetryPolicy,
    UserAgentPolicy,
)
from azure.core.polling.base_polling import LROBasePolling
from azure.core.rest import HttpRequest

from ..settings import HttpSettings
from .environment import environment_http_settings
from .errors import AzureMLError, OutcomeUnknown, Unauthenticated, error_from_response
from .urls import with_query

API_VERSION = "2025-12-01"
"""Newest stable Azure ML API version (see shared research); used for every control-plane call."""


_logger = logging.getLogger(__name__)


@dataclass
class ArmResponse:
    status: int
    headers: dict[str, str]
    body: Any
    request_id: Optional[str]
    pipeline_response: Any = field(default=None, repr=False)  # azure-core's, for LRO polling


def _user_agent() -> str:
    from .. import __version__

    return f"mlflow-azureml-registry/{__version__}"


class _OneTokenRequestAtATime(BearerTokenCredentialPolicy):
    """azure-core's bearer-token policy, asking for a token once when requests that go out together
    (``concurrency.py``) all find none: the others wait for it instead of each asking Entra ID for their own."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._token_lock = threading.Lock()

    def _request_token(self, *scopes: str, **kwargs: Any) -> None:
        if kwargs:  # a claims challenge: always a new token
            return super()._request_token(*scopes, **kwargs)
        with self._token_lock:
            if self._token is not None and not self._need_new_token:
                return None  # another request got it while this one waited
            return super()._request_token(*scopes)


class ArmClient:
    """Sends JSON requests to ARM paths and returns parsed bodies or raises typed ``AzureMLError``."""

    def __init__(
        self,
        endpoint: str,
        credential: TokenCredential,
        http: HttpSettings,
        *,
        transport: Any = None,
        scope: Optional[str] = None,
    ) -> None:
        """``scope``: the token scope (default: the endpoint's ``/.default``; an Azure ML registry's regional
        endpoint takes Resource Manager's)."""
        self.endpoint = endpoint.rstrip("/")
        self._http = http
        scope = scope or f"{self.endpoint}/.default"
        policies = [
            RequestIdPolicy(),
            HeadersPolicy(),
            UserAgentPolicy(base_user_agent=_user_agent()),
            ContentDecodePolicy(),
            RetryPolicy(retry_total=http.retry_total, retry_backoff_factor=0.5, retry_backoff_max=30),
            _OneTokenRequestAtATime(credential, scope),
            NetworkTraceLoggingPolicy(),
            HttpLoggingPolicy(),
        ]
        if transport is None:
            from azure.core.pipeline.transport import RequestsTransport

            # Proxies and CA bundle read once, not per request (see .environment).
            settings = environment_http_settings(self.endpoint)
            policies.insert(0, ProxyPolicy(proxies=settings.pop("proxies")))
            transport = RequestsTransport(**settings)
        self._client = PipelineClient(base_url=self.endpoint, policies=policies, transport=transport)

    def close(self) -> None:
        self._client.close()

    def url(self, path: str) -> str:
        return f"{self.endpoint}{path}"

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        what: str,
        params: Optional[dict[str, Any]] = None,
        body: Any = None,
        ok: tuple[int, ...] = (200, 201, 202, 204),
        idempotent: bool = False,
    ) -> ArmResponse:
        """Send one request (the pipeline retries it) and return the answer, or raise ``AzureMLError``.

        ``path_or_url`` is an ARM path, or an absolute ``nextLink`` from a previous page, which must be on
        this client's endpoint (never send the token elsewhere). ``idempotent`` marks a POST that may be
        sent again when its answer was lost (azure-core retries only GET/PUT/DELETE/HEAD after that).
        """
        if path_or_url.startswith("https://") or path_or_url.startswith("http://"):
            url = path_or_url
            if _origin(url) != _origin(self.endpoint):
                raise AzureMLError(f"{what}: refusing to follow a link to another host ({_origin(url)})")
        else:
            url = self.url(path_or_url)
        query = dict(params or {})
        if "api-version=" not in url:
            query.setdefault("api-version", API_VERSION)
        headers = {"Accept": "application/json"}
        content = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            content = json.dumps(body).encode("utf-8")
        attempts = 1 + (self._http.retry_total if idempotent else 0)
        for attempt in range(attempts):
            try:
                request = HttpRequest(method, with_query(url, query), headers=headers, content=content)
                return self._send(request, what, ok)
            except OutcomeUnknown as exc:
                if attempt + 1 >= attempts:
                    raise
                _logger.info("%s: %s; sending it again (it changes nothing)", what, exc.message)
        raise AssertionError("unreachable")

    def request_lro(self, method: str, path: str, *, what: str, body: Any = None) -> ArmResponse:
        """A long-running write (Azure ML registries' PUT and DELETE): the request, then azure-core's LRO polling
        (``Location``, ``Azure-AsyncOperation`` or the resource's ``provisioningState``) until it ends. Polls
        follow the answer's ``Retry-After``, else back off from :data:`LRO_FIRST_POLL_S` to :data:`LRO_MAX_POLL_S`
        (the registry's recorded answers carry none). Returns the first answer: the caller reads the resource
        back (the registry's last poll answers only ``{"assetId": ...}``, recorded). Raises ``AzureMLError``,
        the operation's own error when it failed."""
        from azure.core.exceptions import HttpResponseError

        first = self.request(method, path, what=what, body=body)
        if first.status in (200, 201, 204) and _terminal(first.body) and not _poll_header(first.headers):
            return first
        polling = _BackOffPolling(
            timeout=LRO_FIRST_POLL_S,
            connection_timeout=self._http.connect_timeout,
            read_timeout=self._http.read_timeout,
        )
        try:
            polling.initialize(self._client, first.pipeline_response, lambda response: response)
            polling.run()
        except HttpResponseError as exc:
            response = exc.response
            if response is None:
                raise AzureMLError(f"{what}: the operation failed: {exc.message}") from None
            raise error_from_response(response.status_code, response.body() or b"", None, what) from None
        except Exception as exc:  # azure-core's BadStatus, BadResponse, OperationFailed; transport errors
            raise _transport_error(exc, what, self.endpoint) from None
        return first

    def _send(self, request: HttpRequest, what: str, ok: tuple[int, ...]) -> ArmResponse:
        try:
            pipeline_response = self._client.send_request(
                request,
                _return_pipeline_response=True,
                connection_timeout=self._http.connect_timeout,
                read_timeout=self._http.read_timeout,
            )
            response = pipeline_response.http_response
        except ClientAuthenticationError as exc:
            raise Unauthenticated(f"{what}: could not get a token: {exc.message}") from None
        except ServiceRequestError as exc:
            # The request never reached the service.
            raise AzureMLError(f"{what}: could not reach {self.endpoint}: {exc.message}") from None
        except ServiceResponseError as exc:
            # The request was sent; the answer was lost. A write may have happened.
            raise OutcomeUnknown(f"{what}: the connection failed before an answer: {exc.message}") from None
        request_id = response.headers.get("x-ms-request-id")
        data = response.read()
        if response.status_code not in ok:
            raise error_from_response(response.status_code, data, request_id, what)
        parsed: Any = None
        if data:
            try:
                parsed = json.loads(data.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                raise AzureMLError(
                    f"{what}: the service answered with a body that is not JSON",
                    status=response.status_code,
                    request_id=request_id,
                ) from None
        answer = ArmResponse(response.status_code, dict(response.headers), parsed, request_id)
        answer.pipeline_response = pipeline_response
        return answer


LRO_FIRST_POLL_S = 0.1
LRO_MAX_POLL_S = 5.0
"""Seconds between polls of a long-running operation without ``Retry-After``: 0.1, 0.2, 0.4, ... up to 5."""


def _poll_header(headers: dict[str, str]) -> bool:
    return any(h.lower() in ("location", "azure-asyncoperation") for h in headers)


class _BackOffPolling(LROBasePolling):
    """azure-core's LRO polling, with a doubling pause instead of a fixed one when the service sets none."""

    _next_pause = LRO_FIRST_POLL_S

    def _extract_delay(self) -> float:
        headers = self._pipeline_response.http_response.headers if self._pipeline_response is not None else {}
        if any(k.lower() == "retry-after" for k in headers):
            return super()._extract_delay()
        current, self._next_pause = self._next_pause, min(self._next_pause * 2, LRO_MAX_POLL_S)
        return current


def _terminal(body: Any) -> bool:
    state = ((body or {}).get("properties") or {}).get("provisioningState") if isinstance(body, dict) else None
    return state in (None, "Succeeded", "Failed", "Canceled")


def _json(data: bytes, what: str) -> Any:
    if not data:
        return None
    try:
        return json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise AzureMLError(f"{what}: the service answered with a body that is not JSON") from None


def _transport_error(exc: Exception, what: str, endpoint: str) -> AzureMLError:
    if isinstance(exc, AzureMLError):
        return exc
    if isinstance(exc, ClientAuthenticationError):
        return Unauthenticated(f"{what}: could not get a token: {exc.message}")
    if isinstance(exc, ServiceRequestError):
        return AzureMLError(f"{what}: could not reach {endpoint}: {exc.message}")
    if isinstance(exc, ServiceResponseError):
        return OutcomeUnknown(f"{what}: the connection failed before an answer: {exc.message}")
    return OutcomeUnknown(f"{what}: the operation's outcome could not be read: {exc}")


def _origin(url: str) -> tuple[str, str]:
    parts = urlparse(url)
    return parts.scheme.lower(), (parts.netloc or "").lower()
