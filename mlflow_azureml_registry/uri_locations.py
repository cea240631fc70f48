"""Where model files are, as the plugin's artifact URIs name them: a folder on a workspace datastore, or a model
version's files in a workspace or registry; and the registry URI of a workspace or registry. Built here; read from
URIs by :mod:`.uri`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .azure.workspace import Target, WorkspaceRef
from .uri_parts import SCHEME


def registry_uri(target: Target) -> str:
    """The registry URI of a workspace or registry (its short form)."""
    return f"{SCHEME}://{target.uri_path}"


@dataclass(frozen=True)
class DatastoreLocation:
    """A folder (or file) on a workspace datastore.

    ``manifest_sha256``, when known, is the digest of the per-file SHA-256 manifest the files must
    match; artifact URIs carry it (``.../sha256/<digest>/paths/...``) so downloads can be verified
    from the URI alone.
    """

    workspace: WorkspaceRef
    datastore: str
    path: str  # no leading or trailing '/'
    manifest_sha256: Optional[str] = None

    def child(self, relative: str) -> DatastoreLocation:
        relative = relative.strip("/")
        path = f"{self.path}/{relative}" if self.path and relative else relative or self.path
        return DatastoreLocation(self.workspace, self.datastore, path, self.manifest_sha256)

    @property
    def artifact_uri(self) -> str:
        digest = f"/sha256/{self.manifest_sha256}" if self.manifest_sha256 else ""
        return f"{registry_uri(self.workspace)}/datastores/{self.datastore}{digest}/paths/{self.path}"

    @property
    def asset_uri(self) -> str:
        """The ``modelUri`` form the Azure ML service stores."""
        return f"{self.workspace.asset_prefix}/datastores/{self.datastore}/paths/{self.path}"


@dataclass(frozen=True)
class VersionFiles:
    """The files of one model version in a workspace or registry, or a file or folder ``path`` inside them:
    ``azureml-registry://<workspace or registry>/models/<name>/versions/<version>[/<path>]``.

    The artifact URIs the store hands out for registry versions (their storage is Azure ML's, reached through a
    short-lived SAS per download), and the source form that names a version in another workspace or registry.
    """

    target: Target
    model_name: str
    version: str  # "" for ``.../versions`` (the parent MLflow may open): the first path segment is the version
    path: str = ""  # inside the version's folder, no leading or trailing '/'

    def child(self, relative: str) -> VersionFiles:
        relative = relative.strip("/")
        if not self.version:
            version, _, rest = relative.partition("/")
            return VersionFiles(self.target, self.model_name, version, rest)
        path = f"{self.path}/{relative}" if self.path and relative else relative or self.path
        return VersionFiles(self.target, self.model_name, self.version, path)

    @property
    def artifact_uri(self) -> str:
        tail = "".join(f"/{part}" for part in (self.version, self.path) if part)
        return f"{registry_uri(self.target)}/models/{self.model_name}/versions{tail}"

    @property
    def asset_id(self) -> str:
        """Azure ML's id of the version (``azureml://registries/<r>/models/<n>/versions/<v>`` or the workspace's)."""
        return f"{self.target.asset_prefix}/models/{self.model_name}/versions/{self.version}"
