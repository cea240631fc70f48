"""The plugin's URI scheme, read: registry URIs (a workspace or an Azure ML registry) and artifact URIs (a
datastore path in a workspace, or a model version's files in either), and Azure ML's tracking URIs and ``MLClient``
turned into registry URIs.

The scheme is ``azureml-registry`` because Microsoft's ``azureml-mlflow`` already owns ``azureml``
for MLflow plugins, and Azure ML datastore paths are ``azureml://`` too (see design.md).

The rules for each part of a URI, and the quoting of inputs in messages, are :mod:`.uri_parts`; the locations an
artifact URI names, and the URIs built from them, :mod:`.uri_locations`. Every name callers import from this
module stays importable here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional, Union
from urllib.parse import unquote

from .azure.workspace import RegistryRef, Target, WorkspaceRef
from .uri_locations import DatastoreLocation, VersionFiles, registry_uri
from .uri_parts import (
    QUERY_FLAGS,
    SCHEME,
    TRACKING_SCHEME,
    InvalidUri,
    check_datastore_name,
    check_datastore_path,
    check_model_segments,
    quote_input,
    registry_ref,
    workspace_ref,
)

__all__ = [
    "ARTIFACT_URI_SHAPE",
    "REGISTRY_URI_SHAPE",
    "SCHEME",
    "TRACKING_SCHEME",
    "TRACKING_URI_SHAPE",
    "DatastoreLocation",
    "InvalidUri",
    "VersionFiles",
    "check_datastore_name",
    "check_datastore_path",
    "parse_artifact_uri",
    "parse_asset_uri",
    "parse_registry_uri",
    "parse_version_alias",
    "quote_input",
    "registry_ref",
    "registry_uri",
    "registry_uri_from_ml_client",
    "registry_uri_from_tracking_uri",
    "workspace_ref",
]

_WORKSPACE = re.compile(
    r"subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/"
    r"(?:providers/Microsoft\.MachineLearningServices/)?workspaces/(?P<ws>[^/?#]+)",
    re.IGNORECASE,
)
# An Azure ML registry (organisation-wide, not a workspace), with its subscription and resource group, or by name
# alone (Azure ML's registry discovery finds it).
_AZURE_ML_REGISTRY = re.compile(
    r"(?:subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/"
    r"(?:providers/Microsoft\.MachineLearningServices/)?)?registries/(?P<reg>[^/?#]+)",
    re.IGNORECASE,
)
# ``<host>[:port]/mlflow/v<version>/`` before ``subscriptions/``. The host is not used (requests go to Azure
# Resource Manager), so any DNS name is taken: regional, private-link and sovereign-cloud hosts alike.
_LONG_PREFIX = re.compile(r"^[A-Za-z0-9.\-]+(?::\d+)?/mlflow/v[0-9.]+/", re.IGNORECASE)
# A path may be empty: MLflow opens the parent of ``.../paths/<file>`` as the repository root.
_DATASTORE_PATH = re.compile(
    r"^/datastores/(?P<ds>[^/]+)(?:/sha256/(?P<digest>[0-9a-f]{64}))?/paths(?:/(?P<path>.*))?$"
)

REGISTRY_URI_SHAPE = (
    f"{SCHEME}://subscriptions/<subscription-id>/resourceGroups/<resource-group>/workspaces/<workspace>"
    f" (or the workspace's MLflow tracking URI from Azure ML with the scheme changed to {SCHEME}://), or for an "
    f"Azure ML registry {SCHEME}://registries/<registry> or "
    f"{SCHEME}://subscriptions/<subscription-id>/resourceGroups/<resource-group>/registries/<registry>"
)
TRACKING_URI_SHAPE = (
    f"{TRACKING_SCHEME}://<host>/mlflow/v<version>/subscriptions/<subscription-id>/resourceGroups/<resource-group>"
    "/providers/Microsoft.MachineLearningServices/workspaces/<workspace>[?[&is-remote=True]], as Azure ML gives it "
    "(ml_client.workspaces.get(<workspace>).mlflow_tracking_uri; SDK v1: Workspace.get_mlflow_tracking_uri(); "
    "in a job: MLFLOW_TRACKING_URI)"
)
ARTIFACT_URI_SHAPE = (
    f"{SCHEME}://subscriptions/<s>/resourceGroups/<rg>/workspaces/<w>/datastores/<datastore>/paths/<path>, or "
    f"{SCHEME}://<workspace or registry>/models/<name>/versions/<version>[/<path>]"
)

# Query keys whose value is a credential (old azureml-mlflow URIs embedded a token): refused, never echoed.
_CREDENTIAL_KEYS = ("auth", "auth-type", "token")
# ``.../versions`` alone: MLflow opens the parent of ``.../versions/<v>`` as a repository, and reads ``<v>`` in it.
_VERSION_FILES = re.compile(r"^/models/(?P<name>[^/]+)/versions(?:/(?P<version>[^/]+)(?:/(?P<path>.*))?)?/?$")
_VERSION_ALIAS = re.compile(r"^/models/(?P<name>[^/]+)/?@(?P<alias>[^/]+)/?$")


@dataclass(frozen=True)
class _Kind:
    """What the caller passed, as messages name it, and the shape it should have."""

    name: str
    scheme: str
    shape: str


_REGISTRY = _Kind("registry URI", SCHEME, REGISTRY_URI_SHAPE)
_TRACKING = _Kind("Azure ML tracking URI", TRACKING_SCHEME, TRACKING_URI_SHAPE)
_ARTIFACT = _Kind("artifact URI", SCHEME, ARTIFACT_URI_SHAPE)


def _invalid(kind: _Kind, uri: Any, reason: str) -> InvalidUri:
    return InvalidUri(
        f"Invalid {kind.name} {quote_input(uri)}: {reason}. Expected a URI of the form {kind.shape}"
    )


def _check_query(kind: _Kind, uri: str, query: Optional[str], fragment: Optional[str]) -> None:
    """Only the query Azure ML itself appends to tracking URIs; no fragment."""
    rule = (
        f"a {kind.name.replace('Azure ML ', '')} takes no query string or fragment but the '?' or "
        "'?&is-remote=True' Azure ML appends to tracking URIs (the plugin's settings are environment variables, "
        "see the README)"
    )
    if fragment is not None:
        raise _invalid(kind, uri, f"it has a fragment ('#'); {rule}")
    for item in (query or "").split("&"):
        if not item:
            continue
        key, _, value = item.partition("=")
        if key.lower() in _CREDENTIAL_KEYS:
            raise _invalid(
                kind,
                uri,
                f"its query parameter {quote_input(key)} carries a credential, and the plugin never takes one from a "
                "URI: remove it, and use configure(credential=...) or the environment (see the README)",
            )
        allowed = QUERY_FLAGS.get(key.lower())
        if allowed is None:  # the value is not quoted: it could be anything, a secret included
            raise _invalid(kind, uri, f"unexpected query parameter {quote_input(key, 40)}; {rule}")
        if value.lower() not in allowed:
            raise _invalid(
                kind, uri, f"query parameter {quote_input(key)} is True or False, not {quote_input(value, 20)}; {rule}"
            )


def _split(uri: Any, kind: _Kind) -> tuple[Target, str]:
    """The workspace or registry a URI of ``kind`` names, and what follows it (query and fragment removed)."""
    if not isinstance(uri, str):
        raise _invalid(kind, uri, "not a string")
    prefix = f"{kind.scheme}:"
    if not uri.lower().startswith(prefix):
        reason = f"it does not start with {kind.scheme}://"
        if kind is _REGISTRY and uri.lower().startswith(f"{TRACKING_SCHEME}:"):
            reason += (
                f" (an Azure ML tracking URI: change its scheme to {SCHEME}://, or pass it to "
                "mlflow_azureml_registry.registry_uri_from_tracking_uri)"
            )
        raise _invalid(kind, uri, reason)
    rest = uri[len(prefix):].lstrip("/")
    rest, hash_, fragment = rest.partition("#")
    rest, question, query = rest.partition("?")
    if kind is not _ARTIFACT:  # artifact URIs are the plugin's own; their query has always been ignored
        _check_query(kind, uri, query if question else None, fragment if hash_ else None)
    if not rest.lower().startswith(("subscriptions/", "registries/")):
        long_form = _LONG_PREFIX.match(rest)
        if not long_form:
            where = "/subscriptions/" in rest.lower()
            raise _invalid(
                kind,
                uri,
                "expected <host>/mlflow/v<version>/ before subscriptions/" if where
                else "it names no subscriptions/<subscription-id>/resourceGroups/<resource-group>/.../workspaces/"
                "<workspace>",
            )
        rest = rest[long_form.end():]
    match = _WORKSPACE.match(rest)
    if not match:
        registry = _AZURE_ML_REGISTRY.match(rest)
        if registry:
            return registry_ref(registry["reg"], registry["sub"], registry["rg"], uri=uri, kind=kind.name), rest[
                registry.end():
            ]
        raise _invalid(
            kind, uri, "it names no subscriptions/<subscription-id>/resourceGroups/<resource-group>/.../workspaces/"
            "<workspace>"
        )
    ref = workspace_ref(
        unquote(match["sub"]), unquote(match["rg"]), unquote(match["ws"]), uri=uri, kind=kind.name
    )
    return ref, rest[match.end():]


def _target_only(uri: Any, kind: _Kind) -> Target:
    ref, tail = _split(uri, kind)
    if tail.strip("/"):
        raise _invalid(kind, uri, f"unexpected {quote_input(tail, 40)} after the {ref.kind}")
    return ref


def parse_registry_uri(uri: str) -> Target:
    """The workspace or Azure ML registry a registry URI names.

    Workspaces: ``azureml-registry://subscriptions/s/resourceGroups/r/workspaces/w``, and the tracking URIs Azure ML
    hands out with the scheme changed (``azureml-registry://<host>/mlflow/v1.0/subscriptions/.../workspaces/w``,
    with the ``?`` or ``?&is-remote=True`` SDK v1 appends). Registries: ``azureml-registry://registries/<name>``
    (found through Azure ML's registry discovery) or ``.../subscriptions/s/resourceGroups/r/registries/<name>``.
    Raises ``InvalidUri`` with the expected shapes.
    """
    return _target_only(uri, _REGISTRY)


def _version_files(ref: Target, match: Any, uri: Any) -> VersionFiles:
    name, version = unquote(match["name"]), unquote(match["version"] or "")
    check_model_segments(name, version, uri)
    return VersionFiles(ref, name, version, check_datastore_path(unquote(match["path"] or ""), uri))


def parse_artifact_uri(uri: str) -> Union[DatastoreLocation, VersionFiles]:
    """A datastore folder of a workspace, or a model version's files in a workspace or registry (see
    :data:`ARTIFACT_URI_SHAPE`). Raises ``InvalidUri``."""
    ref, tail = _split(uri, _ARTIFACT)
    version = _VERSION_FILES.match(tail)
    if version:
        return _version_files(ref, version, uri)
    match = _DATASTORE_PATH.match(tail)
    if not match or not isinstance(ref, WorkspaceRef):
        datastore_form = " or /datastores/<datastore>/paths/<path>" if isinstance(ref, WorkspaceRef) else ""
        raise _invalid(_ARTIFACT, uri, f"no /models/<name>/versions/<version>{datastore_form} after the {ref.kind}")
    datastore = check_datastore_name(unquote(match["ds"]), uri)
    path = check_datastore_path(unquote(match["path"] or ""), uri)
    return DatastoreLocation(ref, datastore, path, match["digest"])


def parse_version_alias(uri: str) -> Optional[tuple[Target, str, str]]:
    """``(target, model name, alias)`` for ``azureml-registry://<workspace or registry>/models/<name>@<alias>``
    (a source naming a version of another workspace or registry by alias); None for other URIs."""
    try:
        ref, tail = _split(uri, _ARTIFACT)
    except InvalidUri:
        return None
    match = _VERSION_ALIAS.match(tail)
    if not match:
        return None
    return ref, unquote(match["name"]), unquote(match["alias"])


_ASSET_URI = re.compile(
    r"^azureml://(?:subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/"
    r"(?:providers/Microsoft\.MachineLearningServices/)?workspaces/(?P<ws>[^/]+)/)?"
    r"datastores/(?P<ds>[^/]+)/paths/(?P<path>.+)$",
    re.IGNORECASE,
)


def parse_asset_uri(model_uri: str, default_workspace: WorkspaceRef) -> DatastoreLocation:
    """A version's ``modelUri`` (long or short ``azureml://`` datastore form) as a datastore location."""
    match = _ASSET_URI.match(model_uri if isinstance(model_uri, str) else "")
    if not match:
        raise InvalidUri(f"Model files at {quote_input(model_uri)} are not on a workspace datastore")
    ref = default_workspace
    if match["sub"]:
        ref = WorkspaceRef(match["sub"], match["rg"], match["ws"])
    return DatastoreLocation(ref, match["ds"], match["path"].strip("/"))


