"""The plugin's URI scheme: registry URIs (a workspace or an Azure ML registry) and artifact URIs (a datastore
path in a workspace, or a model version's files in either).

The scheme is ``azureml-registry`` because Microsoft's ``azureml-mlflow`` already owns ``azureml``
for MLflow plugins, and Azure ML datastore paths are ``azureml://`` too (see design.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional, Union
from urllib.parse import unquote

from .azure.workspace import RegistryRef, Target, WorkspaceRef

SCHEME = "azureml-registry"
TRACKING_SCHEME = "azureml"

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

# Azure's naming rules for the segments, checked after percent-decoding: a decoded '/', '..' or control
# character would otherwise change which resource the request URL names.
_SUBSCRIPTION = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-]{0,63}")
_RESOURCE_GROUP = re.compile(r"[\w\-.()]{0,89}[\w\-()]")  # ARM: not ending with '.'
_WORKSPACE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,254}")
# Azure ML registry names: 3-33 characters, letters, digits, '-' and '_', starting with a letter or digit
# (Microsoft Learn, "Manage Azure Machine Learning registries"); longer names are taken, the service decides.
_REGISTRY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,254}")
_DATASTORE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-]{0,254}")
_SEGMENT_RULES = (
    ("subscription id", _SUBSCRIPTION, "letters, digits and '-'"),
    ("resource group", _RESOURCE_GROUP, "letters, digits, '_', '-', '.', '(', ')', not ending with '.'"),
    ("workspace name", _WORKSPACE_NAME, "letters, digits, '_' and '-', starting with a letter or digit"),
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

# The only query Azure ML puts in a tracking URI: SDK v1 ends it with '?', and its jobs append
# '&is-remote=True' (azureml-mlflow). Nothing else is taken, so that no setting is silently ignored.
_QUERY_FLAGS = {"is-remote": ("true", "false")}
# Query keys whose value is a credential (old azureml-mlflow URIs embedded a token): refused, never echoed.
_CREDENTIAL_KEYS = ("auth", "auth-type", "token")
_QUOTE_LIMIT = 300  # characters of an input quoted in a message


class InvalidUri(ValueError):
    """The URI does not have one of the accepted shapes; the message names the expected one."""


@dataclass(frozen=True)
class _Kind:
    """What the caller passed, as messages name it, and the shape it should have."""

    name: str
    scheme: str
    shape: str


_REGISTRY = _Kind("registry URI", SCHEME, REGISTRY_URI_SHAPE)
_TRACKING = _Kind("Azure ML tracking URI", TRACKING_SCHEME, TRACKING_URI_SHAPE)
_ARTIFACT = _Kind("artifact URI", SCHEME, ARTIFACT_URI_SHAPE)


def _mask_query(text: str) -> str:
    """``text`` with every query value masked but ``is-remote``'s: an old tracking URI may carry a token."""
    head, sep, query = text.partition("?")
    if not sep:
        return text
    query, hash_, fragment = query.partition("#")
    items = []
    for item in query.split("&"):
        key, eq, value = item.partition("=")
        if value and key.lower() not in _QUERY_FLAGS:
            value = "***"
        items.append(f"{key}{eq}{value}")
    return f"{head}?{'&'.join(items)}{hash_}{fragment}"


def quote_input(value: Any, limit: int = _QUOTE_LIMIT) -> str:
    """``value`` for a message: at most a ``limit``-character prefix, saying how long it was, query values masked."""
    if isinstance(value, str):
        if len(value) <= limit:
            return repr(_mask_query(value))
        return f"{_mask_query(value[:limit])!r}... ({len(value)} characters)"
    if isinstance(value, (bytes, bytearray)):
        shown = repr(bytes(value[:limit]))
        return f"{type(value).__name__} {shown}" + (f"... ({len(value)} bytes)" if len(value) > limit else "")
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)[:limit]
    return f"a {type(value).__name__}"


def _invalid(kind: _Kind, uri: Any, reason: str) -> InvalidUri:
    return InvalidUri(
        f"Invalid {kind.name} {quote_input(uri)}: {reason}. Expected a URI of the form {kind.shape}"
    )


def workspace_ref(
    subscription: str, resource_group: str, workspace: str, *, uri: Any = None, kind: str = ""
) -> WorkspaceRef:
    """A workspace from (already decoded) URI segments, refusing names Azure would never give a workspace."""
    for (what, rule, allowed), value in zip(_SEGMENT_RULES, (subscription, resource_group, workspace)):
        if not rule.fullmatch(value):
            where = f" in {kind + ' ' if kind else ''}{quote_input(uri)}" if uri is not None else ""
            raise InvalidUri(f"Invalid {what} {quote_input(value, 60)}{where}: Azure allows {allowed}")
    return WorkspaceRef(subscription, resource_group, workspace)


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
        allowed = _QUERY_FLAGS.get(key.lower())
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


def registry_ref(
    name: str, subscription: Optional[str], resource_group: Optional[str], *, uri: Any = None, kind: str = ""
) -> RegistryRef:
    """An Azure ML registry from (percent-encoded) URI segments; the subscription and resource group may be absent
    (registry discovery supplies them)."""
    name = unquote(name)
    where = f" in {kind + ' ' if kind else ''}{quote_input(uri)}" if uri is not None else ""
    if not _REGISTRY_NAME.fullmatch(name):
        raise InvalidUri(
            f"Invalid registry name {quote_input(name, 60)}{where}: Azure ML allows letters, digits, '_' and '-', "
            "starting with a letter or digit"
        )
    if subscription is None:
        return RegistryRef(name)
    ref = workspace_ref(unquote(subscription), unquote(resource_group or ""), "w", uri=uri, kind=kind)
    return RegistryRef(name, ref.subscription_id, ref.resource_group)


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


def check_datastore_name(name: str, uri: Any) -> str:
    if not _DATASTORE_NAME.fullmatch(name):
        raise InvalidUri(
            f"Invalid datastore name {quote_input(name)} in {quote_input(uri)}: "
            "Azure allows letters, digits, '_' and '-'"
        )
    return name


def check_datastore_path(path: str, uri: Any) -> str:
    """A path inside a datastore, without leading or trailing '/'; '.' and '..' segments are refused (the
    service would resolve them to another folder than the one named), as are control characters."""
    path = path.strip("/")
    if any(segment in (".", "..") for segment in path.split("/")):
        raise InvalidUri(f"Invalid datastore path in {quote_input(uri)}: '.' and '..' segments are not allowed")
    if re.search(r"[\x00-\x1f\x7f]", path):
        raise InvalidUri(f"Invalid datastore path in {quote_input(uri)}: control characters are not allowed")
    return path


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


# ``.../versions`` alone: MLflow opens the parent of ``.../versions/<v>`` as a repository, and reads ``<v>`` in it.
_VERSION_FILES = re.compile(r"^/models/(?P<name>[^/]+)/versions(?:/(?P<version>[^/]+)(?:/(?P<path>.*))?)?/?$")
_VERSION_ALIAS = re.compile(r"^/models/(?P<name>[^/]+)/?@(?P<alias>[^/]+)/?$")
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-_.]{0,254}")


def _version_files(ref: Target, match: Any, uri: Any) -> VersionFiles:
    name, version = unquote(match["name"]), unquote(match["version"] or "")
    if not _MODEL_NAME.fullmatch(name):
        raise InvalidUri(f"Invalid model name {quote_input(name, 60)} in {quote_input(uri)}")
    if version and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9\-_.]{0,64}", version):
        raise InvalidUri(f"Invalid model version {quote_input(version, 60)} in {quote_input(uri)}")
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
