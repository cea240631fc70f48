"""Datastores: where a workspace keeps model files, and the credential to reach them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Optional

from azure.core.credentials import TokenCredential

from .arm import ArmClient
from .errors import AzureMLError, Forbidden
from .sas import RenewingSasCredential
from .urls import segment
from .workspace import WorkspaceRef

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Datastore:
    name: str
    datastore_type: str
    account_name: str
    container_name: str
    endpoint: str
    protocol: str
    credentials_type: str

    @property
    def identity_based(self) -> bool:
        return self.credentials_type in ("None", "", None)


class Datastores:
    def __init__(self, arm: ArmClient, workspace: WorkspaceRef) -> None:
        self._arm = arm
        self.workspace = workspace

    def _path(self, name: str) -> str:
        return f"{self.workspace.arm_path}/datastores/{segment(name)}"

    def get(self, name: str) -> Datastore:
        body = self._arm.request("GET", self._path(name), what=f"GET datastore {name!r}").body
        return _datastore(body)

    def list_secrets(self, name: str, *, expire_after_hours: int = 1) -> tuple[str, str]:
        """The datastore's secret as ``("Sas", token)`` or ``("AccountKey", key)``.

        A POST, which azure-core does not retry after a lost connection; asking for a secret changes
        nothing, so the ARM client may send it again.
        """
        body = self._arm.request(
            "POST",
            f"{self._path(name)}/listSecrets",
            body={"expirableSecret": True, "expireAfterHours": expire_after_hours},
            what=f"list secrets of datastore {name!r}",
            idempotent=True,
        ).body or {}
        kind = body.get("secretsType")
        if kind == "Sas" and body.get("sasToken"):
            return "Sas", body["sasToken"].lstrip("?")
        if kind == "AccountKey" and body.get("key"):
            return "AccountKey", body["key"]
        raise AzureMLError(f"Datastore {name!r} returned no usable secret (secretsType={kind!r})")

    def _fresh_sas(self, name: str) -> str:
        kind, value = self.list_secrets(name)
        if kind != "Sas":
            raise AzureMLError(f"Datastore {name!r} stopped returning a SAS (secretsType={kind!r})")
        return value

    def blob_credential(self, datastore: Datastore, token_credential: TokenCredential) -> Any:
        """SAS (renewed before it expires) or key for key-based datastores; the caller's token otherwise.

        The token is also the answer when the caller may not list secrets (403): storage accounts
        without shared keys and least-privilege users reach blobs with Storage Blob Data roles.
        """
        if datastore.identity_based:
            return token_credential
        try:
            kind, value = self.list_secrets(datastore.name)
        except Forbidden:
            _logger.info("Not allowed to list secrets of datastore %r; using the identity's token", datastore.name)
            return token_credential
        if kind == "Sas":
            return RenewingSasCredential(value, lambda: self._fresh_sas(datastore.name))
        return value


def _datastore(body: Optional[dict[str, Any]]) -> Datastore:
    props = (body or {}).get("properties") or {}
    kind = props.get("datastoreType")
    if kind != "AzureBlob":
        raise AzureMLError(
            f"Datastore {(body or {}).get('name')!r} is of type {kind!r}; model files are read and written "
            "only on AzureBlob datastores"
        )
    return Datastore(
        name=str((body or {}).get("name")),
        datastore_type=kind,
        account_name=props.get("accountName") or "",
        container_name=props.get("containerName") or "",
        endpoint=props.get("endpoint") or "core.windows.net",
        protocol=props.get("protocol") or "https",
        credentials_type=((props.get("credentials") or {}).get("credentialsType")) or "None",
    )


def account_url(datastore: Datastore, template: Optional[str]) -> str:
    """The blob service URL: the documented override template, else ``{protocol}://{account}.blob.{endpoint}``."""
    if template:
        return template.format(account=datastore.account_name).rstrip("/")
    return f"{datastore.protocol}://{datastore.account_name}.blob.{datastore.endpoint}"
