"""Token requests are bounded: a hung identity endpoint fails the first registry call, it does not block it.

Each test points the default chain (``DefaultAzureCredential``; the local token is unset) at a loopback
endpoint that accepts the connection and never answers (``tests/fakes/identity.py``'s
``SilentEndpoint``). Without a bound, azure-identity waits 300 s per attempt and retries: over 20
minutes. The plugin gives every credential it builds its connect and read timeouts, a bounded retry and
a deadline per token request (``MLFLOW_AZUREML_TOKEN_TIMEOUT``, default 20 s). The call runs on a
thread joined with a timeout, so a regression fails in seconds instead of hanging the suite.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any, Optional

import mlflow
import pytest
from mlflow.exceptions import MlflowException

from mlflow_azureml_registry import settings
from mlflow_azureml_registry.local.workspace import TENANT_ID

from ..fakes.identity import SilentEndpoint, ThrottlingEndpoint
from .test_identity import identity_env  # noqa: F401 - the fixture: no identity configured, a fresh chain

# identity_env yields the test's own monkeypatch: set variables through it, it restores them.
pytestmark = [
    pytest.mark.usefixtures("identity_env"),
    pytest.mark.emulator_only("points the credential chain at loopback fakes of identity endpoints that hang"),
]

BUDGET = 2.0
"""The token deadline these tests set (``MLFLOW_AZUREML_TOKEN_TIMEOUT``), to stay fast."""
SLACK = 6.0
"""What the first registry call may take beyond the deadline (MLflow, the request to ARM, a slow CI box)."""
DEFAULT_BOUND = 30.0
"""With default settings the first registry call must fail within this (README: Credentials)."""


def _ssl_context(workspace) -> Any:
    import ssl

    certs = Path(workspace.ca_cert).parent  # the local workspace's certificate also covers 127.0.0.1
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(certs / "server.pem"), str(certs / "server-key.pem"))
    return context


def _isolate(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No Azure CLI, azd, PowerShell or token caches; IMDS, if ever reached, is a closed loopback port."""
    empty = tmp_path / "empty"
    empty.mkdir()
    for name in ("HOME", "AZURE_CONFIG_DIR", "PATH"):
        env.setenv(name, str(empty))
    env.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:9")  # never 169.254.169.254


