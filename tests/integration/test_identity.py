"""Azure identities the plugin's default chain (``DefaultAzureCredential``) must work with, end to end.

Loopback fakes stand in for the token services (``tests/fakes/identity.py``); they answer with the
local workspace's token, so a registration and a ``models:/`` load prove the whole path. The local
token (``MLFLOW_AZUREML_LOCAL_TOKEN``) is unset, so ``credentials.resolve`` picks the default chain.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from azure.identity._constants import EnvironmentVariables
from mlflow.exceptions import MlflowException

from mlflow_azureml_registry import credentials, session, settings
from mlflow_azureml_registry.local.workspace import TENANT_ID

from ..fakes.identity import APP_SERVICE, AZURE_ML, IMDS, EntraTokenEndpoint, ManagedIdentityEndpoint

pytestmark = pytest.mark.emulator_only("managed and workload identity against loopback fakes of their token services")

# Every variable azure-identity reads to pick a credential, plus the local workspace's token.
_IDENTITY_ENV = sorted(
    {v for k, v in vars(EnvironmentVariables).items() if k.isupper() and isinstance(v, str)} | {settings.LOCAL_TOKEN}
)


@pytest.fixture
def identity_env(workspace, monkeypatch) -> Iterator[pytest.MonkeyPatch]:
    """No identity configured at all, a fresh default chain and fresh gateways; all restored afterwards."""
    for name in _IDENTITY_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(credentials, "_default", None)
    credentials.configure(None)
    session.reset()
    yield monkeypatch
    session.reset()
    monkeypatch.undo()
    session.reset()


def _register_and_load(workspace, model_name: str, model_dir: Path, iris) -> None:
    from azure.identity import DefaultAzureCredential

    assert isinstance(credentials.resolve(workspace.resource_manager_url), DefaultAzureCredential)
    mv = mlflow.register_model(str(model_dir), model_name)
    loaded = mlflow.pyfunc.load_model(f"models:/{model_name}/{mv.version}")
    assert len(loaded.predict(iris.head(3))) == 3


@pytest.mark.parametrize(
    "flavour, client_id",
    [
        (APP_SERVICE, None),  # IDENTITY_ENDPOINT + IDENTITY_HEADER: App Service, Functions, newer Azure ML compute
        (AZURE_ML, str(uuid.uuid4())),  # MSI_ENDPOINT + MSI_SECRET: Azure ML compute, user-assigned identity
        (IMDS, None),  # no endpoint variables: IMDS (VMs, VM scale sets; AKS pod identity moves its host)
    ],
)
def test_managed_identity(workspace, identity_env, model_name, sklearn_model_dir, iris, flavour, client_id):
    secret = uuid.uuid4().hex
    resource = workspace.resource_manager_url
    with ManagedIdentityEndpoint(flavour, workspace.token, {resource}, secret=secret, client_id=client_id) as fake:
        if flavour == APP_SERVICE:
            identity_env.setenv("IDENTITY_ENDPOINT", fake.url)
            identity_env.setenv("IDENTITY_HEADER", secret)
        elif flavour == AZURE_ML:
            identity_env.setenv("MSI_ENDPOINT", fake.url)
            identity_env.setenv("MSI_SECRET", secret)
        else:
            identity_env.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", fake.authority_host)
        if client_id:
            identity_env.setenv("AZURE_CLIENT_ID", client_id)
        _register_and_load(workspace, model_name, sklearn_model_dir, iris)
    assert fake.refusals == []
    assert fake.granted and {r.query["resource"] for r in fake.granted} == {resource}


def test_workload_identity(workspace, identity_env, model_name, sklearn_model_dir, iris, tmp_path):
    """CI (GitHub OIDC) and AKS: a federated token file exchanged at Entra ID for an access token."""
    import azure.identity

    assertion = f"federated.{uuid.uuid4().hex}.token"
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text(assertion)
    client_id = str(uuid.uuid4())
    certs = Path(workspace.ca_cert).parent  # the local workspace's certificate also covers 127.0.0.1
    built: list[dict] = []

    class WithoutInstanceDiscovery(azure.identity.DefaultAzureCredential):
        """MSAL's supported switch: a loopback authority is not one Microsoft knows (the real one is)."""

        def __init__(self, **kwargs):
            built.append(kwargs)
            super().__init__(disable_instance_discovery=True, **kwargs)

    with EntraTokenEndpoint(
        workspace.token,
        {f"{workspace.resource_manager_url}/.default"},
        tenant_id=TENANT_ID,
        client_id=client_id,
        assertion=assertion,
        cert_file=str(certs / "server.pem"),
        key_file=str(certs / "server-key.pem"),
    ) as fake:
        identity_env.setattr(azure.identity, "DefaultAzureCredential", WithoutInstanceDiscovery)
        identity_env.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
        identity_env.setenv("AZURE_CLIENT_ID", client_id)
        identity_env.setenv("AZURE_TENANT_ID", TENANT_ID)
        identity_env.setenv("AZURE_AUTHORITY_HOST", fake.authority_host)
        _register_and_load(workspace, model_name, sklearn_model_dir, iris)
    # The plugin's own chain: no prompt, and every token request bounded (test_identity_timeouts.py).
    assert [sorted(kwargs) for kwargs in built] == [
        sorted(["exclude_interactive_browser_credential", *credentials.token_request_options()])
    ]
    assert built[0]["exclude_interactive_browser_credential"] is True
    assert fake.refusals == []
    assert [r.path for r in fake.granted if r.method == "POST"] == [f"/{TENANT_ID}/oauth2/v2.0/token"]


def test_no_credential_fails_fast_and_says_what_to_do(workspace, identity_env, model_name, tmp_path):
    """Nothing configured, managed identity unreachable: UNAUTHENTICATED in seconds, never a browser or a prompt.

    The seconds are azure-identity's own: it retries a refused managed-identity endpoint 3 times
    (0 + 1.6 + 3.2 s back-off), which is right on Azure, where such endpoints can blip.
    """
    empty = tmp_path / "empty"
    empty.mkdir()
    for name in ("HOME", "AZURE_CONFIG_DIR", "PATH"):  # no Azure CLI, azd, PowerShell or token caches
        identity_env.setenv(name, str(empty))
    identity_env.setenv("IDENTITY_ENDPOINT", "http://127.0.0.1:9/token")  # nothing listens there
    identity_env.setenv("IDENTITY_HEADER", "tests")
    browsers: list[str] = []
    identity_env.setattr("webbrowser.open", lambda url, *a, **k: browsers.append(url) or False)
    client = mlflow.MlflowClient(registry_uri=workspace.registry_uri())
    start = time.monotonic()
    with pytest.raises(MlflowException) as info:
        client.get_registered_model(model_name)
    elapsed = time.monotonic() - start
    message = info.value.message
    assert info.value.error_code == "UNAUTHENTICATED"
    assert elapsed < 8, f"took {elapsed:.1f}s"
    assert browsers == []
    # azure-identity stops the chain at a managed identity that is configured but fails.
    for tried in ("EnvironmentCredential", "WorkloadIdentityCredential", "ManagedIdentityCredential"):
        assert tried in message
    for remedy in ("az login", "AZURE_CLIENT_ID", "AZURE_FEDERATED_TOKEN_FILE", "configure(credential=...)"):
        assert remedy in message
    assert "Traceback" not in message
