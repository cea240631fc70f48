"""One Azure ML registry's services: registry discovery, model assets on the registry's regional endpoint, and
the registry-managed storage reached through short-lived SAS URIs (pending uploads and data references).

Azure ML facts (``docs/research-registries.md``, ``local/FIDELITY.md`` "Registries"): the registry's data plane is
not on Resource Manager; registry discovery (``GET {discovery}/registrymanagement/v1.0/registries/{name}/discovery``)
names its region's endpoint, under which ``/mferp/managementfrontend`` serves the ``{registry}/models`` operations
with a Resource Manager token. Files are written into a pending upload (``PUT {registry}/tempdatarefs/...``) and read
through a data reference (``POST {registry}/datarefs/...``), each answering a SAS URI for a blob container.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Optional

from ..settings import HttpSettings
from .arm import ArmClient
from .blobs import BlobFolder
from .errors import AzureMLError, NotFound
from .gateway import blob_client_options
from .host_lock import HostLease
from .models import RegistryModels
from .urls import segment
from .workspace import RegistryRef

DISCOVERY_API_VERSION = "v1.0"
DATA_PLANE_PATH = "/mferp/managementfrontend"


@dataclass(frozen=True)
class StorageReference:
    """A blob container (or a folder in one) in registry-managed storage, and a SAS URI that reaches it."""

    blob_uri: str
    sas_uri: str


class RegistryGateway:
    """The gateway for one registry. Discovery happens on first use (construction does no I/O), once per
    process; it also supplies the subscription and resource group a short registry URI leaves out."""

    def __init__(
        self,
        discovery_url: str,
        registry: RegistryRef,
        credential: Any,
        http: HttpSettings,
        *,
        scope: str,
        transfer_concurrency: int = 8,
    ) -> None:
        self._discovery_url = discovery_url.rstrip("/")
        self._registry = registry
        self._credential = credential
        self._http = http
        self._scope = scope
        self._concurrency = transfer_concurrency
        self._lock = threading.Lock()
        self._located: Optional[tuple[RegistryRef, ArmClient, RegistryModels]] = None

    # -- discovery ----------------------------------------------------------------------------------
    def discover(self) -> dict[str, Any]:
        """Azure ML's registry discovery answer (``registryName``, ``subscriptionId``, ``resourceGroup``,
        ``primaryRegionResourceProviderUri``, ...), asked with a Resource Manager token as the Azure ML SDK asks
        (Microsoft Learn: the discovery URL needs an access token)."""
        client = ArmClient(self._discovery_url, self._credential, self._http, scope=self._scope)
        what = f"discovery of Azure ML registry {self._registry.registry_name!r}"
        try:
            body = client.request(
                "GET",
                f"/registrymanagement/v1.0/registries/{segment(self._registry.registry_name)}/discovery",
                params={"api-version": DISCOVERY_API_VERSION},
                what=what,
                ok=(200,),
            ).body
        finally:
            client.close()
        if not isinstance(body, dict) or not body.get("primaryRegionResourceProviderUri"):
            raise AzureMLError(f"{what}: the answer names no regional endpoint (primaryRegionResourceProviderUri)")
        return body

    def _ready(self) -> tuple[RegistryRef, ArmClient, RegistryModels]:
        with self._lock:
            if self._located is None:
                found = self.discover()
                sub, group = found.get("subscriptionId"), found.get("resourceGroup")
                named = (self._registry.subscription_id, self._registry.resource_group)
                if self._registry.located and (
                    str(named[0]).lower() != str(sub).lower() or str(named[1]).lower() != str(group).lower()
                ):
                    # Discovery finds a registry by name alone; the URI named another place for it.
                    raise NotFound(
                        f"Azure ML registry {self._registry.registry_name!r} is in subscription {sub} and resource "
                        f"group {group}, not {named[0]} / {named[1]} as the registry URI says: fix the URI, or use "
                        f"azureml-registry://registries/{self._registry.registry_name}",
                        code="RegistryNotFound",
                    )
                sub, group = sub or named[0], group or named[1]
                if not sub or not group:
                    raise AzureMLError(f"Registry discovery did not name the subscription and resource group of "
                                       f"registry {self._registry.registry_name!r}")
                located = RegistryRef(self._registry.registry_name, sub, group)
                endpoint = str(found["primaryRegionResourceProviderUri"]).rstrip("/") + DATA_PLANE_PATH
                arm = ArmClient(endpoint, self._credential, self._http, scope=self._scope)
                self._located = (located, arm, RegistryModels(arm, located))
            return self._located

    @property
    def workspace(self) -> RegistryRef:
        """The registry, with its subscription and resource group (after discovery)."""
        return self._ready()[0]

    @property
    def models(self) -> RegistryModels:
        return self._ready()[2]

    def close(self) -> None:
        if self._located is not None:
            self._located[1].close()

    # -- storage ------------------------------------------------------------------------------------
    def model_lease(self, model_name: str) -> HostLease:
        """The model's write lock among this machine's processes (:mod:`.host_lock`)."""
        return HostLease(self._registry.registry_name, model_name)

    def _reference(self, answer: Any, what: str) -> StorageReference:
        ref = (answer or {}).get("blobReferenceForConsumption") or {}
        sas = (ref.get("credential") or {}).get("sasUri")
        if not sas or not ref.get("blobUri"):
            raise AzureMLError(f"{what}: the answer carries no blob URI and SAS")
        return StorageReference(str(ref["blobUri"]), str(sas))

    def pending_upload(self, name: str, version: str) -> StorageReference:
        """Storage for a new version's files: ``PUT {registry}/tempdatarefs/{name}/versions/{version}`` (the
        Azure ML SDK's call; answer: a container-scoped SAS URI, recorded ``sp=rcwl``)."""
        registry, arm, _ = self._ready()
        what = f"pending upload for model version {name!r}/{version}"
        body = {
            "assetId": f"{registry.asset_prefix}/models/{name}/versions/{version}",
            "temporaryDataReferenceType": "TemporaryBlobReference",
        }
        answer = arm.request(
            "PUT", f"{registry.arm_path}/tempdatarefs/{segment(name)}/versions/{segment(version)}",
            body=body, what=what,
        ).body
        return self._reference(answer, what)

    def data_reference(self, name: str, version: str, blob_uri: Optional[str] = None) -> StorageReference:
        """Read access to a version's files: ``POST {registry}/datarefs/{name}/versions/{version}``."""
        registry, arm, _ = self._ready()
        what = f"data reference for model version {name!r}/{version}"
        body: dict[str, Any] = {"assetId": f"{registry.asset_prefix}/models/{name}/versions/{version}"}
        if blob_uri:
            body["blobUri"] = blob_uri
        answer = arm.request(
            "POST", f"{registry.arm_path}/datarefs/{segment(name)}/versions/{segment(version)}",
            body=body, what=what, idempotent=True,
        ).body
        return self._reference(answer, what)

    def sas_folder(self, sas_uri: str) -> BlobFolder:
        """Transfers in the container a SAS URI names (its path beyond the container is the caller's prefix)."""
        from azure.storage.blob import ContainerClient

        base = sas_uri.split("?", 1)[0]
        client = ContainerClient.from_container_url(sas_uri, **blob_client_options(base, self._http))
        return BlobFolder(client, concurrency=self._concurrency)
