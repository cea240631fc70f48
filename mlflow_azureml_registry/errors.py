"""Azure answers as ``MlflowException`` with MLflow's error codes (the message keeps the request id)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Optional

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    INTERNAL_ERROR,
    INVALID_PARAMETER_VALUE,
    INVALID_STATE,
    PERMISSION_DENIED,
    REQUEST_LIMIT_EXCEEDED,
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
    TEMPORARILY_UNAVAILABLE,
    UNAUTHENTICATED,
)

from .azure import errors as az
from .credentials import redact
from .uri import InvalidUri

_CODES = (
    (az.UnsafeBlobName, INVALID_STATE),
    (az.IntegrityError, INVALID_STATE),
    (az.NotFound, RESOURCE_DOES_NOT_EXIST),
    (az.Conflict, RESOURCE_ALREADY_EXISTS),
    (az.BadRequest, INVALID_PARAMETER_VALUE),
    (az.Unauthenticated, UNAUTHENTICATED),
    (az.Forbidden, PERMISSION_DENIED),
    (az.Throttled, REQUEST_LIMIT_EXCEEDED),
    (az.ServiceUnavailable, TEMPORARILY_UNAVAILABLE),
    (az.OutcomeUnknown, TEMPORARILY_UNAVAILABLE),
)

_HINTS = {
    az.Unauthenticated: f" To fix: {az.CREDENTIAL_FIX}.",
    # Before Forbidden: the first matching class gives the hint.
    az.StorageForbidden: " The datastore's storage account refused it. With a datastore that keeps a key or SAS, "
    "check that its SAS allows reading and writing blobs and has not expired, and that the storage account's "
    "firewall lets this machine in. With an identity-based datastore, or without permission to list the "
    "datastore's secrets, the identity needs Storage Blob Data Reader (to load) or Storage Blob Data "
    "Contributor (to register) on the storage account.",
    az.Forbidden: " The identity needs a role on the workspace that allows model reads/writes "
    "(e.g. AzureML Data Scientist).",
}


def to_mlflow(exc: az.AzureMLError) -> MlflowException:
    code = INTERNAL_ERROR
    for cls, mlflow_code in _CODES:
        if isinstance(exc, cls):
            code = mlflow_code
            break
    hint = next((h for cls, h in _HINTS.items() if isinstance(exc, cls)), "")
    text = str(exc).rstrip()
    if not text.endswith("."):
        text += "."
    # Last line of defence: SDK texts can quote URLs, and a blob URL may carry the datastore SAS.
    return MlflowException(redact(f"Azure ML: {text}{hint}"), error_code=code)


def not_found(message: str, exc: Optional[az.AzureMLError] = None) -> MlflowException:
    """``RESOURCE_DOES_NOT_EXIST`` in MLflow's own wording, plus the request id support will ask for."""
    request_id = exc.request_id if exc is not None else None
    suffix = f" (x-ms-request-id: {request_id})" if request_id else ""
    return MlflowException(f"{message}{suffix}", error_code=RESOURCE_DOES_NOT_EXIST)


def detached(exc: BaseException) -> BaseException:
    """``exc`` made safe to travel as another exception's ``__context__``: its own chain (``__context__``,
    ``__cause__``) and traceback dropped, its text and string attributes redacted.

    ``raise ... from None`` only hides the chain from printing: Python still sets ``__context__`` to the exception
    being handled, and that one's context held azure-storage-blob's error, whose request URL carries the
    datastore's SAS (issue #15). Frames (through ``__traceback__``) hold it in locals too."""
    seen: set[int] = set()
    current: Optional[BaseException] = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        following = current.__cause__ or current.__context__
        current.__traceback__ = None
        current = following
    exc.__context__ = exc.__cause__ = None
    exc.args = tuple(redact(a) if isinstance(a, str) else a for a in exc.args)
    for key, value in list(vars(exc).items()):
        if isinstance(value, str):
            setattr(exc, key, redact(value))
        elif isinstance(value, BaseException):
            setattr(exc, key, None)
    return exc


@contextmanager
def azure_errors() -> Iterator[None]:
    """Run gateway calls, raising any Azure failure as ``MlflowException`` that carries no secret along."""
    try:
        yield
    except az.AzureMLError as exc:
        raise to_mlflow(detached(exc)) from None
    except InvalidUri as exc:
        raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from None
