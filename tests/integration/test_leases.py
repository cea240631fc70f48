"""The per-model write lease on Azurite: exclusion, waiting, giving up clearly, and never blocking a write
for lack of storage permission (mlflow_azureml_registry/azure/leases.py)."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid

import pytest

from mlflow_azureml_registry.azure.errors import ServiceUnavailable
from mlflow_azureml_registry.azure.leases import LEASE_PREFIX, ModelLease

pytestmark = pytest.mark.emulator_only("takes leases with the emulator's account keys and counts storage requests")


def _container(workspace, permission: str):
    from azure.storage.blob import ContainerClient, ContainerSasPermissions, generate_container_sas

    props = workspace.datastore()
    account, name = props["accountName"], props["containerName"]
    sas = generate_container_sas(
        account,
        name,
        account_key=workspace.account_keys[account],
        permission=ContainerSasPermissions.from_string(permission),
        expiry=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1),
    )
    return ContainerClient(
        workspace.storage_account_url_template.format(account=account),
        name,
        credential=sas,
        connection_verify=workspace.ca_bundle,
    )


def test_one_holder_at_a_time(workspace):
    container = _container(workspace, "racwdl")
    model = f"lease-{uuid.uuid4().hex[:8]}"
    inside, overlaps = [0], []
    lock = threading.Lock()

    def critical() -> None:
        with ModelLease(container, model):
            with lock:
                inside[0] += 1
                overlaps.append(inside[0])
            time.sleep(0.05)
            with lock:
                inside[0] -= 1

    threads = [threading.Thread(target=critical) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert overlaps == [1] * 6
    assert container.get_blob_client(f"{LEASE_PREFIX}{model}").get_blob_properties().lease.state == "available"


def test_gives_up_with_a_clear_error_when_the_lease_stays_taken(workspace):
    from azure.storage.blob import BlobLeaseClient

    container = _container(workspace, "racwdl")
    model = f"lease-{uuid.uuid4().hex[:8]}"
    blob = container.get_blob_client(f"{LEASE_PREFIX}{model}")
    blob.upload_blob(b"")
    held = BlobLeaseClient(blob)
    held.acquire(lease_duration=-1)  # infinite: a client stuck forever
    try:
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable, match=f"write lease of model '{model}'"):
            ModelLease(container, model, wait_s=0.5).acquire()
        assert time.monotonic() - started < 5
    finally:
        held.release()


def test_without_storage_permission_the_write_goes_on_with_a_warning(workspace, caplog):
    container = _container(workspace, "rl")  # read and list only: no lease, no blob creation
    lease = ModelLease(container, f"lease-{uuid.uuid4().hex[:8]}")
    with caplog.at_level(logging.WARNING, logger="mlflow_azureml_registry.azure.leases"), lease:
        assert not lease.held
    assert "going on without it" in caplog.text


def test_a_write_to_a_missing_model_leaves_no_lease_blob(workspace, client, model_name):
    """The store writes under the lease before it knows the model exists (MLflow < 2.21 does not look first)."""
    from mlflow.entities.model_registry import ModelVersionTag, RegisteredModelTag
    from mlflow.exceptions import MlflowException

    from mlflow_azureml_registry.store import AzureMLRegistryStore

    store = AzureMLRegistryStore(workspace.registry_uri())
    container = _container(workspace, "racwdl")
    lease_blob = container.get_blob_client(f"{LEASE_PREFIX}{model_name}")
    with pytest.raises(MlflowException) as info:
        store.set_registered_model_tag(model_name, RegisteredModelTag("k", "v"))
    assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert not lease_blob.exists()

    client.create_registered_model(model_name)
    store.set_registered_model_tag(model_name, RegisteredModelTag("k", "v"))
    assert lease_blob.get_blob_properties().lease.state == "available"
    # The model exists and its lease blob was not made by this write: a refused write keeps it.
    with pytest.raises(MlflowException):
        store.set_model_version_tag(model_name, "7", ModelVersionTag("k", "v"))
    assert lease_blob.exists()



def test_threads_of_a_process_wait_in_the_process_not_on_storage(workspace):
    """The threads of one process (an mlflow server worker) queue for a model's lease in the process: each asks
    storage once when its turn comes, instead of polling a taken lease (6 holders of 0.2 s each would otherwise
    poll it dozens of times)."""
    from azure.core.pipeline.transport import RequestsTransport

    container = _container(workspace, "racwdl")
    model = f"lease-{uuid.uuid4().hex[:8]}"
    ModelLease(container, model).__enter__().release()  # the lease blob exists: no create in the count
    tries = []
    original = RequestsTransport.send

    def send(self, request, **kwargs):
        if "comp=lease" in request.url and request.headers.get("x-ms-lease-action") == "acquire":
            tries.append(request.url)
        return original(self, request, **kwargs)

    def critical() -> None:
        with ModelLease(container, model):
            time.sleep(0.2)

    RequestsTransport.send = send
    try:
        threads = [threading.Thread(target=critical) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        RequestsTransport.send = original
    assert len(tries) == 6
