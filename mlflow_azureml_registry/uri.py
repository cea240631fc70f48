"""The plugin's URI scheme: registry URIs (a workspace) and artifact URIs (a datastore path in it).

The scheme is ``azureml-registry`` because Microsoft's ``azureml-mlflow`` already owns ``azureml``
for MLflow plugins, and Azure ML datastore paths are ``azureml://`` too (see design.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import unquote

from .azure.workspace import WorkspaceRef

SCHEME = "azureml-registry"

_WORKSPACE = re.compile(
    r"subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/"
    r"(?:providers/Microsoft\.MachineLearningServices/)?workspaces/(?P<ws>[^/?#]+)",
    re.IGNORECASE,
)
_LONG_PREFIX = re.compile(r"^[A-Za-z0-9.\-]+(?::\d+)?/mlflow/v[0-9.]+/", re.IGNORECASE)
# A path may be empty: MLflow opens the parent of ``.../paths/<file>`` as the repository root.
_DATASTORE_PATH = re.compile(
    r"^/datastores/(?P<ds>[^/]+)(?:/sha256/(?P<digest>[0-9a-f]{64}))?/paths(?:/(?P<path>.*))?$"
)

# Azure's naming rules for the segments, checked after percent-decoding: a decoded '/', '..' or control
# character would otherwise change which resource the request URL names.
_SUBSCRIPTION = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-]{0,63}")
_RESOURCE_GROUP = re.compile(r"[\w\-.()]{0,89}[\w\-()]")  # ARM: not ending with '.'
_WORKSPACE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,254}")
_DATASTORE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-]{0,254}")
_SEGMENT_RULES = (
    ("subscription id", _SUBSCRIPTION, "letters, digits and '-'"),
    ("resource group", _RESOURCE_GROUP, "letters, digits, '_', '-', '.', '(', ')', not ending with '.'"),
    ("workspace name", _WORKSPACE_NAME, "letters, digits, '_' and '-', starting with a letter or digit"),
)

REGISTRY_URI_SHAPE = (
    f"{SCHEME}://subscriptions/<subscription-id>/resourceGroups/<resource-group>/workspaces/<workspace>"
    f" (or the workspace's MLflow tracking URI from Azure ML with the scheme changed to {SCHEME}://)"
)


class InvalidUri(ValueError):
    """The URI does not have one of the accepted shapes; the message names the expected one."""


def workspace_ref(subscription: str, resource_group: str, workspace: str, *, uri: Any = None) -> WorkspaceRef:
    """A workspace from (already decoded) URI segments, refusing names Azure would never give a workspace."""
    for (what, rule, allowed), value in zip(_SEGMENT_RULES, (subscription, resource_group, workspace)):
        if not rule.fullmatch(value):
            where = f" in {uri!r}" if uri is not None else ""
            raise InvalidUri(f"Invalid {what} {value!r}{where}: Azure allows {allowed}")
    return WorkspaceRef(subscription, resource_group, workspace)


def _split(uri: str, *, query_allowed: bool = True) -> tuple[WorkspaceRef, str]:
    prefix = f"{SCHEME}:"
    if not isinstance(uri, str) or not uri.lower().startswith(prefix):
        raise InvalidUri(f"Expected a URI of the form {REGISTRY_URI_SHAPE}; got {uri!r}")
    rest = uri[len(prefix):].lstrip("/")
    if not query_allowed and ("?" in rest or "#" in rest):
        raise InvalidUri(
            f"Expected a URI of the form {REGISTRY_URI_SHAPE}; got {uri!r} (a registry URI takes no query string "
            "or fragment: settings are environment variables, see the README)"
        )
    rest = rest.split("?", 1)[0].split("#", 1)[0]
    if not rest.lower().startswith("subscriptions/"):
        long_form = _LONG_PREFIX.match(rest)
        if not long_form:
            raise InvalidUri(f"Expected a URI of the form {REGISTRY_URI_SHAPE}; got {uri!r}")
        rest = rest[long_form.end():]
    match = _WORKSPACE.match(rest)
    if not match:
        raise InvalidUri(f"Expected a URI of the form {REGISTRY_URI_SHAPE}; got {uri!r}")
    ref = workspace_ref(unquote(match["sub"]), unquote(match["rg"]), unquote(match["ws"]), uri=uri)
    return ref, rest[match.end():]


def parse_registry_uri(uri: str) -> WorkspaceRef:
    """The workspace a registry URI names, e.g. ``azureml-registry://subscriptions/s/resourceGroups/r/workspaces/w``."""
    ref, tail = _split(uri, query_allowed=False)
    if tail.strip("/"):
        raise InvalidUri(
            f"Expected a URI of the form {REGISTRY_URI_SHAPE}; got {uri!r} (unexpected {tail!r} after the workspace)"
        )
    return ref


