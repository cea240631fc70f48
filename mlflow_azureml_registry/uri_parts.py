"""The parts of the plugin's URIs: the scheme's names, Azure's naming rules for each segment (checked after
percent-decoding), and how an input is quoted in a message (:mod:`.uri` reads whole URIs, :mod:`.uri_locations` builds
them).
"""

from __future__ import annotations

import re
from typing import Any, Optional
from urllib.parse import unquote

from .azure.workspace import RegistryRef, WorkspaceRef

SCHEME = "azureml-registry"
TRACKING_SCHEME = "azureml"

# Azure's naming rules for the segments, checked after percent-decoding: a decoded '/', '..' or control
# character would otherwise change which resource the request URL names.
_SUBSCRIPTION = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-]{0,63}")
_RESOURCE_GROUP = re.compile(r"[\w\-.()]{0,89}[\w\-()]")  # ARM: not ending with '.'
_WORKSPACE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,254}")
# Azure ML registry names: 3-33 characters, letters, digits, '-' and '_', starting with a letter or digit
# (Microsoft Learn, "Manage Azure Machine Learning registries"); longer names are taken, the service decides.
_REGISTRY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,254}")
_DATASTORE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-]{0,254}")
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-_.]{0,254}")
_SEGMENT_RULES = (
    ("subscription id", _SUBSCRIPTION, "letters, digits and '-'"),
    ("resource group", _RESOURCE_GROUP, "letters, digits, '_', '-', '.', '(', ')', not ending with '.'"),
    ("workspace name", _WORKSPACE_NAME, "letters, digits, '_' and '-', starting with a letter or digit"),
)

# The only query Azure ML puts in a tracking URI: SDK v1 ends it with '?', and its jobs append
# '&is-remote=True' (azureml-mlflow). Nothing else is taken, so that no setting is silently ignored.
QUERY_FLAGS = {"is-remote": ("true", "false")}
_QUOTE_LIMIT = 300  # characters of an input quoted in a message


class InvalidUri(ValueError):
    """The URI does not have one of the accepted shapes; the message names the expected one."""


def _mask_query(text: str) -> str:
    """``text`` with every query value masked but ``is-remote``'s: an old tracking URI may carry a token."""
    head, sep, query = text.partition("?")
    if not sep:
        return text
    query, hash_, fragment = query.partition("#")
    items = []
    for item in query.split("&"):
        key, eq, value = item.partition("=")
        if value and key.lower() not in QUERY_FLAGS:
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


def workspace_ref(
    subscription: str, resource_group: str, workspace: str, *, uri: Any = None, kind: str = ""
) -> WorkspaceRef:
    """A workspace from (already decoded) URI segments, refusing names Azure would never give a workspace."""
    for (what, rule, allowed), value in zip(_SEGMENT_RULES, (subscription, resource_group, workspace)):
        if not rule.fullmatch(value):
            where = f" in {kind + ' ' if kind else ''}{quote_input(uri)}" if uri is not None else ""
            raise InvalidUri(f"Invalid {what} {quote_input(value, 60)}{where}: Azure allows {allowed}")
    return WorkspaceRef(subscription, resource_group, workspace)


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


def check_datastore_name(name: str, uri: Any) -> str:
    """``name`` when Azure allows it as a datastore's name, else ``InvalidUri`` naming ``uri``."""
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


def check_model_segments(name: str, version: str, uri: Any) -> None:
    """A model name and version (both decoded; the version may be empty) as Azure ML allows them in an asset id."""
    if not _MODEL_NAME.fullmatch(name):
        raise InvalidUri(f"Invalid model name {quote_input(name, 60)} in {quote_input(uri)}")
    if version and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9\-_.]{0,64}", version):
        raise InvalidUri(f"Invalid model version {quote_input(version, 60)} in {quote_input(uri)}")
