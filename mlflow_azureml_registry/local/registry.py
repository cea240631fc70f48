"""In-memory state of the emulated Azure ML registries: model containers and versions, pending uploads,
long-running operations.

A registry is reached through discovery and a data plane of its own (``/mferp/managementfrontend/...``),
not through ARM; its writes are long-running operations polled at ``/assetstore/v1.0/operations/{id}``,
and its files live in registry-managed storage handed out as SAS URIs (``tempdatarefs``, ``datarefs``).
HTTP lives in :mod:`.registry_http`; behaviours are tagged in FIDELITY.md ("Registries").
"""

from __future__ import annotations

import copy
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Callable, Optional, Protocol

from .state import ASSET_PATH_ERROR, ArmError, Page, _Container, _in_view, _matches, _Record, not_found, user_error

REGISTRY_ASSET_ID = "azureml://registries/{}/{}/{}/versions/{}"  # the SDK's REGISTRY_ASSET_ID (recorded)
_READ_ONLY_CONTAINER_KEYS = ("latestVersion", "nextVersion", "provisioningState")


class RegistryStorage(Protocol):
    """What the registry needs of its blob storage (implemented over Azurite in :mod:`.registry_http`)."""

    def create_container(self, account: str, container: str) -> None: ...

    def container_sas(self, account: str, container: str, permission: str) -> str: ...

    def path_style_url(self, account: str, container: str) -> str: ...

    def host_style_url(self, account: str, container: str) -> str: ...

    def owns(self, account: str, url: str) -> Optional[tuple[str, str]]:
        """(container, path) when ``url`` is a blob URL of ``account`` (path- or host-style), else None."""


@dataclass
class Operation:
    """One long-running operation: ``pending`` more polls answer 202; then ``commit`` runs and it is done."""

    id: str
    registry: str
    result: Optional[dict[str, Any]]
    commit: Optional[Callable[[], None]]
    pending: int
    error: Optional[ArmError] = None

    @property
    def done(self) -> bool:
        return self.commit is None


@dataclass
class Registry:
    name: str
    account: str  # the registry-managed storage account (Azurite)
    registry_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    models: dict[str, _Container] = field(default_factory=dict)
    next_version_floor: dict[str, int] = field(default_factory=dict)

    @property
    def asset_name(self) -> str:
        """Registry names appear lower-cased in asset ids (recorded: ``testFeed`` -> ``azureml://registries/testfeed``)."""
        return self.name.lower()

    def upload_container(self, model: str, version: str) -> str:
        """Per-version container ``<registry name[:10]>-<uuid5>`` (recorded form; the derivation is assumed)."""
        asset = REGISTRY_ASSET_ID.format(self.asset_name, "models", model, version)
        return f"{self.asset_name[:10].rstrip('-')}-{uuid.uuid5(uuid.NAMESPACE_URL, asset)}"


