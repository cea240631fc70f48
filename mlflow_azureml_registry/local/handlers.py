"""HTTP handlers: one function per REST operation, request in, (status, headers, body) out.

Handlers parse query strings and bodies, validate bodies the way the service would (the known fields
of the spec's schemas, unknown fields kept), call :mod:`.state` and shape the answer. They know
nothing about sockets or TLS, so a test or a fault injector can call them directly.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any, Optional
from urllib.parse import quote, urlencode

from .state import LIST_VIEW_TYPES, MODEL_NAME_PATTERN, ArmError, Page, ServiceState, user_error


@dataclass
class Request:
    """What a handler sees of one HTTP request (path and query already percent-decoded)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes = b""
    query_multi: dict[str, list[str]] = field(default_factory=dict)
    base_url: str = ""  # https://<Host header>, for absolute links


@dataclass
class Response:
    status: int
    body: Any = None  # JSON-serialisable, or None for an empty body
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        return b"" if self.body is None else json.dumps(self.body).encode()


def error_response(err: ArmError) -> Response:
    """ARM error shape and headers (recorded: ``x-ms-response-type: error``)."""
    return Response(err.status, err.body(), {"x-ms-response-type": "error"})


# --------------------------------------------------------------------------- request validation
_STRING_MAPS = ("tags", "properties")
_NULLABLE_STRINGS = ("description",)
_VERSION_STRINGS = ("jobName", "modelType", "modelUri", "stage")


def _check_string_map(value: Any, where: str) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise _invalid(f"{where} must be an object of strings.")
    for key, item in value.items():
        if item is not None and not isinstance(item, str):
            raise _invalid(f"{where}.{key} must be a string, got {type(item).__name__}.")


def _invalid(message: str) -> ArmError:
    return user_error(f"Invalid request body: {message}", detail_code="InvalidRequestContent")


def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise _invalid("not valid JSON.") from None
    if not isinstance(body, dict):
        raise _invalid("expected a JSON object.")
    return body


def _resource_properties(body: dict[str, Any]) -> dict[str, Any]:
    """``properties`` is required on every resource envelope (spec)."""
    props = body.get("properties")
    if not isinstance(props, dict):
        raise _invalid("'properties' is required and must be an object.")
    for key in _NULLABLE_STRINGS:
        if props.get(key) is not None and not isinstance(props[key], str):
            raise _invalid(f"properties.{key} must be a string.")
    for key in _STRING_MAPS:
        _check_string_map(props.get(key), f"properties.{key}")
    if "isArchived" in props and not isinstance(props["isArchived"], bool):
        raise _invalid("properties.isArchived must be a boolean.")
    return props


def validate_container_body(body: dict[str, Any]) -> dict[str, Any]:
    return _resource_properties(body)


def validate_version_body(body: dict[str, Any]) -> dict[str, Any]:
    """Known ``ModelVersion`` fields are type-checked as the spec types them; others pass untouched."""
    props = _resource_properties(body)
    if "isAnonymous" in props and not isinstance(props["isAnonymous"], bool):
        raise _invalid("properties.isAnonymous must be a boolean.")
    for key in _VERSION_STRINGS:
        if props.get(key) is not None and not isinstance(props[key], str):
            raise _invalid(f"properties.{key} must be a string.")
    flavors = props.get("flavors")
    if flavors is not None:
        if not isinstance(flavors, dict):
            raise _invalid("properties.flavors must be an object.")
        for name, flavor in flavors.items():
            if flavor is None:
                continue
            if not isinstance(flavor, dict):
                raise _invalid(f"properties.flavors.{name} must be an object.")
            _check_string_map(flavor.get("data"), f"properties.flavors.{name}.data")
    return props


def _check_name(name: str) -> None:
    if not MODEL_NAME_PATTERN.match(name):
        raise user_error(
            f"Model name '{name}' is invalid: it must match ^[a-zA-Z0-9][a-zA-Z0-9\\-_]{{0,254}}$.",
            detail_code="InvalidName",
        )


# --------------------------------------------------------------------------- query helpers
def _view(request: Request) -> str:
    raw = request.query.get("listViewType", "ActiveOnly")
    view = LIST_VIEW_TYPES.get(raw.lower())
    if view is None:
        raise user_error(f"Invalid listViewType '{raw}'.")
    return view


def _int(request: Request, name: str) -> Optional[int]:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise user_error(f"Query parameter {name} must be an integer, got '{raw}'.") from None
    if value < 0:
        raise user_error(f"Query parameter {name} must not be negative.")
    return value


