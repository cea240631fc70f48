"""HTTP for the emulated registries: discovery, the registry data plane, operation polls; and the
registry's storage over Azurite.

Routes (all on the control-plane server, which is also the registry's discovered host):

- ``GET /registrymanagement/v1.0/registries/{name}/discovery``
- ``/mferp/managementfrontend/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/
  registries/{r}/`` + ``models[/{name}[/versions[/{version}]]]``, ``tempdatarefs/{name}/versions/{v}``,
  ``datarefs/{name}/versions/{v}``
- ``GET /assetstore/v1.0/operations/{id}`` (where a write's ``Location`` points)

:class:`RegistryRouter` is plugged into :class:`.routing.Router` after authentication (a bearer token is
required everywhere, as for workspaces) and answers these paths; it returns None for any other path.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

from . import handlers
from .handlers import Request, Response, _body, _check_name, _list_body, _offset, _order, _pairs, _view
from .registry import Operation, RegistryState
from .state import ArmError, user_error

PROVIDER_PREFIX = (
    r"^/mferp/managementfrontend/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/providers/"
    r"microsoft\.machinelearningservices/registries/(?P<reg>[^/]+)"
)
DISCOVERY = re.compile(r"^/registrymanagement/v1\.0/registries/(?P<reg>[^/]+)/discovery/?$", re.IGNORECASE)
OPERATION = re.compile(r"^/assetstore/v1\.0/operations/(?P<op>[^/]+)/?$", re.IGNORECASE)
REGION = "local"
SAS_TTL = dt.timedelta(hours=8)  # recorded: st = now - 10 min, se = now + 8 h
_ASYNC_TIMEOUT = {"x-ms-async-operation-timeout": "PT1H"}  # recorded on the version PUT's 202


class AzuriteRegistryStorage:
    """Registry-managed storage on Azurite: account-key operations, container SAS, URL forms."""

    def __init__(self, account_keys: dict[str, str], blob_port: Callable[[], int], blob_service: Callable[[str], Any]):
        self.account_keys, self._blob_port, self._blob_service = account_keys, blob_port, blob_service

    def create_container(self, account: str, container: str) -> None:
        from azure.core.exceptions import ResourceExistsError

        with contextlib.suppress(ResourceExistsError):
            self._blob_service(account).create_container(container)

    def container_sas(self, account: str, container: str, permission: str) -> str:
        from azure.storage.blob import generate_container_sas

        now = dt.datetime.now(dt.timezone.utc)
        return generate_container_sas(
            account,
            container,
            account_key=self.account_keys[account],
            permission=permission,
            start=now - dt.timedelta(minutes=10),
            expiry=now + SAS_TTL,
        )

    def path_style_url(self, account: str, container: str) -> str:
        """What clients can reach without name resolution: ``https://127.0.0.1:<port>/<account>/<container>``."""
        return f"https://127.0.0.1:{self._blob_port()}/{account}/{container}"

    def host_style_url(self, account: str, container: str) -> str:
        """The account's own endpoint form (``*.blob.core.localhost``, as the workspace datastores' suffix)."""
        return f"https://{account}.blob.core.localhost:{self._blob_port()}/{container}"

    def owns(self, account: str, url: str) -> Optional[tuple[str, str]]:
        port = self._blob_port()
        return split_blob_url(
            url.split("?", 1)[0], account, f"127.0.0.1:{port}", f"{account}.blob.core.localhost:{port}"
        )