class RegistryState:
    """All registries of the local workspace's subscription and resource group."""

    def __init__(
        self,
        subscription_id: str,
        resource_group: str,
        tenant_id: str,
        *,
        user: str = "Local User",
        page_size: Callable[[], int] = lambda: 100,
    ) -> None:
        self.subscription_id, self.resource_group, self.tenant_id = subscription_id, resource_group, tenant_id
        self.user = user
        self.page_size = page_size
        self.registries: dict[str, Registry] = {}
        self.operations: dict[str, Operation] = {}
        self.storage: Optional[RegistryStorage] = None
        self.polls_in_progress = 0  # polls answered 202 before an operation completes (recorded: 1; 0 allowed)
        self._lock = threading.RLock()
        self._seq = 0

    # ----------------------------------------------------------------- registries
    def add_registry(self, name: str, account: str) -> Registry:
        with self._lock:
            return self.registries.setdefault(name.lower(), Registry(name, account))

    def find(self, name: str) -> Optional[Registry]:
        return self.registries.get(name.lower())

    def registry(self, name: str) -> Registry:
        reg = self.find(name)
        if reg is None:
            raise ArmError(
                404,
                "ResourceNotFound",
                f"The Resource 'Microsoft.MachineLearningServices/registries/{name}' under resource group "
                f"'{self.resource_group}' was not found.",
                mfe=False,
            )
        return reg

    def storage_account_arm_id(self, reg: Registry) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.Storage/storageAccounts/{reg.account}"
        )

    def _storage(self) -> RegistryStorage:
        if self.storage is None:
            raise ArmError(500, "InternalServerError", "No registry storage configured.", mfe=False)
        return self.storage

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # ----------------------------------------------------------------- resources
    def _container_resource(self, reg: Registry, name: str, c: _Container) -> dict[str, Any]:
        props = copy.deepcopy(c.properties)
        latest = max(c.versions.items(), key=lambda kv: kv[1].seq)[0] if c.versions else None
        props["latestVersion"] = latest
        props["nextVersion"] = str(reg.next_version_floor.get(name, 1))
        return {
            "id": f"azureml://registries/{reg.asset_name}/models/{name}",
            "name": name,
            "type": "models",
            "properties": props,
            "systemData": c.system_data(self.user),
        }

    def _version_resource(self, reg: Registry, name: str, version: str, r: _Record) -> dict[str, Any]:
        return {
            "id": REGISTRY_ASSET_ID.format(reg.asset_name, "models", name, version),
            "name": name,  # recorded: the model's name, not the version (workspaces answer the version)
            "type": "models",
            "properties": copy.deepcopy(r.properties),
            "systemData": r.system_data(self.user),
        }

    def _container(self, reg: Registry, name: str) -> _Container:
        container = reg.models.get(name)
        if container is None:
            raise not_found("ModelNotFound", f"Model container with name: {name} not found.")
        return container

    # ----------------------------------------------------------------- containers
    def get_model(self, registry: str, name: str) -> dict[str, Any]:
        with self._lock:
            reg = self.registry(registry)
            return self._container_resource(reg, name, self._container(reg, name))

    def list_models(self, registry: str, *, view: str, offset: int) -> Page:
        with self._lock:
            reg = self.registry(registry)
            rows = [(n, c) for n, c in reversed(reg.models.items()) if _in_view(c.properties, view)]
            page = self._page(rows, offset)
            return Page([self._container_resource(reg, n, c) for n, c in page.items], page.next_offset)

    def _put_model_now(self, reg: Registry, name: str, properties: dict[str, Any]) -> None:
        props = {k: copy.deepcopy(v) for k, v in properties.items() if k not in _READ_ONLY_CONTAINER_KEYS}
        props = {"description": None, "tags": {}, "properties": {}, "isArchived": False, **props}
        for key in ("tags", "properties"):
            props[key] = props[key] or {}
        now = time.time_ns()
        existing = reg.models.get(name)
        if existing is None:
            reg.models[name] = _Container(props, now, now, self._next_seq())
        else:
            existing.properties, existing.modified_ns = props, now

    def put_model(self, registry: str, name: str, properties: dict[str, Any]) -> Operation:
        with self._lock:
            reg = self.registry(registry)
            asset = f"azureml://registries/{reg.asset_name}/models/{name}"
            return self._operation(reg, {"assetId": asset}, lambda: self._put_model_now(reg, name, properties))

    def delete_model(self, registry: str, name: str) -> Optional[Operation]:
        """None when there is no such container (204); refused with 409 while it has versions (assumed)."""
        with self._lock:
            reg = self.registry(registry)
            container = reg.models.get(name)
            if container is None:
                return None
            if container.versions:
                raise user_error(
                    f"Model container {name} has {len(container.versions)} version(s); delete them first.",
                    status=409,
                    detail_code="Conflict",
                )
            return self._operation(reg, None, lambda: reg.models.pop(name, None) and None)

    # ----------------------------------------------------------------- versions
    def get_version(self, registry: str, name: str, version: str) -> dict[str, Any]:
        with self._lock:
            reg = self.registry(registry)
            record = self._container(reg, name).versions.get(version)
            if record is None:
                raise not_found("ModelVersionNotFound", f"Model version {name}:{version} not found.")
            return self._version_resource(reg, name, version, record)

    def put_version(self, registry: str, name: str, version: str, properties: dict[str, Any]) -> Operation:
        """Validated now (a changed ``modelUri`` is refused at once); written when the operation completes."""
        with self._lock:
            reg = self.registry(registry)
            props = {k: copy.deepcopy(v) for k, v in properties.items() if k != "provisioningState"}
            if isinstance(props.get("modelUri"), str):
                props["modelUri"] = self._registry_uri(reg, props["modelUri"])
            container = reg.models.get(name)
            existing = container.versions.get(version) if container is not None else None
            if existing is not None:
                if "modelUri" in props and props["modelUri"] != existing.properties.get("modelUri"):
                    raise user_error(ASSET_PATH_ERROR)
                props.setdefault("modelUri", existing.properties.get("modelUri"))
            asset = REGISTRY_ASSET_ID.format(reg.asset_name, "models", name, version)
            return self._operation(reg, {"assetId": asset}, lambda: self._put_version_now(reg, name, version, props))

    def _put_version_now(self, reg: Registry, name: str, version: str, props: dict[str, Any]) -> None:
        if name not in reg.models:
            self._put_model_now(reg, name, {})
        container = reg.models[name]
        now = time.time_ns()
        values = _version_defaults(props)
        existing = container.versions.get(version)
        if existing is not None:
            existing.properties, existing.modified_ns = values, now
            return
        container.versions[version] = _Record(values, now, now, self._next_seq())
        if version.isdigit():
            reg.next_version_floor[name] = max(reg.next_version_floor.get(name, 1), int(version) + 1)

    def delete_version(self, registry: str, name: str, version: str) -> Optional[Operation]:
        with self._lock:
            reg = self.registry(registry)
            container = reg.models.get(name)
            if container is None or version not in container.versions:
                return None
            return self._operation(reg, None, lambda: container.versions.pop(version, None) and None)

    def list_versions(
        self,
        registry: str,
        name: str,
        *,
        view: str,
        newest_first: bool,
        top: Optional[int],
        offset: int,
        version: Optional[str],
        description: Optional[str],
        tags: list[tuple[str, Optional[str]]],
        properties: list[tuple[str, Optional[str]]],
    ) -> Page:
        """An unknown model has no versions: ``200 {"value": []}`` (recorded), unlike workspaces (404)."""
        with self._lock:
            reg = self.registry(registry)
            container = reg.models.get(name)
            rows = sorted(
                (container.versions.items() if container else []),
                key=lambda kv: (kv[1].created_ns, kv[1].seq),
                reverse=newest_first,
            )
            chosen = [
                (v, r)
                for v, r in rows
                if _in_view(r.properties, view)
                and (version is None or v == version)
                and (description is None or r.properties.get("description") == description)
                and _matches(r.properties.get("tags"), tags)
                and _matches(r.properties.get("properties"), properties)
            ]
            if top is not None:
                chosen = chosen[:top]
            page = self._page(chosen, offset)
            return Page([self._version_resource(reg, name, v, r) for v, r in page.items], page.next_offset)

    # ----------------------------------------------------------------- storage references
    def temporary_reference(self, registry: str, name: str, version: str) -> dict[str, Any]:
        """``tempdatarefs``: a write SAS (``sr=c``, ``sp=rcwl``) on this version's own container (recorded).

        409 once the version exists (the SDK skips the upload on 409: "Asset already exists").
        """
        with self._lock:
            reg = self.registry(registry)
            container = reg.models.get(name)
            if container is not None and version in container.versions:
                raise user_error(f"Asset already exists: {name}:{version}.", status=409, detail_code="Conflict")
            blob_container = reg.upload_container(name, version)
        storage = self._storage()
        storage.create_container(reg.account, blob_container)
        sas = storage.container_sas(reg.account, blob_container, "rcwl")
        url = storage.path_style_url(reg.account, blob_container)
        return {
            "blobReferenceForConsumption": {
                "blobUri": url,
                "storageAccountArmId": self.storage_account_arm_id(reg),
                "credential": {"credentialType": "SAS", "sasUri": f"{url}?{sas}"},
            },
            "imageReferenceForConsumption": None,
            "temporaryDataReferenceId": str(uuid.uuid4()),
            "temporaryDataReferenceType": None,
        }

    def data_reference(self, registry: str, name: str, version: str) -> dict[str, Any]:
        """``datarefs``: the version's ``modelUri`` and a read SAS (``sr=c``, ``sp=rl``) on its container (recorded)."""
        with self._lock:
            reg = self.registry(registry)
            record = self._container(reg, name).versions.get(version)
            if record is None:
                raise not_found("ModelVersionNotFound", f"Model version {name}:{version} not found.")
            model_uri = record.properties.get("modelUri")
        storage = self._storage()
        owned = storage.owns(reg.account, model_uri) if isinstance(model_uri, str) else None
        if owned is None:
            raise user_error(f"Model {name}:{version} has no files in the registry's storage.")
        sas = storage.container_sas(reg.account, owned[0], "rl")
        return {
            "blobReferenceForConsumption": {
                "blobUri": model_uri,
                "storageAccountArmId": self.storage_account_arm_id(reg),
                "credential": {
                    "credentialType": "SAS",
                    "sasUri": f"{storage.path_style_url(reg.account, owned[0])}?{sas}",
                },
            }
        }

    def _registry_uri(self, reg: Registry, uri: str) -> str:
        """A blob URL of the registry's storage is stored host-style, without a query (the form the real
        service answers: ``https://<account>.blob.<suffix>/<container>/<path>``); others are kept as sent."""
        if self.storage is None:
            return uri
        owned = self.storage.owns(reg.account, uri)
        if owned is None:
            return uri
        container, path = owned
        return f"{self.storage.host_style_url(reg.account, container)}/{path}".rstrip("/")

    # ----------------------------------------------------------------- operations
    def _operation(
        self, reg: Registry, result: Optional[dict[str, Any]], commit: Callable[[], None]
    ) -> Operation:
        op = Operation(secrets.token_urlsafe(32), reg.name, result, commit, self.polls_in_progress)
        self.operations[op.id] = op
        if op.pending <= 0:
            self._complete(op)
        return op

    def _complete(self, op: Operation) -> None:
        commit, op.commit = op.commit, None
        if commit is not None:
            try:
                commit()
            except ArmError as err:
                op.error = err

    def poll(self, operation_id: str) -> Operation:
        with self._lock:
            op = self.operations.get(operation_id)
            if op is None:
                raise ArmError(404, "NotFound", f"Operation {operation_id} not found.", mfe=False)
            if op.commit is not None:
                if op.pending > 0:
                    op.pending -= 1  # answered 202 once more
                else:
                    self._complete(op)
            return op

    # ----------------------------------------------------------------- paging
    def _page(self, items: list[Any], offset: int) -> Page:
        size = self.page_size()
        window = list(islice(items, offset, offset + size + 1))
        return Page(window[:size], offset + size if len(window) > size else None)


def _version_defaults(props: dict[str, Any]) -> dict[str, Any]:
    """The registry's version ``properties`` (recorded keys; no ``stage`` or ``provisioningState``)."""
    out: dict[str, Any] = {
        "description": None,
        "tags": {},
        "properties": {},
        "isArchived": False,
        "isAnonymous": False,
        "flavors": {},
        "modelType": None,
        "modelUri": None,
        "originAssetId": None,
        "jobName": None,
        "intellectualProperty": None,
    }
    out.update(props)
    for key in ("tags", "properties", "flavors"):
        out[key] = out[key] or {}
    return out