def registry_uri_from_ml_client(ml_client: Any) -> str:
    """The registry URI for the workspace or Azure ML registry an ``azure.ai.ml.MLClient`` is bound to:
    ``MLClient(..., workspace_name=w)`` or ``MLClient(..., registry_name=r)``. Raises ``ValueError`` for a client
    bound to neither."""
    workspace = getattr(ml_client, "workspace_name", None)
    if workspace:
        return registry_uri(WorkspaceRef(ml_client.subscription_id, ml_client.resource_group_name, workspace))
    scope = getattr(ml_client, "_operation_scope", None)  # azure-ai-ml keeps the registry name only there
    registry = getattr(scope, "registry_name", None)
    if not registry:
        raise ValueError("This MLClient is bound to neither a workspace nor a registry")
    subscription = getattr(ml_client, "subscription_id", None) or None
    group = getattr(ml_client, "resource_group_name", None) or None
    return registry_uri(RegistryRef(registry, subscription, group) if subscription and group else RegistryRef(registry))


def registry_uri_from_tracking_uri(tracking_uri: str) -> str:
    """The registry URI for an Azure ML MLflow tracking URI, in every form Azure ML hands one out.

    ``azureml://<host>/mlflow/v1.0|v2.0/subscriptions/<s>/resourceGroups/<rg>/providers/
    Microsoft.MachineLearningServices/workspaces/<w>``, bare (SDK v2, the service, compute instances) or with the
    ``?`` (SDK v1) or ``?&is-remote=True`` (SDK v1 jobs) Azure ML appends; regional, private-link and
    sovereign-cloud hosts. A registry URI (``azureml-registry://...``) is returned in its short form.
    """
    if isinstance(tracking_uri, str) and tracking_uri.lower().startswith(f"{SCHEME}:"):
        return registry_uri(parse_registry_uri(tracking_uri))
    return registry_uri(_target_only(tracking_uri, _TRACKING))
