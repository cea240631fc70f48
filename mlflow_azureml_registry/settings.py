"""Environment variables the plugin reads, in one place so the README and the code cannot drift.

MLflow builds stores and artifact repositories from a URI alone, so process-wide settings come from
the environment (or from :func:`mlflow_azureml_registry.configure`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

RESOURCE_MANAGER_URL = "MLFLOW_AZUREML_RESOURCE_MANAGER_URL"
"""Azure Resource Manager endpoint (sovereign clouds, the local workspace). Default: public Azure."""
LOCAL_TOKEN = "MLFLOW_AZUREML_LOCAL_TOKEN"
"""Bearer token printed by the local workspace; honoured only when the endpoint is loopback."""
STORAGE_ACCOUNT_URL = "MLFLOW_AZUREML_STORAGE_ACCOUNT_URL"
"""Blob account URL template with ``{account}``, overriding the one built from the datastore."""
HTTP_TIMEOUT = "MLFLOW_AZUREML_HTTP_TIMEOUT"
"""Seconds to wait for one HTTP answer (read timeout). Default 60."""
CONNECT_TIMEOUT = "MLFLOW_AZUREML_CONNECT_TIMEOUT"
"""Seconds to wait for a connection. Default 10."""
RETRY_TOTAL = "MLFLOW_AZUREML_RETRY_TOTAL"
"""How many times a failed request is retried (429, 5xx, connection errors). Default 5."""
TOKEN_TIMEOUT = "MLFLOW_AZUREML_TOKEN_TIMEOUT"
"""Seconds one token request of the default credential chain may take in all: every attempt, wait and
back-off included (each attempt also within the connect and read timeouts above). Default 20."""
COPY_DATASTORE_SOURCES = "MLFLOW_AZUREML_COPY_DATASTORE_SOURCES"
"""``true``: copy datastore and job-output sources into a content-addressed upload instead of
referencing them in place. Default: reference in place (as the Azure ML SDK does)."""
UPLOAD_CONCURRENCY = "MLFLOW_AZUREML_TRANSFER_CONCURRENCY"
"""Parallel blob transfers. Default 8."""
LOCK_DIR = "MLFLOW_AZUREML_LOCK_DIR"
"""Where the write locks of registry models live (files locked by every process of the user on this machine).
Default: ``<temp>/mlflow-azureml-registry-<uid>/locks``."""
REQUEST_CONCURRENCY = "MLFLOW_AZUREML_REQUEST_CONCURRENCY"
"""Control-plane requests of one process in flight at once, when they do not wait on each other. Default 8."""
HASH_CACHE = "MLFLOW_AZUREML_HASH_CACHE"
"""``false`` turns the content-hash cache off. Default: on."""
HASH_CACHE_DIR = "MLFLOW_AZUREML_HASH_CACHE_DIR"
"""Where the content-hash cache lives.
Default: ``$XDG_CACHE_HOME`` (or ``~/.cache``)/mlflow-azureml-registry/content-hashes."""

REGISTRY_DISCOVERY_URL = "MLFLOW_AZUREML_REGISTRY_DISCOVERY_URL"
"""Azure ML's registry discovery endpoint, for registry URIs. Default: the Azure ML SDK's for the cloud of
``MLFLOW_AZUREML_RESOURCE_MANAGER_URL`` (public, China and US Government clouds); required for other clouds."""

PUBLIC_RESOURCE_MANAGER = "https://management.azure.com"
# azure-ai-ml's _azure_environments.py (EndpointURLS.REGISTRY_DISCOVERY_ENDPOINT per cloud).
_REGISTRY_DISCOVERY_BY_CLOUD = {
    "https://management.azure.com": "https://eastus.api.azureml.ms",
    "https://management.chinacloudapi.cn": "https://chinaeast2.api.ml.azure.cn",
    "https://management.usgovcloudapi.net": "https://usgovarizona.api.ml.azure.us",
}


@dataclass(frozen=True)
class HttpSettings:
    read_timeout: float
    connect_timeout: float
    retry_total: int


class SettingError(MlflowException, ValueError):
    """An environment variable of the plugin's holds a value it cannot use: ``INVALID_PARAMETER_VALUE``, naming the
    variable and what it takes (a ``ValueError`` too, as these errors were before they were MLflow's)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, error_code=INVALID_PARAMETER_VALUE)


def _number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingError(f"Environment variable {name} must be a number, got {raw!r}") from None
    if value < 0:
        raise SettingError(f"Environment variable {name} must not be negative, got {raw!r}")
    return value


def http_settings() -> HttpSettings:
    return HttpSettings(
        read_timeout=_number(HTTP_TIMEOUT, 60.0),
        connect_timeout=_number(CONNECT_TIMEOUT, 10.0),
        retry_total=int(_number(RETRY_TOTAL, 5)),
    )


def token_timeout() -> float:
    """The deadline of one token request (:data:`TOKEN_TIMEOUT`); must be positive."""
    value = _number(TOKEN_TIMEOUT, 20.0)
    if value <= 0:
        raise SettingError(f"Environment variable {TOKEN_TIMEOUT} must be positive, got {os.environ[TOKEN_TIMEOUT]!r}")
    return value


def resource_manager_url() -> str:
    return (os.environ.get(RESOURCE_MANAGER_URL) or PUBLIC_RESOURCE_MANAGER).rstrip("/")


def registry_discovery_url() -> str:
    """The registry discovery endpoint (:data:`REGISTRY_DISCOVERY_URL`, else the cloud's). Raises
    :class:`SettingError` for a cloud without a known one."""
    configured = (os.environ.get(REGISTRY_DISCOVERY_URL) or "").strip()
    if configured:
        return configured.rstrip("/")
    known = _REGISTRY_DISCOVERY_BY_CLOUD.get(resource_manager_url().lower())
    if known is None:
        raise SettingError(
            f"Set {REGISTRY_DISCOVERY_URL} to your cloud's Azure ML registry discovery endpoint: it is known only for "
            "the public, China and US Government clouds"
        )
    return known


def storage_account_url_template() -> str | None:
    """:data:`STORAGE_ACCOUNT_URL`, or None when unset. Raises :class:`SettingError` when it lacks ``{account}``
    (every datastore's account would then be sent to one URL, and storage would answer 404 for each blob)."""
    template = os.environ.get(STORAGE_ACCOUNT_URL) or None
    if template is not None and "{account}" not in template:
        raise SettingError(
            f"Environment variable {STORAGE_ACCOUNT_URL} must be a URL template holding {{account}} (the storage "
            f"account's name goes there, e.g. https://{{account}}.blob.core.windows.net), got {template!r}"
        )
    return template


def request_concurrency() -> int:
    return max(1, int(_number(REQUEST_CONCURRENCY, 8)))


def transfer_concurrency() -> int:
    return max(1, int(_number(UPLOAD_CONCURRENCY, 8)))


def hash_cache_directory() -> str | None:
    """The content-hash cache's directory, or None when the cache is turned off."""
    if (os.environ.get(HASH_CACHE) or "").strip().lower() in ("0", "false", "no", "off"):
        return None
    configured = os.environ.get(HASH_CACHE_DIR)
    if configured:
        return configured
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "mlflow-azureml-registry", "content-hashes")


def copy_datastore_sources() -> bool:
    return (os.environ.get(COPY_DATASTORE_SOURCES) or "").strip().lower() in ("1", "true", "yes")