def registry_uri(workspace: WorkspaceRef) -> str:
    return (
        f"{SCHEME}://subscriptions/{workspace.subscription_id}/resourceGroups/{workspace.resource_group}"
        f"/workspaces/{workspace.workspace_name}"
    )


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


def check_datastore_name(name: str, uri: Any) -> str:
    if not _DATASTORE_NAME.fullmatch(name):
        raise InvalidUri(f"Invalid datastore name {name!r} in {uri!r}: Azure allows letters, digits, '_' and '-'")
    return name


def check_datastore_path(path: str, uri: Any) -> str:
    """A path inside a datastore, without leading or trailing '/'; '.' and '..' segments are refused (the
    service would resolve them to another folder than the one named), as are control characters."""
    path = path.strip("/")
    if any(segment in (".", "..") for segment in path.split("/")):
        raise InvalidUri(f"Invalid datastore path in {uri!r}: '.' and '..' segments are not allowed")
    if re.search(r"[\x00-\x1f\x7f]", path):
        raise InvalidUri(f"Invalid datastore path in {uri!r}: control characters are not allowed")
    return path


def parse_artifact_uri(uri: str) -> DatastoreLocation:
    ref, tail = _split(uri)
    match = _DATASTORE_PATH.match(tail)
    if not match:
        raise InvalidUri(
            f"Expected an artifact URI of the form {SCHEME}://subscriptions/<s>/resourceGroups/<rg>/workspaces/<w>"
            f"/datastores/<datastore>/paths/<path>; got {uri!r}"
        )
    datastore = check_datastore_name(unquote(match["ds"]), uri)
    path = check_datastore_path(unquote(match["path"] or ""), uri)
    return DatastoreLocation(ref, datastore, path, match["digest"])


_ASSET_URI = re.compile(
    r"^azureml://(?:subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/"
    r"(?:providers/Microsoft\.MachineLearningServices/)?workspaces/(?P<ws>[^/]+)/)?"
    r"datastores/(?P<ds>[^/]+)/paths/(?P<path>.+)$",
    re.IGNORECASE,
)


def parse_asset_uri(model_uri: str, default_workspace: WorkspaceRef) -> DatastoreLocation:
    """A version's ``modelUri`` (long or short ``azureml://`` datastore form) as a datastore location."""
    match = _ASSET_URI.match(model_uri or "")
    if not match:
        raise InvalidUri(f"Model files at {model_uri!r} are not on a workspace datastore")
    ref = default_workspace
    if match["sub"]:
        ref = WorkspaceRef(match["sub"], match["rg"], match["ws"])
    return DatastoreLocation(ref, match["ds"], match["path"].strip("/"))


def registry_uri_from_ml_client(ml_client: Any) -> str:
    """The registry URI for the workspace an ``azure.ai.ml.MLClient`` is bound to."""
    workspace = getattr(ml_client, "workspace_name", None)
    if not workspace:
        raise ValueError("This MLClient is not bound to a workspace (registries are not supported yet)")
    return registry_uri(WorkspaceRef(ml_client.subscription_id, ml_client.resource_group_name, workspace))


def registry_uri_from_tracking_uri(tracking_uri: str) -> str:
    """The registry URI for an Azure ML MLflow tracking URI (``azureml://<region>.api.azureml.ms/mlflow/...``)."""
    if not isinstance(tracking_uri, str) or not tracking_uri.lower().startswith("azureml://"):
        raise InvalidUri(f"Expected an Azure ML tracking URI starting with azureml://; got {tracking_uri!r}")
    return registry_uri(parse_registry_uri(f"{SCHEME}://{tracking_uri[len('azureml://'):]}"))