def _offset(request: Request) -> int:
    """``$skip`` is an opaque continuation token (spec); ours encodes an offset."""
    token = request.query.get("$skip")
    if not token:
        return 0
    try:
        return int(json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))["o"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise user_error("Invalid continuation token ($skip).") from None


def _skip_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def _pairs(raw: Optional[str]) -> list[tuple[str, Optional[str]]]:
    """``tag1,tag2=value2`` -> [("tag1", None), ("tag2", "value2")] (spec wording)."""
    out: list[tuple[str, Optional[str]]] = []
    for part in (raw or "").split(","):
        if part.strip():
            key, sep, value = part.partition("=")
            out.append((key.strip(), value if sep else None))
    return out


def _list_body(request: Request, page: Page) -> dict[str, Any]:
    """``value`` plus an absolute ``nextLink`` carrying every filter of the request (recorded)."""
    body: dict[str, Any] = {"value": page.items}
    if page.next_offset is not None:
        params = [(k, v) for k, values in request.query_multi.items() if k != "$skip" for v in values]
        params.append(("$skip", _skip_token(page.next_offset)))
        body["nextLink"] = f"{request.base_url}{quote(request.path)}?{urlencode(params, quote_via=quote)}"
    return body


def _location(request: Request) -> dict[str, str]:
    api = request.query.get("api-version", "")
    return {"Location": f"{request.base_url}{quote(request.path)}?api-version={quote(api)}"}


def _order(request: Request) -> bool:
    """``$orderBy``: ``createdtime desc|asc``; default newest first (recorded)."""
    raw = (request.query.get("$orderBy") or "").strip().lower()
    if not raw:
        return True
    words = raw.split()
    if (
        words[0] not in ("createdtime", "createdat")
        or len(words) > 2
        or words[1:] not in ([], ["asc"], ["desc"])
    ):
        raise user_error(f"Unsupported $orderBy '{request.query['$orderBy']}'.")
    return words[1:] != ["asc"]


# --------------------------------------------------------------------------- operations
def list_models(state: ServiceState, r: Request, ws: str) -> Response:
    page = state.list_models(ws, view=_view(r), offset=_offset(r), count=_int(r, "count"))
    return Response(200, _list_body(r, page))


def get_model(state: ServiceState, r: Request, ws: str, name: str) -> Response:
    return Response(200, state.get_model(ws, name))


def put_model(state: ServiceState, r: Request, ws: str, name: str) -> Response:
    _check_name(name)
    created, resource = state.put_model(ws, name, validate_container_body(_body(r)))
    return Response(201, resource, _location(r)) if created else Response(200, resource)


def delete_model(state: ServiceState, r: Request, ws: str, name: str) -> Response:
    return Response(200 if state.delete_model(ws, name) else 204)


def list_versions(state: ServiceState, r: Request, ws: str, name: str) -> Response:
    page = state.list_versions(
        ws,
        name,
        view=_view(r),
        newest_first=_order(r),
        top=_int(r, "$top"),
        offset=_offset(r),
        version=r.query.get("version"),
        description=r.query.get("description"),
        tags=_pairs(r.query.get("tags")),
        properties=_pairs(r.query.get("properties")),
        stage=r.query.get("stage"),
    )
    return Response(200, _list_body(r, page))


def get_version(state: ServiceState, r: Request, ws: str, name: str, version: str) -> Response:
    return Response(200, state.get_version(ws, name, version))


def put_version(state: ServiceState, r: Request, ws: str, name: str, version: str) -> Response:
    _check_name(name)
    if not version.strip():
        raise user_error("Model version must not be empty.")
    created, resource = state.put_version(ws, name, version, validate_version_body(_body(r)))
    return Response(201, resource, _location(r)) if created else Response(200, resource)


def delete_version(state: ServiceState, r: Request, ws: str, name: str, version: str) -> Response:
    return Response(200 if state.delete_version(ws, name, version) else 204)


def list_datastores(state: ServiceState, r: Request, ws: str) -> Response:
    raw_default = r.query.get("isDefault")
    is_default = None if raw_default in (None, "") else raw_default.lower() == "true"
    names = [n for values in r.query_multi.get("names", []) for n in values.split(",") if n]
    page = state.list_datastores(
        ws,
        is_default=is_default,
        names=names,
        order_asc=r.query.get("orderByAsc", "false").lower() != "false",
        offset=_offset(r),
        count=_int(r, "count"),
    )
    return Response(200, _list_body(r, page))


def get_datastore(state: ServiceState, r: Request, ws: str, name: str) -> Response:
    return Response(200, state.get_datastore(ws, name))


def list_secrets(state: ServiceState, r: Request, ws: str, name: str) -> Response:
    body = _body(r) if r.body.strip() else {}
    hours = body.get("expireAfterHours", 1)
    if not isinstance(hours, int) or isinstance(hours, bool) or hours <= 0:
        raise _invalid("expireAfterHours must be a positive integer.")
    return Response(200, state.datastore_secrets(ws, name, hours))


def get_job(state: ServiceState, r: Request, ws: str, name: str) -> Response:
    return Response(200, state.get_job(ws, name))


def cloud_metadata(base_url: str, storage_suffix: str) -> list[dict[str, Any]]:
    """ARM cloud metadata (``/metadata/endpoints``), as ``ARM_CLOUD_METADATA_URL`` expects."""
    return [
        {
            "name": "LocalAzureML",
            "portal": f"{base_url}/",
            "resourceManager": f"{base_url}/",
            "authentication": {"loginEndpoint": f"{base_url}/", "audiences": [f"{base_url}/"]},
            "suffixes": {"storage": storage_suffix},
        }
    ]
