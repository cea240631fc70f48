"""One workspace's Azure ML services: model assets, datastores and their blob folders."""

from __future__ import annotations

import threading
import time
from typing import Any, Optional

from ..settings import HttpSettings
from .arm import ArmClient
from .blobs import BlobFolder
from .datastores import Datastore, Datastores, account_url
from .jobs import Jobs
from .models import ModelAssets
from .workspace import WorkspaceRef

_SECRET_LIFETIME_S = 45 * 60  # listSecrets SAS tokens are asked for 1 h; refresh well before.


class AzureMLGateway:
    def __init__(
        self,
        endpoint: str,
        workspace: WorkspaceRef,
        credential: Any,
        http: HttpSettings,
        *,
        storage_account_url: Optional[str] = None,
        transfer_concurrency: int = 8,
    ) -> None:
        self.workspace = workspace
        self._credential = credential
        self._arm = ArmClient(endpoint, credential, http)
        self._http = http
        self.models = ModelAssets(self._arm, workspace)
        self.datastores = Datastores(self._arm, workspace)
        self.jobs = Jobs(self._arm, workspace)
        self._storage_account_url = storage_account_url
        self._concurrency = transfer_concurrency
        self._lock = threading.Lock()
        self._datastore_cache: dict[str, Datastore] = {}
        self._folder_cache: dict[str, tuple[float, BlobFolder]] = {}

    def close(self) -> None:
        self._arm.close()

    def datastore(self, name: str) -> Datastore:
        with self._lock:
            cached = self._datastore_cache.get(name)
        if cached is None:
            cached = self.datastores.get(name)
            with self._lock:
                self._datastore_cache[name] = cached
        return cached

    def blob_folder(self, datastore_name: str) -> BlobFolder:
        """A client for the datastore's container, with a SAS/key from ``listSecrets`` or the user's token."""
        now = time.monotonic()
        with self._lock:
            cached = self._folder_cache.get(datastore_name)
        if cached and now - cached[0] < _SECRET_LIFETIME_S:
            return cached[1]
        datastore = self.datastore(datastore_name)
        credential = self.datastores.blob_credential(datastore, self._credential)
        from azure.storage.blob import ContainerClient

        client = ContainerClient(
            account_url(datastore, self._storage_account_url),
            datastore.container_name,
            credential=credential,
            connection_timeout=self._http.connect_timeout,
            read_timeout=self._http.read_timeout,
            retry_total=self._http.retry_total,
            max_single_put_size=4 * 1024 * 1024,
            max_block_size=4 * 1024 * 1024,
        )
        folder = BlobFolder(client, concurrency=self._concurrency)
        with self._lock:
            self._folder_cache[datastore_name] = (now, folder)
        return folder
