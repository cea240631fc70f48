"""In-memory state of the emulated Azure ML control plane: workspaces, models, datastores, jobs.

Pure data and rules, no HTTP: handlers turn requests into calls here, and the rules (what a PUT
keeps, what a list returns, which errors arise) live in one place where tests can read them.
Every public method takes the one lock, so the threaded server can call in from any thread.
Behaviours are tagged in FIDELITY.md as spec / recorded / assumed.
"""

from __future__ import annotations

import copy
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Callable, Optional

PROVIDER = "Microsoft.MachineLearningServices"
MODEL_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9\-_]{0,254}$")  # spec: path parameter pattern
ASSET_PATH_ERROR = "Asset paths cannot be updated."  # recorded: the SDK matches "(UserError) " + this
LIST_VIEW_TYPES = {"activeonly": "ActiveOnly", "archivedonly": "ArchivedOnly", "all": "All"}
_RESOURCE_GROUPS_IN_URI = re.compile(r"(?i)(^azureml://subscriptions/[^/]+/)resourcegroups/")
_MFE_INFO = [{"type": "ComponentName", "info": {"value": "managementfrontend"}}]  # recorded


DEFAULT_PAGE_SIZE = 20
"""Items per list page: the real service's page of model containers (recorded; FIDELITY.md, *Lists*)."""


class ArmError(Exception):
    """An error the service answers with an ARM error body (common-types v3 ``ErrorResponse``)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        detail_code: Optional[str] = None,
        detail_message: Optional[str] = None,
        mfe: bool = True,
    ) -> None:
        super().__init__(f"({code}) {message}")
        self.status, self.code, self.message = status, code, message
        self.detail_code, self.detail_message, self.mfe = detail_code, detail_message, mfe

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.mfe:  # errors from the Azure ML front end carry details + additionalInfo (recorded)
            details = []
            if self.detail_code:
                details.append(
                    {
                        "code": self.detail_code,
                        "message": self.detail_message or self.message,
                        "details": [],
                        "additionalInfo": [],
                    }
                )
            error["details"] = details
            error["additionalInfo"] = copy.deepcopy(_MFE_INFO)
        return {"error": error}


def not_found(detail_code: str, detail_message: str) -> ArmError:
    return ArmError(
        404,
        "UserError",
        "The specified resource was not found.",
        detail_code=detail_code,
        detail_message=detail_message,
    )


def user_error(message: str, status: int = 400, detail_code: str = "BadRequest") -> ArmError:
    return ArmError(status, "UserError", message, detail_code=detail_code, detail_message=message)


def timestamp(ns: Optional[int] = None) -> str:
    """ARM timestamp as the service writes it: 7-digit fraction, ``+00:00`` (recorded)."""
    ns = time.time_ns() if ns is None else ns
    seconds, rest = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{rest // 100:07d}+00:00"


def normalise_model_uri(uri: Any) -> Any:
    """``azureml://subscriptions/<s>/resourcegroups/`` -> ``resourceGroups`` (recorded)."""
    if isinstance(uri, str):
        return _RESOURCE_GROUPS_IN_URI.sub(r"\1resourceGroups/", uri)
    return uri


@dataclass
class _Record:
    """One stored asset: its ``properties`` (unknown keys kept verbatim) and its system data."""

    properties: dict[str, Any]
    created_ns: int
    modified_ns: int
    seq: int  # creation order, ties on equal timestamps

    def system_data(self, user: str) -> dict[str, Any]:
        return {
            "createdAt": timestamp(self.created_ns),
            "createdBy": user,
            "createdByType": "User",
            "lastModifiedAt": timestamp(self.modified_ns),
            "lastModifiedBy": user,
            "lastModifiedByType": "User",
        }


@dataclass
class _Container(_Record):
    versions: dict[str, _Record] = field(default_factory=dict)


@dataclass
class Workspace:
    """One workspace: its models, datastores and jobs."""

    name: str
    models: dict[str, _Container] = field(default_factory=dict)
    next_version_floor: dict[str, int] = field(default_factory=dict)  # survives container deletes
    datastores: dict[str, _Record] = field(default_factory=dict)
    jobs: dict[str, _Record] = field(default_factory=dict)


@dataclass
class Page:
    """One page of a list: items and the continuation offset (None on the last page)."""

    items: list[dict[str, Any]]
    next_offset: Optional[int]


