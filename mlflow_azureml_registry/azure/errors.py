"""Typed errors for Azure answers, so the layers above never parse HTTP or see SDK tracebacks.

The gateway raises these; ``mlflow_azureml_registry.errors`` turns them into ``MlflowException``.
"""

from __future__ import annotations

import json
from typing import Any, Optional


class AzureMLError(Exception):
    """An Azure ML control-plane or storage answer that was not a success."""

    def __init__(
        self,
        message: str,
        *,
        status: Optional[int] = None,
        code: Optional[str] = None,
        detail_code: Optional[str] = None,
        request_id: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.detail_code = detail_code
        self.request_id = request_id

    def __str__(self) -> str:
        parts = [self.message]
        codes = "/".join(c for c in (self.code, self.detail_code) if c)
        if self.status is not None or codes:
            parts.append(f"(HTTP {self.status}{', ' + codes if codes else ''})")
        if self.request_id:
            parts.append(f"x-ms-request-id: {self.request_id}")
        return " ".join(parts)


class BadRequest(AzureMLError):
    """400: the service refused the request as invalid."""


class AssetPathImmutable(BadRequest):
    """The service refused a changed ``modelUri`` on an existing version ("Asset paths cannot be updated")."""


class Unauthenticated(AzureMLError):
    """401, or no token could be obtained."""


CREDENTIAL_FIX = (
    "sign in with `az login` (a workstation); or set AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET (a "
    "service principal) or AZURE_FEDERATED_TOKEN_FILE (workload identity: CI, AKS); or run on Azure with a managed "
    "identity; or call mlflow_azureml_registry.configure(credential=...) with any azure-core TokenCredential "
    "(README, Credentials)"
)
"""What to do when no credential gives a token (:class:`Unauthenticated`), in one place: MLflow's errors carry it
(``mlflow_azureml_registry.errors``) and so do ``doctor`` and ``gc`` (``doctor_advice``). The credential chain is
azure-identity's ``DefaultAzureCredential`` (README, Credentials)."""


class Forbidden(AzureMLError):
    """403: the identity may not do this on this workspace."""


class StorageForbidden(Forbidden):
    """403 from the datastore's storage account (not the workspace): the SAS, key or token may not do this there."""


class NotFound(AzureMLError):
    """404: the model, version, datastore or workspace does not exist."""


class Conflict(AzureMLError):
    """409: the resource exists or changed concurrently."""


class Throttled(AzureMLError):
    """429 after the retry policy gave up."""


class ServiceUnavailable(AzureMLError):
    """5xx after the retry policy gave up."""


class UnsafeBlobName(AzureMLError):
    """A blob name that would be written outside the download folder (``..``, absolute paths)."""


class IntegrityError(AzureMLError):
    """Downloaded bytes do not match the registered version's manifest."""


class OutcomeUnknown(AzureMLError):
    """The connection failed after the request may have reached the service (a write may have happened)."""


_BY_STATUS: dict[int, type[AzureMLError]] = {
    400: BadRequest,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    429: Throttled,
}

ASSET_PATH_MESSAGE = "Asset paths cannot be updated"


def parse_arm_error(body: bytes) -> tuple[Optional[str], Optional[str], Optional[str]]:
    """Return (code, innermost detail code, message) from an ARM ``ErrorResponse`` body, tolerating junk."""
    try:
        error: Any = json.loads(body.decode("utf-8")).get("error") or {}
    except (ValueError, AttributeError, UnicodeDecodeError):
        return None, None, None
    if not isinstance(error, dict):
        return None, None, None
    code, message = error.get("code"), error.get("message")
    detail_code = None
    details = error.get("details") or []
    while isinstance(details, list) and details and isinstance(details[0], dict):
        detail_code = details[0].get("code") or detail_code
        message = details[0].get("message") or message
        details = details[0].get("details") or []
    return code, detail_code, message


def error_from_response(status: int, body: bytes, request_id: Optional[str], what: str) -> AzureMLError:
    """Build the typed error for a failed answer to ``what`` (e.g. "GET model version x/3")."""
    code, detail_code, message = parse_arm_error(body)
    message = f"{what} failed: {message}" if message else f"{what} failed"
    # Matched on the message for any 4xx: the status of this refusal is not recorded (FIDELITY.md).
    if 400 <= status < 500 and ASSET_PATH_MESSAGE in message:
        cls: type[AzureMLError] = AssetPathImmutable
    elif status >= 500:
        cls = ServiceUnavailable
    else:
        cls = _BY_STATUS.get(status, AzureMLError)
    return cls(message, status=status, code=code, detail_code=detail_code, request_id=request_id)