def split_blob_url(url: str, account: str, path_style_host: str, host_style_host: str) -> Optional[tuple[str, str]]:
    """(container, path) of ``https://<path_style_host>/<account>/<container>/<path>`` or
    ``https://<host_style_host>/<container>/<path>``; None for any other URL."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "https":
        return None
    segments = [s for s in parts.path.split("/") if s]
    host = parts.netloc.lower()
    if host == path_style_host.lower() and segments[:1] == [account]:
        segments = segments[1:]
    elif host != host_style_host.lower():
        return None
    if not segments:
        return None
    return segments[0], "/".join(segments[1:])


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    operation: str  # logged; the generated clients' operation names
    handler: Callable[..., Response]


class _JsonNull(Response):
    """A response whose body is the JSON literal ``null`` (recorded: ``Content-Length: 4``)."""

    def encoded(self) -> bytes:
        return b"null"


def _lro(r: Request, op: Operation) -> Response:
    """202 + ``Location`` of the operation, body JSON ``null`` (recorded for the version PUT)."""
    headers = {
        "Location": f"{r.base_url}/assetstore/v1.0/operations/{op.id}",
        **_ASYNC_TIMEOUT,
        "Content-Type": "application/json; charset=utf-8",
    }
    return _JsonNull(202, None, headers)


def _discovery(state: RegistryState, r: Request, reg_name: str) -> Response:
    reg = state.find(reg_name)
    if reg is None:
        raise ArmError(404, "NotFound", f"Registry {reg_name} not found.", mfe=False)
    return Response(
        200,
        {
            "registryId": reg.registry_id,
            "registryName": reg.name,
            "tenantId": state.tenant_id,
            "primaryRegion": REGION,
            "regions": [REGION],
            "subscriptionId": state.subscription_id,
            "resourceGroup": state.resource_group,
            "workspaceName": None,
            "primaryRegionResourceProviderUri": f"{r.base_url}/",
            "registryFqdns": {REGION: {"uri": r.base_url}},
            "intellectualPropertyPublisher": None,
        },
    )


def _poll(state: RegistryState, r: Request, op_id: str) -> Response:
    op = state.poll(op_id)
    if not op.done:
        return Response(202)  # recorded: empty body
    if op.error is not None:
        return handlers.error_response(op.error)
    return Response(200, op.result) if op.result is not None else Response(200, {})


def list_models(state: RegistryState, r: Request, reg: str) -> Response:
    return Response(200, _list_body(r, state.list_models(reg, view=_view(r), offset=_offset(r))))


def get_model(state: RegistryState, r: Request, reg: str, name: str) -> Response:
    return Response(200, state.get_model(reg, name))


def put_model(state: RegistryState, r: Request, reg: str, name: str) -> Response:
    _check_name(name)
    return _lro(r, state.put_model(reg, name, handlers.validate_container_body(_body(r))))


def delete_model(state: RegistryState, r: Request, reg: str, name: str) -> Response:
    op = state.delete_model(reg, name)
    return Response(204) if op is None else _lro(r, op)


def list_versions(state: RegistryState, r: Request, reg: str, name: str) -> Response:
    page = state.list_versions(
        reg,
        name,
        view=_view(r),
        newest_first=_order(r),
        top=handlers._int(r, "$top"),
        offset=_offset(r),
        version=r.query.get("version"),
        description=r.query.get("description"),
        tags=_pairs(r.query.get("tags")),
        properties=_pairs(r.query.get("properties")),
    )
    return Response(200, _list_body(r, page))


def get_version(state: RegistryState, r: Request, reg: str, name: str, version: str) -> Response:
    return Response(200, state.get_version(reg, name, version))


def put_version(state: RegistryState, r: Request, reg: str, name: str, version: str) -> Response:
    _check_name(name)
    if not version.strip():
        raise user_error("Model version must not be empty.")
    return _lro(r, state.put_version(reg, name, version, handlers.validate_version_body(_body(r))))


def delete_version(state: RegistryState, r: Request, reg: str, name: str, version: str) -> Response:
    op = state.delete_version(reg, name, version)
    return Response(204) if op is None else _lro(r, op)


def temporary_data_reference(state: RegistryState, r: Request, reg: str, name: str, version: str) -> Response:
    body = _body(r)
    kind = body.get("temporaryDataReferenceType", "TemporaryBlobReference")
    if kind != "TemporaryBlobReference":
        raise user_error(f"Unsupported temporaryDataReferenceType '{kind}'.")
    return Response(200, state.temporary_reference(reg, name, version))


def data_reference(state: RegistryState, r: Request, reg: str, name: str, version: str) -> Response:
    _body(r)  # {"assetId", "blobUri"}: the answer is the stored version's, whatever blobUri says (assumed)
    return Response(200, state.data_reference(reg, name, version))


def _r(method: str, tail: str, operation: str, handler: Callable[..., Response]) -> _Route:
    return _Route(method, re.compile(PROVIDER_PREFIX + tail + "/?$", re.IGNORECASE), operation, handler)


_N, _V = r"/(?P<name>[^/]+)", r"/(?P<version>[^/]+)"
ROUTES = [
    _r("GET", r"/models", "RegistryModelContainers_List", list_models),
    _r("GET", rf"/models{_N}", "RegistryModelContainers_Get", get_model),
    _r("PUT", rf"/models{_N}", "RegistryModelContainers_CreateOrUpdate", put_model),
    _r("DELETE", rf"/models{_N}", "RegistryModelContainers_Delete", delete_model),
    _r("GET", rf"/models{_N}/versions", "RegistryModelVersions_List", list_versions),
    _r("GET", rf"/models{_N}/versions{_V}", "RegistryModelVersions_Get", get_version),
    _r("PUT", rf"/models{_N}/versions{_V}", "RegistryModelVersions_CreateOrUpdate", put_version),
    _r("DELETE", rf"/models{_N}/versions{_V}", "RegistryModelVersions_Delete", delete_version),
    _r(
        "PUT",
        rf"/tempdatarefs{_N}/versions{_V}",
        "TemporaryDataReferences_CreateOrGet",
        temporary_data_reference,
    ),
    _r("POST", rf"/datarefs{_N}/versions{_V}", "DataReferences_GetBlobReferenceSas", data_reference),
]
DISCOVERY_OPERATION = "RegistryDiscovery_Get"
POLL_OPERATION = "AssetStoreOperations_Get"


class RegistryRouter:
    """Answers the registry paths (after the control plane has authenticated the request)."""

    def __init__(self, state: RegistryState) -> None:
        self.state = state

    def dispatch(self, request: Request) -> Optional[tuple[Response, Optional[str], Optional[str]]]:
        """(response, operation, registry) for a registry path, or None for any other path."""
        path = request.path
        match = DISCOVERY.match(path)
        if match and request.method == "GET":
            return self._run(lambda: _discovery(self.state, request, match["reg"]), DISCOVERY_OPERATION, match["reg"])
        match = OPERATION.match(path)
        if match and request.method == "GET":
            op = self.state.operations.get(match["op"])
            registry = op.registry if op is not None else None
            return self._run(lambda: _poll(self.state, request, match["op"]), POLL_OPERATION, registry)
        if not path.lower().startswith("/mferp/"):
            return None
        for route in ROUTES:
            m = route.pattern.match(path)
            if m is None or route.method != request.method:
                continue
            params = m.groupdict()
            return self._run(partial(self._data_plane, request, params, route), route.operation, params["reg"])
        return None

    @staticmethod
    def _run(
        call: Callable[[], Response], operation: str, registry: Optional[str]
    ) -> tuple[Response, str, Optional[str]]:
        try:
            return call(), operation, registry
        except ArmError as err:
            return handlers.error_response(err), operation, registry

    def _data_plane(self, request: Request, params: dict[str, str], route: _Route) -> Response:
        if not request.query.get("api-version"):  # assumed as for ARM; the SDK always sends one
            raise ArmError(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
                mfe=False,
            )
        if params["sub"].lower() != self.state.subscription_id.lower():
            message = f"The subscription '{params['sub']}' could not be found."
            raise ArmError(404, "SubscriptionNotFound", message, mfe=False)
        if params["rg"].lower() != self.state.resource_group.lower():
            message = f"Resource group '{params['rg']}' could not be found."
            raise ArmError(404, "ResourceGroupNotFound", message, mfe=False)
        self.state.registry(params["reg"])  # 404 for an unknown registry
        args = [params[k] for k in ("name", "version") if params.get(k) is not None]
        return route.handler(self.state, request, params["reg"], *args)
