"""The local workspace's Azure ML registry: the real azure-ai-ml ``MLClient(registry_name=...)`` against it
(discovery, upload through ``tempdatarefs``, the version PUT's long-running operation, download through
``datarefs``), and raw HTTP checks of the emulated shapes (FIDELITY.md, "Registries")."""

from __future__ import annotations

import filecmp
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from mlflow_azureml_registry.local import LocalWorkspace
from mlflow_azureml_registry.local.testing import resolve_localhost

from .conftest import check_common

REGISTRY = "local-registry"


class Reg:
    """Raw calls to the registry data plane, discovery and operation polls (requests, the workspace's CA)."""

    def __init__(self, ws: LocalWorkspace, token: str | None = None) -> None:
        self.ws = ws
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = ws.ca_bundle
        self.session.headers["Authorization"] = f"Bearer {token or ws.token}"

    def url(self, tail: str, registry: str = REGISTRY) -> str:
        return (
            f"{self.ws.resource_manager_url}/mferp/managementfrontend/subscriptions/{self.ws.subscription_id}"
            f"/resourceGroups/{self.ws.resource_group}/providers/Microsoft.MachineLearningServices"
            f"/registries/{registry}/{tail}"
        )

    def call(self, method: str, tail: str, *, params: dict[str, Any] | None = None, **kw: Any) -> requests.Response:
        params = {"api-version": "2021-10-01-dataplanepreview", **(params or {})}
        response = self.session.request(method, self.url(tail, kw.pop("registry", REGISTRY)), params=params, **kw)
        check_common(response)
        return response

    def get_url(self, url: str) -> requests.Response:
        response = self.session.get(url, timeout=30)
        check_common(response)
        return response

    def discovery(self, name: str = REGISTRY) -> requests.Response:
        return self.get_url(
            f"{self.ws.registry_discovery_url}/registrymanagement/v1.0/registries/{name}/discovery?api-version=v1.0"
        )

    def wait(self, response: requests.Response) -> requests.Response:
        """Follow a 202's ``Location`` until the operation answers 200."""
        assert response.status_code == 202, response.text
        for _ in range(10):
            polled = self.get_url(response.headers["Location"])
            if polled.status_code != 202:
                return polled
        raise AssertionError("operation never completed")


@pytest.fixture
def reg(ws: LocalWorkspace) -> Reg:
    return Reg(ws)


def _upload(reg: Reg, ws: LocalWorkspace, name: str, version: str, files: dict[str, bytes]) -> str:
    """Pending upload through tempdatarefs; returns the modelUri the SDK would send (path-style, no query)."""
    from azure.storage.blob import ContainerClient

    answer = reg.call(
        "PUT",
        f"tempdatarefs/{name}/versions/{version}",
        json={
            "assetId": f"azureml://registries/{REGISTRY}/models/{name}/versions/{version}",
            "temporaryDataReferenceType": "TemporaryBlobReference",
        },
    )
    assert answer.status_code == 200, answer.text
    sas_uri = answer.json()["blobReferenceForConsumption"]["credential"]["sasUri"]
    container = ContainerClient.from_container_url(sas_uri, connection_verify=ws.ca_bundle)
    for path, data in files.items():
        container.upload_blob(f"model_dir/{path}", data)
    return f"{sas_uri.split('?', 1)[0]}/model_dir"


def _put_version(reg: Reg, name: str, version: str, model_uri: str, **props: Any) -> requests.Response:
    body = {"properties": {"modelUri": model_uri, "modelType": "custom_model", **props}}
    return reg.call("PUT", f"models/{name}/versions/{version}", json=body)