class ServiceState:
    """All workspaces of one emulated subscription and resource group."""

    def __init__(
        self, subscription_id: str, resource_group: str, *, user: str = "Local User", page_size: int = DEFAULT_PAGE_SIZE
    ) -> None:
        self.subscription_id = subscription_id
        self.resource_group = resource_group
        self.user = user
        self.page_size = page_size
        self.workspaces: dict[str, Workspace] = {}
        self.secret_provider: Optional[Callable[[str, str, int], dict[str, Any]]] = None
        self._lock = threading.RLock()
        self._seq = 0

    # ----------------------------------------------------------------- workspaces and ids
    def add_workspace(self, name: str) -> Workspace:
        with self._lock:
            return self.workspaces.setdefault(name.lower(), Workspace(name))

    def workspace(self, name: str) -> Workspace:
        """Workspace names are case-insensitive in ARM; unknown names answer ARM's 404."""
        ws = self.workspaces.get(name.lower())
        if ws is None:
            raise ArmError(
                404,
                "ResourceNotFound",
                f"The Resource '{PROVIDER}/workspaces/{name}' under resource group "
                f"'{self.resource_group}' was not found.",
                mfe=False,
            )
        return ws

    def workspace_id(self, ws: Workspace) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/{PROVIDER}/workspaces/{ws.name}"
        )

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # ----------------------------------------------------------------- datastores
    def add_datastore(self, workspace: str, name: str, properties: dict[str, Any]) -> None:
        with self._lock:
            now = time.time_ns()
            self.workspace(workspace).datastores[name] = _Record(
                copy.deepcopy(properties), now, now, self._next_seq()
            )

    def get_datastore(self, workspace: str, name: str) -> dict[str, Any]:
        with self._lock:
            ws = self.workspace(workspace)
            record = ws.datastores.get(name)
            if record is None:
                raise not_found("DatastoreNotFound", f"Datastore with name: {name} not found.")
            return self._datastore_resource(ws, name, record)

    def list_datastores(
        self,
        workspace: str,
        *,
        is_default: Optional[bool],
        names: list[str],
        order_asc: bool,
        offset: int,
        count: Optional[int],
    ) -> Page:
        with self._lock:
            ws = self.workspace(workspace)
            chosen = [
                n
                for n in sorted(ws.datastores, reverse=not order_asc)
                if (is_default is None or bool(ws.datastores[n].properties.get("isDefault")) == is_default)
                and (not names or n in names)
            ]
            return self._page(
                [self._datastore_resource(ws, n, ws.datastores[n]) for n in chosen], offset, count
            )

    def datastore_secrets(self, workspace: str, name: str, expire_after_hours: int) -> dict[str, Any]:
        """``listSecrets``: a SAS, as the real service returns today (recorded)."""
        with self._lock:
            record = self.workspace(workspace).datastores.get(name)
            if record is None:
                raise not_found("DatastoreNotFound", f"Datastore with name: {name} not found.")
            props = record.properties
            if props["credentials"].get("credentialsType") == "None":
                raise user_error(f"Datastore {name} is identity-based and has no secrets.")
            if self.secret_provider is None:
                raise ArmError(500, "InternalServerError", "No secret provider configured.")
            return self.secret_provider(props["accountName"], props["containerName"], expire_after_hours)

    def _datastore_resource(self, ws: Workspace, name: str, record: _Record) -> dict[str, Any]:
        return {
            "id": f"{self.workspace_id(ws)}/datastores/{name}",
            "name": name,
            "type": f"{PROVIDER}/workspaces/datastores",
            "properties": copy.deepcopy(record.properties),
            "systemData": record.system_data(self.user),
        }

    # ----------------------------------------------------------------- jobs
    def put_job(self, workspace: str, name: str, properties: dict[str, Any]) -> dict[str, Any]:
        """Seed a job (tests): ``properties`` as ``GET jobs/{name}`` returns them, e.g. ``outputs``."""
        with self._lock:
            ws = self.workspace(workspace)
            props = {
                "jobType": "Command",
                "status": "Completed",
                "displayName": name,
                "experimentName": "Default",
                "isArchived": False,
                "outputs": {},
            }
            props.update(copy.deepcopy(properties))
            now = time.time_ns()
            ws.jobs[name] = _Record(props, now, now, self._next_seq())
            return self.get_job(workspace, name)

    def get_job(self, workspace: str, name: str) -> dict[str, Any]:
        with self._lock:
            ws = self.workspace(workspace)
            job = ws.jobs.get(name)
            if job is None:
                raise not_found("JobNotFound", f"Job {name} not found.")
            return {
                "id": f"{self.workspace_id(ws)}/jobs/{name}",
                "name": name,
                "type": f"{PROVIDER}/workspaces/jobs",
                "properties": copy.deepcopy(job.properties),
                "systemData": job.system_data(self.user),
            }

    # ----------------------------------------------------------------- model containers
    def _container(self, ws: Workspace, name: str) -> _Container:
        container = ws.models.get(name)
        if container is None:
            raise not_found("ModelNotFound", f"Model container with name: {name} not found.")  # recorded
        return container

    def _container_resource(self, ws: Workspace, name: str, c: _Container) -> dict[str, Any]:
        props = copy.deepcopy(c.properties)
        props["latestVersion"] = self._latest_version(c)
        props["nextVersion"] = str(self._next_version(ws, name))
        props["provisioningState"] = "Succeeded"
        return {
            "id": f"{self.workspace_id(ws)}/models/{name}",
            "name": name,
            "type": f"{PROVIDER}/workspaces/models",
            "properties": props,
            "systemData": c.system_data(self.user),
        }

    @staticmethod
    def _latest_version(c: _Container) -> Optional[str]:
        """The most recently created version that still exists (assumed)."""
        if not c.versions:
            return None
        return max(c.versions.items(), key=lambda kv: kv[1].seq)[0]

    @staticmethod
    def _next_version(ws: Workspace, name: str) -> int:
        return ws.next_version_floor.get(name, 1)

    def get_model(self, workspace: str, name: str) -> dict[str, Any]:
        with self._lock:
            ws = self.workspace(workspace)
            return self._container_resource(ws, name, self._container(ws, name))

    def put_model(self, workspace: str, name: str, properties: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        """Create or update a container; returns (created, resource). Read-only keys are ignored."""
        with self._lock:
            ws = self.workspace(workspace)
            props = {
                k: copy.deepcopy(v)
                for k, v in properties.items()
                if k not in ("latestVersion", "nextVersion", "provisioningState")
            }
            props = {"description": None, "tags": {}, "properties": {}, "isArchived": False, **props}
            for key in ("tags", "properties"):
                props[key] = props[key] or {}
            now = time.time_ns()
            existing = ws.models.get(name)
            if existing is None:
                ws.models[name] = _Container(props, now, now, self._next_seq())
                return True, self._container_resource(ws, name, ws.models[name])
            existing.properties, existing.modified_ns = props, now
            return False, self._container_resource(ws, name, existing)

    def delete_model(self, workspace: str, name: str) -> bool:
        """Delete an empty container (assumed: a container with versions is refused with 409)."""
        with self._lock:
            ws = self.workspace(workspace)
            container = ws.models.get(name)
            if container is None:
                return False
            if container.versions:
                raise user_error(
                    f"Model container {name} has {len(container.versions)} version(s); delete them first.",
                    status=409,
                    detail_code="Conflict",
                )
            del ws.models[name]
            return True

    def list_models(self, workspace: str, *, view: str, offset: int, count: Optional[int]) -> Page:
        with self._lock:
            ws = self.workspace(workspace)
            # Newest first. ws.models is in creation order (a container's seq is given as it is inserted and
            # never changes), so reversing it is the seq order without sorting every container per page.
            newest_first = reversed(ws.models.items())
            chosen = ((n, c) for n, c in newest_first if view == "All" or _in_view(c.properties, view))
            page = self._page(chosen, offset, count)  # build resources for this page only
            return Page([self._container_resource(ws, n, c) for n, c in page.items], page.next_offset)

    # ----------------------------------------------------------------- model versions
    def _version_resource(self, ws: Workspace, name: str, version: str, r: _Record) -> dict[str, Any]:
        props = copy.deepcopy(r.properties)
        props["provisioningState"] = "Succeeded"
        return {
            "id": f"{self.workspace_id(ws)}/models/{name}/versions/{version}",
            "name": version,
            "type": f"{PROVIDER}/workspaces/models/versions",
            "properties": props,
            "systemData": r.system_data(self.user),
        }

    def get_version(self, workspace: str, name: str, version: str) -> dict[str, Any]:
        with self._lock:
            ws = self.workspace(workspace)
            record = self._container(ws, name).versions.get(version)
            if record is None:
                raise not_found("ModelVersionNotFound", f"Model version {name}:{version} not found.")
            return self._version_resource(ws, name, version, record)

    def put_version(
        self, workspace: str, name: str, version: str, properties: dict[str, Any]
    ) -> tuple[bool, dict[str, Any]]:
        """Create or update a version; returns (created, resource).

        Creates the container when absent (the SDK never creates one), keeps ``createdAt`` and the
        stage on update, refuses a changed ``modelUri``, and stores unknown keys verbatim.
        """
        with self._lock:
            ws = self.workspace(workspace)
            props = {k: copy.deepcopy(v) for k, v in properties.items() if k != "provisioningState"}
            if "modelUri" in props:
                props["modelUri"] = normalise_model_uri(props["modelUri"])
            container = ws.models.get(name)
            if container is None:
                self.put_model(workspace, name, {})
                container = ws.models[name]
            now = time.time_ns()
            existing = container.versions.get(version)
            if existing is not None:
                old = existing.properties
                if "modelUri" in props and props["modelUri"] != old.get("modelUri"):
                    raise user_error(ASSET_PATH_ERROR)
                props.setdefault("modelUri", old.get("modelUri"))
                if "stage" not in props:
                    props["stage"] = old.get("stage")  # assumed: an omitted stage is kept
                existing.properties, existing.modified_ns = _version_defaults(props), now
                return False, self._version_resource(ws, name, version, existing)
            record = _Record(_version_defaults(props), now, now, self._next_seq())
            container.versions[version] = record
            if version.isdigit():  # nextVersion: monotonic, integers only (assumed), never reset
                ws.next_version_floor[name] = max(self._next_version(ws, name), int(version) + 1)
            return True, self._version_resource(ws, name, version, record)

    def delete_version(self, workspace: str, name: str, version: str) -> bool:
        with self._lock:
            ws = self.workspace(workspace)
            container = self._container(ws, name)
            return container.versions.pop(version, None) is not None

    def list_versions(
        self,
        workspace: str,
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
        stage: Optional[str],
    ) -> Page:
        with self._lock:
            ws = self.workspace(workspace)
            container = self._container(ws, name)  # recorded: 404 ModelNotFound, not an empty list
            rows = sorted(
                container.versions.items(), key=lambda kv: (kv[1].created_ns, kv[1].seq), reverse=newest_first
            )
            chosen = [
                (v, r)
                for v, r in rows
                if _in_view(r.properties, view)
                and (version is None or v == version)
                and (description is None or r.properties.get("description") == description)
                and (stage is None or r.properties.get("stage") == stage)
                and _matches(r.properties.get("tags"), tags)
                and _matches(r.properties.get("properties"), properties)
            ]
            # $top is the page's size, not the list's: the rest follows through nextLink (recorded: $top=1 on a
            # model with 4 versions answered 1 version and a nextLink that keeps $top=1)
            page = self._page(chosen, offset, top)  # build resources for this page only
            return Page([self._version_resource(ws, name, v, r) for v, r in page.items], page.next_offset)

    # ----------------------------------------------------------------- paging
    def _page(self, items: Iterable[Any], offset: int, count: Optional[int]) -> Page:
        """Items ``offset`` to ``offset + size``; one more is read only to know whether a next page exists."""
        size = count if count and count > 0 else self.page_size
        window = list(islice(items, offset, offset + size + 1))
        return Page(window[:size], offset + size if len(window) > size else None)


def _version_defaults(props: dict[str, Any]) -> dict[str, Any]:
    """Fill what the service fills: ``flavors: {}``, ``stage: Development`` (recorded), nulls."""
    out = {
        "description": None,
        "tags": {},
        "properties": {},
        "isArchived": False,
        "isAnonymous": False,
        "flavors": {},
        "modelType": None,
        "modelUri": None,
        "jobName": None,
        "stage": None,
        "autoDeleteSetting": None,
        "intellectualProperty": None,
    }
    out.update(props)
    for key in ("tags", "properties", "flavors"):
        out[key] = out[key] or {}
    if out["stage"] is None:
        out["stage"] = "Development"
    return out


def _in_view(props: dict[str, Any], view: str) -> bool:
    archived = bool(props.get("isArchived"))
    return view == "All" or (view == "ArchivedOnly") == archived


def _matches(values: Any, wanted: list[tuple[str, Optional[str]]]) -> bool:
    """``tag1,tag2=value2``: a bare name needs the key, ``k=v`` needs that value (spec wording)."""
    values = values or {}
    return all(k in values and (v is None or values[k] == v) for k, v in wanted)