def _point_at(kind: str, endpoint: SilentEndpoint, env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    if kind == "app_service":  # App Service, Functions, Container Apps, newer Azure ML compute
        env.setenv("IDENTITY_ENDPOINT", endpoint.url)
        env.setenv("IDENTITY_HEADER", uuid.uuid4().hex)
    elif kind == "azure_ml":  # Azure ML compute
        env.setenv("MSI_ENDPOINT", endpoint.url)
        env.setenv("MSI_SECRET", uuid.uuid4().hex)
    elif kind == "cloud_shell":  # MSI_ENDPOINT without a secret
        env.setenv("MSI_ENDPOINT", endpoint.url)
    elif kind == "imds":  # VMs, scale sets; AKS pod identity moves the host
        env.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", endpoint.authority_host)
    elif kind == "workload_identity":  # CI with a federated token, AKS workload identity
        token_file = tmp_path / "azure-identity-token"
        token_file.write_text(f"federated.{uuid.uuid4().hex}.token")
        env.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
        env.setenv("AZURE_CLIENT_ID", str(uuid.uuid4()))
        env.setenv("AZURE_TENANT_ID", TENANT_ID)
        env.setenv("AZURE_AUTHORITY_HOST", endpoint.authority_host)
    else:
        raise AssertionError(kind)


# The request each kind sends to the hung endpoint: proof that the test exercised that credential.
_ASKED = {
    "app_service": "GET /msi/token?",
    "azure_ml": "GET /msi/token?",
    "cloud_shell": "POST /msi/token",
    "imds": "GET /metadata/identity/oauth2/token?",
    "workload_identity": f"POST /{TENANT_ID}/oauth2/v2.0/token",
}
# What the message names as tried (azure-identity stops the chain at a configured credential that fails,
# except IMDS, which it skips as unavailable, going on to the developer tools).
_TRIED = {
    "app_service": ("EnvironmentCredential", "WorkloadIdentityCredential", "ManagedIdentityCredential"),
    "azure_ml": ("EnvironmentCredential", "WorkloadIdentityCredential", "ManagedIdentityCredential"),
    "cloud_shell": ("EnvironmentCredential", "WorkloadIdentityCredential", "ManagedIdentityCredential"),
    "imds": ("EnvironmentCredential", "ManagedIdentityCredential", "AzureCliCredential"),
    "workload_identity": ("EnvironmentCredential", "WorkloadIdentityCredential"),
}


class _FirstCall:
    """``get_registered_model`` on a thread, so a call that never ends fails the test instead of hanging it."""

    def __init__(self, registry_uri: str, name: str) -> None:
        self.error: Optional[BaseException] = None
        self.elapsed: Optional[float] = None
        self._client = mlflow.MlflowClient(registry_uri=registry_uri)
        self._name = name
        self._thread = threading.Thread(target=self._run, name="first-registry-call", daemon=True)

    def _run(self) -> None:
        start = time.monotonic()
        try:
            self._client.get_registered_model(self._name)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
        self.elapsed = time.monotonic() - start

    def start(self) -> _FirstCall:
        self._thread.start()
        return self

    def wait(self, timeout: float) -> bool:
        """True when the call ended within ``timeout`` seconds."""
        self._thread.join(timeout)
        return not self._thread.is_alive()


def _first_call_against_hung_endpoint(
    kind: str, workspace, env: pytest.MonkeyPatch, tmp_path: Path, model_name: str, limit: float
) -> tuple[_FirstCall, SilentEndpoint]:
    _isolate(env, tmp_path)
    context = _ssl_context(workspace) if kind == "workload_identity" else None
    with SilentEndpoint(context) as endpoint:
        _point_at(kind, endpoint, env, tmp_path)
        call = _FirstCall(workspace.registry_uri(), model_name).start()
        in_time = call.wait(limit)
    # The endpoint is closed now (its sockets too), so even an unbounded client ends soon: join it.
    ended = call.wait(60)
    assert in_time, f"the first registry call was still blocked after {limit:g} s"
    assert ended, "the registry call still runs after its endpoint closed"
    return call, endpoint


def _assert_unauthenticated(call: _FirstCall, kind: str) -> str:
    assert isinstance(call.error, MlflowException), f"expected MlflowException, got {call.error!r}"
    assert call.error.error_code == "UNAUTHENTICATED", call.error.message
    message = call.error.message
    for tried in _TRIED[kind]:
        assert tried in message, message
    for remedy in ("az login", "AZURE_CLIENT_ID", "AZURE_FEDERATED_TOKEN_FILE", "configure(credential=...)"):
        assert remedy in message, message
    assert "Traceback" not in message
    return message


@pytest.mark.parametrize("kind", ["app_service", "azure_ml", "cloud_shell", "imds", "workload_identity"])
def test_hung_identity_endpoint_fails_within_the_token_deadline(workspace, monkeypatch, model_name, tmp_path, kind):
    monkeypatch.setenv(settings.TOKEN_TIMEOUT, f"{BUDGET:g}")
    call, endpoint = _first_call_against_hung_endpoint(
        kind, workspace, monkeypatch, tmp_path, model_name, BUDGET + SLACK
    )
    assert any(line.startswith(_ASKED[kind]) for line in endpoint.request_lines), endpoint.request_lines
    message = _assert_unauthenticated(call, kind)
    # It waited for the endpoint, up to the deadline: not a failure for some other reason.
    assert call.elapsed is not None and call.elapsed >= BUDGET * 0.9, f"{call.elapsed:.1f}s: {message}"
    if kind != "imds":  # IMDS reports any failure as "no response from the IMDS endpoint"
        assert settings.TOKEN_TIMEOUT in message, message


def test_retry_after_never_outlasts_the_token_deadline(workspace, monkeypatch, model_name, tmp_path):
    """An endpoint that answers 429 with a long ``Retry-After`` (azure-core sleeps as told) also ends at the deadline.

    30 s, not an hour: without the bound the call ends a little after the first wait, once the closed
    endpoint refuses the retry, so even a regression leaves no thread behind.
    """
    monkeypatch.setenv(settings.TOKEN_TIMEOUT, f"{BUDGET:g}")
    _isolate(monkeypatch, tmp_path)
    limit = BUDGET + SLACK
    with ThrottlingEndpoint(retry_after=30) as endpoint:
        monkeypatch.setenv("IDENTITY_ENDPOINT", endpoint.url)
        monkeypatch.setenv("IDENTITY_HEADER", uuid.uuid4().hex)
        call = _FirstCall(workspace.registry_uri(), model_name).start()
        in_time = call.wait(limit)
    ended = call.wait(60)  # the endpoint is closed: its next attempt is refused
    assert in_time, f"the first registry call was still blocked after {limit:g} s (token deadline {BUDGET:g} s)"
    assert ended, "the registry call still runs after its endpoint closed"
    assert endpoint.refusals, "the endpoint was never asked"
    message = _assert_unauthenticated(call, "app_service")
    assert call.elapsed is not None and call.elapsed >= BUDGET * 0.9, f"{call.elapsed:.1f}s: {message}"


def test_default_token_deadline_is_finite_and_under_half_a_minute(workspace, monkeypatch, model_name, tmp_path):
    """With no timeout variable set, a hung App Service endpoint fails the first call in under 30 s."""
    for name in (settings.TOKEN_TIMEOUT, settings.HTTP_TIMEOUT, settings.CONNECT_TIMEOUT, settings.RETRY_TOTAL):
        monkeypatch.delenv(name, raising=False)
    assert 0 < settings.token_timeout() < DEFAULT_BOUND
    call, endpoint = _first_call_against_hung_endpoint(
        "app_service", workspace, monkeypatch, tmp_path, model_name, DEFAULT_BOUND
    )
    assert endpoint.request_lines
    _assert_unauthenticated(call, "app_service")
    assert call.elapsed is not None and call.elapsed >= settings.token_timeout() * 0.9


def test_token_timeout_setting_is_checked(monkeypatch):
    monkeypatch.delenv(settings.TOKEN_TIMEOUT, raising=False)
    assert settings.token_timeout() == 20.0
    monkeypatch.setenv(settings.TOKEN_TIMEOUT, "0.5")
    assert settings.token_timeout() == 0.5
    for bad in ("soon", "-1", "0"):
        monkeypatch.setenv(settings.TOKEN_TIMEOUT, bad)
        with pytest.raises(ValueError, match=settings.TOKEN_TIMEOUT):
            settings.token_timeout()