# --------------------------------------------------------------------------- the real SDK
@pytest.fixture(scope="module")
def registry_client(ws: LocalWorkspace) -> Iterator[Any]:
    from azure.ai.ml import MLClient

    saved = {k: os.environ.get(k) for k in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")}
    os.environ.update({k: ws.ca_bundle for k in saved})
    try:
        with resolve_localhost():
            yield MLClient(**ws.ml_client_kwargs(registry=REGISTRY))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "my_model"
    (folder / "sub").mkdir(parents=True)
    (folder / "MLmodel").write_text("flavors:\n  python_function:\n    loader_module: m\n")
    (folder / "model.bin").write_bytes(uuid.uuid4().bytes * 1000)
    (folder / "sub" / "extra.txt").write_text("extra")
    return folder


def test_sdk_create_get_list_download(
    ws: LocalWorkspace, registry_client: Any, model_dir: Path, model_name: str, tmp_path: Path
) -> None:
    from azure.ai.ml.entities import Model

    ws.clear_requests()
    with resolve_localhost():
        created = registry_client.models.create_or_update(
            Model(name=model_name, path=str(model_dir), version="1", description="d", tags={"a": "b"})
        )
        assert (created.name, created.version) == (model_name, "1")
        got = registry_client.models.get(model_name, "1")
        assert (got.description, got.tags) == ("d", {"a": "b"})
        assert got.id == f"azureml://registries/{REGISTRY}/models/{model_name}/versions/1"
        second = registry_client.models.create_or_update(Model(name=model_name, path=str(model_dir)))
        assert second.version == "2"  # from the registry container's nextVersion
        assert sorted(m.version for m in registry_client.models.list(model_name)) == ["1", "2"]
        assert registry_client.models.get(model_name, label="latest").version == "2"
        # azure-ai-ml 1.35.2 sends the default ListViewType enum's str() ("ListViewType.ACTIVE_ONLY") to
        # registries, which the emulator refuses as it refuses any unknown listViewType; pass the wire value
        assert model_name in {m.name for m in registry_client.models.list(list_view_type="ActiveOnly")}
        registry_client.models.download(model_name, "1", download_path=str(tmp_path / "out"))
    downloaded = tmp_path / "out" / model_name / model_dir.name
    comparison = filecmp.dircmp(model_dir, downloaded)
    assert not comparison.left_only and not comparison.right_only and not comparison.diff_files
    assert filecmp.cmp(model_dir / "sub" / "extra.txt", downloaded / "sub" / "extra.txt", shallow=False)
    # the files are in the registry's own storage account, in the version's own container
    account = ws.registry_datastore()["accountName"]
    assert account not in {ws.datastore(w)["accountName"] for w in ws.workspaces}
    assert got.path.startswith(f"https://{account}.blob.core.localhost:{ws.blob_port}/")
    container, prefix = got.path.split(f":{ws.blob_port}/", 1)[1].split("/", 1)
    blobs = ws.blob_service(account).get_container_client(container).list_blobs(name_starts_with=prefix)
    assert sorted(b.name for b in blobs) == [f"{prefix}/MLmodel", f"{prefix}/model.bin", f"{prefix}/sub/extra.txt"]
    operations = [r["operation"] for r in ws.requests]
    for expected in (
        "TemporaryDataReferences_CreateOrGet",
        "RegistryModelVersions_CreateOrUpdate",
        "AssetStoreOperations_Get",
        "RegistryModelContainers_Get",
        "DataReferences_GetBlobReferenceSas",
    ):
        assert expected in operations
    assert all(r.get("registry") == REGISTRY for r in ws.requests if r["operation"] != "AssetStoreOperations_Get")


def test_sdk_discovers_the_registry_once_per_client(ws: LocalWorkspace, monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.ai.ml import MLClient

    ws.clear_requests()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ws.ca_bundle)
    MLClient(**ws.ml_client_kwargs(registry=REGISTRY))
    assert [r["operation"] for r in ws.requests] == ["RegistryDiscovery_Get"]
    assert ws.requests[0]["status"] == 200


def test_sdk_unknown_model_lists_empty_and_get_raises(registry_client: Any, model_name: str) -> None:
    from azure.core.exceptions import ResourceNotFoundError

    assert list(registry_client.models.list(model_name)) == []
    with pytest.raises(ResourceNotFoundError):
        registry_client.models.get(model_name, "1")


# --------------------------------------------------------------------------- raw HTTP shapes
def test_discovery_shape(reg: Reg, ws: LocalWorkspace) -> None:
    answer = reg.discovery(REGISTRY.upper())  # registry names match case-insensitively
    assert answer.status_code == 200
    body = answer.json()
    assert body["registryName"] == REGISTRY
    assert (body["subscriptionId"], body["resourceGroup"]) == (ws.subscription_id, ws.resource_group)
    assert body["primaryRegionResourceProviderUri"] == f"{ws.resource_manager_url}/"
    assert body["primaryRegion"] in body["regions"] and body["primaryRegion"] in body["registryFqdns"]
    assert body["registryFqdns"][body["primaryRegion"]]["uri"] == ws.resource_manager_url
    assert set(body) >= {"registryId", "tenantId", "workspaceName", "intellectualPropertyPublisher"}
    uuid.UUID(body["registryId"])


def test_discovery_needs_a_token_and_knows_its_registries(ws: LocalWorkspace) -> None:
    assert Reg(ws, token="wrong").discovery().status_code == 401
    bare = requests.get(
        f"{ws.registry_discovery_url}/registrymanagement/v1.0/registries/{REGISTRY}/discovery",
        verify=ws.ca_bundle,
        timeout=30,
    )
    assert bare.status_code == 401
    unknown = Reg(ws).discovery("no-such-registry")
    assert unknown.status_code == 404


def test_data_plane_refuses_a_wrong_token(ws: LocalWorkspace, model_name: str) -> None:
    for token in ("wrong", f"{ws.token}x"):
        answer = Reg(ws, token=token).call("GET", f"models/{model_name}/versions")
        assert answer.status_code == 401 and "WWW-Authenticate" in answer.headers
    assert Reg(ws).call("GET", "models", registry="no-such-registry").status_code == 404


def test_version_put_is_a_long_running_operation(reg: Reg, ws: LocalWorkspace, model_name: str) -> None:
    uri = _upload(reg, ws, model_name, "1", {"MLmodel": b"m"})
    put = _put_version(reg, model_name, "1", uri, description="first")
    assert put.status_code == 202
    assert put.text == "null"
    assert put.headers["x-ms-async-operation-timeout"] == "PT1H"
    location = urlsplit(put.headers["Location"])
    assert f"https://{location.netloc}" == ws.resource_manager_url
    assert location.path.startswith("/assetstore/v1.0/operations/")
    done = reg.wait(put)
    assert done.json() == {"assetId": f"azureml://registries/{REGISTRY}/models/{model_name}/versions/1"}
    assert reg.get_url(put.headers["Location"]).status_code == 200  # polling again is harmless
    got = reg.call("GET", f"models/{model_name}/versions/1").json()
    assert got["id"] == done.json()["assetId"] and got["name"] == model_name and got["type"] == "models"
    props = got["properties"]
    assert props["description"] == "first" and props["flavors"] == {} and props["isArchived"] is False
    assert "stage" not in props and "provisioningState" not in props
    assert {"originAssetId", "jobName", "intellectualProperty"} <= set(props)
    assert set(got["systemData"]) >= {"createdAt", "lastModifiedAt"}


def test_operation_in_progress_until_polled(reg: Reg, ws: LocalWorkspace, model_name: str) -> None:
    ws.registry_state.polls_in_progress = 1
    try:
        put = _put_version(reg, model_name, "1", _upload(reg, ws, model_name, "1", {"f": b"x"}))
        assert put.status_code == 202
        assert reg.call("GET", f"models/{model_name}/versions/1").status_code == 404  # not written yet
        first = reg.get_url(put.headers["Location"])
        assert first.status_code == 202 and first.content == b""
        assert reg.get_url(put.headers["Location"]).status_code == 200
    finally:
        ws.registry_state.polls_in_progress = 0
    assert reg.call("GET", f"models/{model_name}/versions/1").status_code == 200


def test_pending_upload_sas_is_limited_to_its_own_container(reg: Reg, ws: LocalWorkspace, model_name: str) -> None:
    from azure.core.exceptions import HttpResponseError
    from azure.storage.blob import ContainerClient

    body = {"assetId": f"azureml://registries/{REGISTRY}/models/{model_name}/versions/3"}
    answer = reg.call("PUT", f"tempdatarefs/{model_name}/versions/3", json=body).json()
    reference = answer["blobReferenceForConsumption"]
    sas_uri = reference["credential"]["sasUri"]
    assert reference["credential"]["credentialType"] == "SAS"
    base, query = sas_uri.split("?", 1)
    sas = parse_qs(query)
    assert sas["sr"] == ["c"] and set(sas["sp"][0]) == set("rcwl")
    account = ws.registry_datastore()["accountName"]
    assert base == reference["blobUri"] and base.startswith(f"https://127.0.0.1:{ws.blob_port}/{account}/")
    assert reference["storageAccountArmId"].endswith(f"/providers/Microsoft.Storage/storageAccounts/{account}")
    again = reg.call("PUT", f"tempdatarefs/{model_name}/versions/3", json=body).json()
    assert again["blobReferenceForConsumption"]["blobUri"] == base  # create-or-get: the same container
    other = reg.call("PUT", f"tempdatarefs/{model_name}/versions/4", json=body).json()
    assert other["blobReferenceForConsumption"]["blobUri"] != base  # each version has its own
    ContainerClient.from_container_url(sas_uri, connection_verify=ws.ca_bundle).upload_blob("f", b"x")
    other_base = other["blobReferenceForConsumption"]["blobUri"]
    foreign = ContainerClient.from_container_url(f"{other_base}?{query}", connection_verify=ws.ca_bundle)
    with pytest.raises(HttpResponseError) as refused:
        foreign.upload_blob("f", b"x")
    assert refused.value.status_code == 403


def test_model_uri_is_stored_host_style_and_datarefs_reads_it(
    reg: Reg, ws: LocalWorkspace, model_name: str
) -> None:
    from azure.core.exceptions import HttpResponseError
    from azure.storage.blob import ContainerClient

    files = {"MLmodel": b"flavors: {}\n", "sub/data.bin": uuid.uuid4().bytes}
    uri = _upload(reg, ws, model_name, "1", files)
    reg.wait(_put_version(reg, model_name, "1", uri))
    stored = reg.call("GET", f"models/{model_name}/versions/1").json()["properties"]["modelUri"]
    account = ws.registry_datastore()["accountName"]
    container = urlsplit(uri).path.split("/")[2]
    assert stored == f"https://{account}.blob.core.localhost:{ws.blob_port}/{container}/model_dir"
    answer = reg.call(
        "POST",
        f"datarefs/{model_name}/versions/1",
        json={"assetId": f"azureml://registries/{REGISTRY}/models/{model_name}/versions/1", "blobUri": stored},
    )
    assert answer.status_code == 200
    reference = answer.json()["blobReferenceForConsumption"]
    assert reference["blobUri"] == stored and reference["credential"]["credentialType"] == "SAS"
    sas_uri = reference["credential"]["sasUri"]
    sas = parse_qs(sas_uri.split("?", 1)[1])
    assert sas["sr"] == ["c"] and set(sas["sp"][0]) == set("rl")
    client = ContainerClient.from_container_url(sas_uri, connection_verify=ws.ca_bundle)
    names = sorted(b.name for b in client.list_blobs(name_starts_with="model_dir/"))
    assert names == sorted(f"model_dir/{p}" for p in files)
    assert client.download_blob("model_dir/sub/data.bin").readall() == files["sub/data.bin"]
    with pytest.raises(HttpResponseError) as refused:
        client.upload_blob("model_dir/new", b"x")
    assert refused.value.status_code == 403
    assert reg.call("POST", f"datarefs/{model_name}/versions/9", json={}).status_code == 404
    again = reg.call("PUT", f"tempdatarefs/{model_name}/versions/1", json={"assetId": "x"})
    assert again.status_code == 409  # the SDK skips its upload on 409 ("Asset already exists")


def test_unknown_model_lists_empty_and_versions_page(
    reg: Reg, ws: LocalWorkspace, model_name: str, small_pages: int
) -> None:
    empty = reg.call("GET", f"models/{model_name}/versions")
    assert empty.status_code == 200 and empty.json() == {"value": []}
    assert reg.call("GET", f"models/{model_name}").status_code == 404
    uri = _upload(reg, ws, model_name, "1", {"f": b"x"})
    for v in range(1, 6):
        reg.wait(_put_version(reg, model_name, str(v), uri))
    seen, page = [], reg.call("GET", f"models/{model_name}/versions", params={"$orderBy": "createdtime asc"})
    while True:
        body = page.json()
        assert len(body["value"]) <= small_pages
        seen += [v["id"].rsplit("/", 1)[1] for v in body["value"]]
        if "nextLink" not in body:
            break
        assert "orderBy" in body["nextLink"] and body["nextLink"].startswith(ws.resource_manager_url)
        page = reg.get_url(body["nextLink"])
    assert seen == ["1", "2", "3", "4", "5"]
    container = reg.call("GET", f"models/{model_name}").json()
    assert container["id"] == f"azureml://registries/{REGISTRY}/models/{model_name}"
    assert (container["properties"]["latestVersion"], container["properties"]["nextVersion"]) == ("5", "6")


def test_changed_path_refused_delete_and_container_archive(reg: Reg, ws: LocalWorkspace, model_name: str) -> None:
    uri = _upload(reg, ws, model_name, "1", {"f": b"x"})
    reg.wait(_put_version(reg, model_name, "1", uri, description="a"))
    changed = _put_version(reg, model_name, "1", f"{uri}-other")
    assert changed.status_code == 400 and changed.json()["error"]["message"] == "Asset paths cannot be updated."
    update = reg.wait(_put_version(reg, model_name, "1", uri, description="b"))
    assert update.status_code == 200
    assert reg.call("GET", f"models/{model_name}/versions/1").json()["properties"]["description"] == "b"
    archive = reg.call("PUT", f"models/{model_name}", json={"properties": {"isArchived": True}})
    reg.wait(archive)
    active = reg.call("GET", "models", params={"listViewType": "ActiveOnly"}).json()["value"]
    assert model_name not in {c["name"] for c in active}
    everything = reg.call("GET", "models", params={"listViewType": "All"}).json()["value"]
    assert model_name in {c["name"] for c in everything}
    reg.wait(reg.call("DELETE", f"models/{model_name}/versions/1"))
    assert reg.call("GET", f"models/{model_name}/versions/1").status_code == 404
    assert reg.call("DELETE", f"models/{model_name}/versions/1").status_code == 204
    assert reg.call("GET", f"models/{model_name}").json()["properties"]["nextVersion"] == "2"  # never reset
    deleted = reg.wait(reg.call("DELETE", f"models/{model_name}"))  # now empty: a container delete is an LRO too
    assert deleted.status_code == 200
    assert reg.call("GET", f"models/{model_name}").status_code == 404
    assert reg.get_url(f"{ws.resource_manager_url}/assetstore/v1.0/operations/unknown").status_code == 404


def test_request_log_names_every_registry_operation(reg: Reg, ws: LocalWorkspace, model_name: str) -> None:
    ws.clear_requests()
    reg.discovery()
    uri = _upload(reg, ws, model_name, "1", {"f": b"x"})
    reg.wait(_put_version(reg, model_name, "1", uri))
    reg.call("GET", f"models/{model_name}/versions/1")
    reg.call("GET", f"models/{model_name}/versions")
    reg.call("POST", f"datarefs/{model_name}/versions/1", json={})
    assert [(r["operation"], r.get("registry")) for r in ws.requests] == [
        ("RegistryDiscovery_Get", REGISTRY),
        ("TemporaryDataReferences_CreateOrGet", REGISTRY),
        ("RegistryModelVersions_CreateOrUpdate", REGISTRY),
        ("AssetStoreOperations_Get", REGISTRY),
        ("RegistryModelVersions_Get", REGISTRY),
        ("RegistryModelVersions_List", REGISTRY),
        ("DataReferences_GetBlobReferenceSas", REGISTRY),
    ]
