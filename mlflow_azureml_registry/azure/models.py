"""Model containers and model versions over the Azure ML REST API (no MLflow semantics here)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Optional

from .arm import ArmClient
from .urls import segment
from .workspace import Target

Json = dict[str, Any]


class ModelAssets:
    """Thin, typed access to ``{workspace}/models`` and ``{workspace}/models/{name}/versions``.

    Registries have the same paths under ``{registry}``, with long-running writes: see :class:`RegistryModels`.
    """

    def __init__(self, arm: ArmClient, workspace: Target) -> None:
        self._arm = arm
        self.workspace = workspace

    def _container_path(self, name: str) -> str:
        return f"{self.workspace.arm_path}/models/{segment(name)}"

    def _version_path(self, name: str, version: str) -> str:
        return f"{self._container_path(name)}/versions/{segment(str(version))}"

    # -- containers ---------------------------------------------------------------------------------
    def get_container(self, name: str) -> Json:
        return self._arm.request("GET", self._container_path(name), what=f"GET model {name!r}").body

    def put_container(self, name: str, body: Json, *, read_back: bool = True) -> Json:
        """PUT the container; its answer carries it as stored (``read_back`` matters only for registries)."""
        return self._arm.request(
            "PUT", self._container_path(name), body=body, what=f"PUT model {name!r}", ok=(200, 201)
        ).body

    def list_containers(self, *, list_view_type: str = "All", page_size: Optional[int] = None) -> Iterator[Json]:
        params: dict[str, Any] = {"listViewType": list_view_type}
        if page_size:
            params["count"] = page_size
        yield from self._pages(f"{self.workspace.arm_path}/models", params, "LIST models")

    # -- versions -----------------------------------------------------------------------------------
    def get_version(self, name: str, version: str) -> Json:
        return self._arm.request(
            "GET", self._version_path(name, version), what=f"GET model version {name!r}/{version}"
        ).body

    def put_version(self, name: str, version: str, body: Json, *, read_back: bool = True) -> Json:
        """PUT the version; its answer carries it as stored (``read_back`` matters only for registries)."""
        return self._arm.request(
            "PUT",
            self._version_path(name, version),
            body=body,
            what=f"PUT model version {name!r}/{version}",
            ok=(200, 201),
        ).body

    def delete_version(self, name: str, version: str) -> None:
        self._arm.request(
            "DELETE", self._version_path(name, version), what=f"DELETE model version {name!r}/{version}"
        )

    def list_versions(
        self,
        name: str,
        *,
        list_view_type: str = "All",
        order_by: Optional[str] = None,
        top: Optional[int] = None,
        tags: Optional[str] = None,
        properties: Optional[str] = None,
        stage: Optional[str] = None,
    ) -> Iterator[Json]:
        """All versions, page by page (the service's ``nextLink`` carries the filters)."""
        params: dict[str, Any] = {"listViewType": list_view_type}
        for key, value in (
            ("$orderBy", order_by),
            ("$top", top),
            ("tags", tags),
            ("properties", properties),
            ("stage", stage),
        ):
            if value is not None:
                params[key] = value
        yield from self._pages(f"{self._container_path(name)}/versions", params, f"LIST versions of {name!r}")

    def _pages(self, path: str, params: dict[str, Any], what: str) -> Iterator[Json]:
        link: Optional[str] = path
        first = True
        while link:
            page = self._arm.request("GET", link, params=params if first else None, what=what).body or {}
            first = False
            yield from page.get("value") or []
            link = page.get("nextLink")


class RegistryModels(ModelAssets):
    """An Azure ML registry's ``{registry}/models``: the workspace's operations, on the registry's regional
    endpoint, where writes are long-running operations (``RegistryModelContainers_CreateOrUpdate``,
    ``RegistryModelVersions_CreateOrUpdate`` and ``_Delete`` in the REST spec, polled to their end here) and the
    versions of an unknown model list as ``200 {"value": []}`` rather than 404 (recorded; FIDELITY.md)."""

    def put_container(self, name: str, body: Json, *, read_back: bool = True) -> Json:
        """PUT, polled to its end; then, with ``read_back``, GET the container as stored (else ``body``)."""
        self._arm.request_lro("PUT", self._container_path(name), body=body, what=f"PUT model {name!r}")
        return self.get_container(name) if read_back else body

    def put_version(self, name: str, version: str, body: Json, *, read_back: bool = True) -> Json:
        """PUT (``202`` + ``Location``, polled until ``200 {"assetId": ...}``, recorded); then, with ``read_back``,
        GET the version as stored (the last poll does not carry it), else ``body``."""
        self._arm.request_lro(
            "PUT", self._version_path(name, version), body=body, what=f"PUT model version {name!r}/{version}"
        )
        return self.get_version(name, version) if read_back else body

    def delete_version(self, name: str, version: str) -> None:
        self._arm.request_lro(
            "DELETE", self._version_path(name, version), what=f"DELETE model version {name!r}/{version}"
        )

    def list_versions(self, name: str, **filters: Any) -> Iterator[Json]:
        """As for a workspace; an unknown model raises ``NotFound`` as a workspace answers (one container GET,
        made only when the list is empty)."""
        empty = True
        for resource in super().list_versions(name, **filters):
            empty = False
            yield resource
        if empty:
            self.get_container(name)  # NotFound for an unknown model
