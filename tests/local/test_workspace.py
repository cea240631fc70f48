"""LocalWorkspace as a Python API: credentials, restart of Azurite, concurrency, test helpers."""

from __future__ import annotations

import base64
import json
import socket
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from mlflow_azureml_registry.local import LocalWorkspace
from mlflow_azureml_registry.local.testing import OffLoopbackConnection, loopback_only, resolve_localhost

from .conftest import Arm, model_uri


def test_attributes_and_env(ws: LocalWorkspace) -> None:
    assert ws.env["MLFLOW_AZUREML_RESOURCE_MANAGER_URL"] == ws.resource_manager_url
    assert ws.env["MLFLOW_AZUREML_STORAGE_ACCOUNT_URL"] == ws.storage_account_url_template
    assert ws.env["MLFLOW_REGISTRY_URI"] == ws.registry_uri() == ws.registry_uri("local-ws")
    assert ws.token not in "".join(v for k, v in ws.env.items() if k != "MLFLOW_AZUREML_LOCAL_TOKEN")
    assert ws.env["MLFLOW_AZUREML_REGISTRY_DISCOVERY_URL"] == ws.registry_discovery_url == ws.resource_manager_url
    assert ws.env["MLFLOW_AZUREML_LOCAL_REGISTRY_URI"] == ws.azureml_registry_uri() == (
        f"azureml-registry://subscriptions/{ws.subscription_id}/resourceGroups/{ws.resource_group}"
        "/registries/local-registry"
    )
    assert list(ws.env)[-2:] == ["MLFLOW_AZUREML_REGISTRY_DISCOVERY_URL", "MLFLOW_AZUREML_LOCAL_REGISTRY_URI"]
    registry_kwargs = ws.ml_client_kwargs(registry="local-registry")
    assert registry_kwargs["registry_name"] == "local-registry" and "workspace_name" not in registry_kwargs
    assert registry_kwargs["cloud_metadata"]["registry_discovery_endpoint"] == f"{ws.registry_discovery_url}/"
    assert set(ws.account_keys) >= {
        ws.datastore("local-ws")["accountName"],
        ws.datastore("local-ws-2")["accountName"],
    }
    kwargs = ws.ml_client_kwargs("local-ws-2")
    assert kwargs["workspace_name"] == "local-ws-2" and kwargs["cloud"] == f"LocalAzureML{ws.port}"
    assert set(kwargs["cloud_metadata"]) == {
        "azure_portal",
        "resource_manager",
        "active_directory",
        "aml_resource_id",
        "storage_endpoint",
        "registry_discovery_endpoint",
    }


def test_token_is_a_jwt_azurite_accepts(ws: LocalWorkspace) -> None:
    header, claims, signature = ws.token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    assert payload["aud"] == "https://storage.azure.com" and payload["iss"].startswith(
        "https://sts.windows.net/"
    )
    assert payload["nbf"] <= payload["iat"] < payload["exp"] and signature


def test_credential_only_serves_local_scopes(ws: LocalWorkspace) -> None:
    from azure.core.exceptions import ClientAuthenticationError

    credential = ws.credential()
    assert credential.get_token(f"{ws.resource_manager_url}/.default").token == ws.token
    assert credential.get_token("https://storage.azure.com/.default").token == ws.token
    with pytest.raises(ClientAuthenticationError):
        credential.get_token("https://management.azure.com/.default")


def test_concurrent_version_puts_keep_next_version_consistent(
    arm: Arm, ws: LocalWorkspace, model_name: str
) -> None:
    def put(v: int) -> int:
        body = {"properties": {"modelUri": model_uri(ws, model_name)}}
        return Arm(ws).put(f"models/{model_name}/versions/{v}", body).status_code

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(put, range(1, 33)))
    assert statuses.count(201) == 32
    container = arm.get(f"models/{model_name}").json()["properties"]
    assert container["nextVersion"] == "33"
    page = arm.get(f"models/{model_name}/versions").json()
    listed = page["value"]
    while page.get("nextLink"):  # 20 per page, as the real service
        page = arm.follow(page["nextLink"]).json()
        listed += page["value"]
    assert sorted(int(v["name"]) for v in listed) == list(range(1, 33))


def test_azurite_restart_on_the_same_port() -> None:
    with loopback_only(), LocalWorkspace(blob_persistence="disk") as local:
        port, props = local.blob_port, local.datastore()
        container = local.blob_service(props["accountName"]).get_container_client(props["containerName"])
        container.upload_blob("kept.txt", b"kept")
        local.stop_azurite()
        assert not local.azurite_running
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0
        local.start_azurite()
        assert local.azurite_running and local.blob_port == port
        assert container.download_blob("kept.txt").readall() == b"kept"
    assert not local.azurite_running and local.workdir is None


def test_resolve_localhost_and_loopback_guard() -> None:
    name = f"devstoreaccount1.blob.core.{uuid.uuid4().hex[:6]}.localhost"
    with resolve_localhost():
        assert {a[4][0] for a in socket.getaddrinfo(name, 443)} == {"127.0.0.1"}
    with loopback_only() as refused, socket.socket() as s, pytest.raises(OffLoopbackConnection):
        s.connect(("169.254.169.254", 80))  # the managed-identity endpoint: refused before any packet
    assert refused == [("169.254.169.254", 80)]


def test_managed_identity_probe_stays_on_loopback() -> None:
    """Even azure-identity's ManagedIdentityCredential only reaches the loopback IDENTITY_ENDPOINT here."""
    from azure.core.exceptions import AzureError
    from azure.identity import ManagedIdentityCredential

    with loopback_only() as refused, pytest.raises(AzureError, match="127.0.0.1"):
        ManagedIdentityCredential(retry_total=0).get_token("https://management.azure.com/.default")
    assert refused == []


class _OneShot:
    """A fault-injection stand-in: answer 429 once, then drop one answer after the state changed."""

    def __init__(self) -> None:
        self.throttled = self.dropped = False

    def before(self, request):
        from mlflow_azureml_registry.local.handlers import Response

        if not self.throttled:
            self.throttled = True
            body = {"error": {"code": "TooManyRequests", "message": "throttled"}}
            return Response(429, body, {"Retry-After": "1", "x-ms-response-type": "error"})
        return None

    def after(self, request, response) -> bool:
        if request.method == "PUT" and not self.dropped:
            self.dropped = True
            return False
        return True


def test_interceptor_seam_can_answer_early_and_drop_answers(
    arm: Arm, ws: LocalWorkspace, model_name: str
) -> None:
    import requests

    ws.clear_requests()
    ws.set_interceptor(_OneShot())
    try:
        throttled = arm.get(f"models/{model_name}/versions")
        assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "1"
        with pytest.raises(requests.ConnectionError):
            arm.put(
                f"models/{model_name}/versions/1", {"properties": {"modelUri": model_uri(ws, model_name)}}
            )
    finally:
        ws.set_interceptor(None)
    assert arm.get(f"models/{model_name}/versions/1").status_code == 200  # the lost PUT did happen
    statuses = [(r["method"], r["status"], r.get("dropped", False)) for r in ws.requests]
    assert statuses == [("GET", 429, False), ("PUT", None, True), ("GET", 200, False)]
