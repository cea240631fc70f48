"""The gateway (retries, timeouts, errors, GET-then-PUT) and the create protocol under faults and races."""

from __future__ import annotations

import threading
import time
import uuid

import mlflow
import pytest
from mlflow.exceptions import MlflowException

from mlflow_azureml_registry import credentials, session
from mlflow_azureml_registry.local.handlers import Response
from mlflow_azureml_registry.store import AzureMLRegistryStore

pytestmark = pytest.mark.emulator_only(
    "injects throttling, errors and racing writers through the emulator's interceptor, and uses its "
    "tokens, keys and forbidden workspace"
)


class Script:
    """An interceptor for the local workspace: callables decide per request (None = pass through)."""

    def __init__(self, before=None, after=None):
        self._before, self._after = before, after
        self.lock = threading.Lock()

    def before(self, request):
        return self._before(request) if self._before else None

    def after(self, request, response):
        return self._after(request, response) if self._after else True


@pytest.fixture
def intercept(workspace):
    def install(**kwargs):
        workspace.set_interceptor(Script(**kwargs))

    yield install
    workspace.set_interceptor(None)


@pytest.fixture
def fresh_gateways(monkeypatch):
    """Gateways built anew, so environment changes made by the test apply; restored afterwards."""
    session.reset()
    yield monkeypatch
    monkeypatch.undo()
    session.reset()


def _store(workspace, name="local-ws"):
    return AzureMLRegistryStore(workspace.registry_uri(name))


def _is(request, method, suffix):
    return request.method == method and request.path.endswith(suffix)


def test_retry_after_is_honoured(workspace, client, model_name, intercept):
    client.create_registered_model(model_name)
    answered = []

    def before(request):
        if _is(request, "GET", f"/models/{model_name}") and not answered:
            answered.append(time.monotonic())
            return Response(429, {"error": {"code": "TooManyRequests", "message": "slow down"}}, {"Retry-After": "1"})
        return None

    intercept(before=before)
    start = time.monotonic()
    assert client.get_registered_model(model_name).name == model_name
    assert time.monotonic() - start >= 0.9  # waited as told
    gets = [r for r in workspace.requests if r["path"].endswith(f"/models/{model_name}")]
    assert [r["status"] for r in gets[-2:]] == [429, 200]


def test_persistent_throttling_is_request_limit_exceeded_with_request_id(
    workspace, model_name, intercept, fresh_gateways
):
    fresh_gateways.setenv("MLFLOW_AZUREML_RETRY_TOTAL", "1")
    intercept(
        before=lambda r: Response(429, {"error": {"code": "TooManyRequests", "message": "slow"}}, {"Retry-After": "0"})
    )
    with pytest.raises(MlflowException) as info:
        _store(workspace).get_registered_model(model_name)
    assert info.value.error_code == "REQUEST_LIMIT_EXCEEDED"
    assert "x-ms-request-id:" in info.value.message


def test_server_errors_are_retried(workspace, client, model_name, intercept):
    client.create_registered_model(model_name)
    failures = [503, 500]

    def before(request):
        if _is(request, "GET", f"/models/{model_name}") and failures:
            return Response(failures.pop(0), {"error": {"code": "ServiceError", "message": "oops"}})
        return None

    intercept(before=before)
    assert client.get_registered_model(model_name).name == model_name
    assert failures == []


def test_every_call_has_a_timeout(workspace, model_name, intercept, fresh_gateways):
    fresh_gateways.setenv("MLFLOW_AZUREML_HTTP_TIMEOUT", "1")
    fresh_gateways.setenv("MLFLOW_AZUREML_RETRY_TOTAL", "0")
    intercept(before=lambda r: time.sleep(3))
    start = time.monotonic()
    with pytest.raises(MlflowException) as info:
        _store(workspace).get_registered_model(model_name)
    assert time.monotonic() - start < 2.9
    assert info.value.error_code == "TEMPORARILY_UNAVAILABLE"


def test_forbidden_workspace_is_permission_denied_with_hint(workspace, model_name):
    with pytest.raises(MlflowException) as info:
        _store(workspace, "forbidden-ws").get_registered_model(model_name)
    assert info.value.error_code == "PERMISSION_DENIED"
    assert "role" in info.value.message and "x-ms-request-id:" in info.value.message
    assert "Traceback" not in info.value.message


def _read_only_sas(workspace) -> str:
    import datetime as dt

    from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas

    account = workspace.datastore("local-ws")["accountName"]
    return "?" + generate_account_sas(
        account,
        workspace.account_keys[account],
        ResourceTypes(container=True, object=True),
        AccountSasPermissions(read=True, list=True),
        expiry=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1),
    )


def test_storage_refusal_is_permission_denied_with_a_storage_hint(
    workspace, client, model_name, intercept, fresh_gateways, tmp_path
):
    """A datastore SAS that may only read: loading works, registering is refused with what to check on storage."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "a.txt").write_text(uuid.uuid4().hex)
    version = mlflow.register_model(str(folder), model_name).version
    sas = _read_only_sas(workspace)
    intercept(before=lambda r: Response(200, {"secretsType": "Sas", "sasToken": sas}) if _is(r, "POST", "/listSecrets")
              else None)
    session.reset()
    out = mlflow.artifacts.download_artifacts(f"models:/{model_name}/{version}", dst_path=str(tmp_path / "out"))
    assert (tmp_path / "out" / "a.txt").read_text() == (folder / "a.txt").read_text(), out

    (folder / "b.txt").write_text("new content: a new upload")
    with pytest.raises(MlflowException) as info:
        mlflow.register_model(str(folder), model_name)
    assert info.value.error_code == "PERMISSION_DENIED"
    message = info.value.message
    assert "Storage Blob Data Contributor" in message and "x-ms-request-id:" in message
    assert "role on the workspace" not in message and "sig=" not in message
    assert _reachable_secrets(info.value, sas) == []  # not in a hidden place either (issue #15)
    assert [v.version for v in client.search_model_versions(f"name = '{model_name}'")] == [version]


def _reachable_secrets(exc, sas):
    """Where the SAS signature can still be read from an exception: its chain, texts, attributes and the locals
    of the frames of the chained exceptions' tracebacks."""
    signature = dict(p.split("=", 1) for p in sas.lstrip("?").split("&"))["sig"]
    found, seen, todo = [], set(), [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        texts = [str(current), repr(current.args)] + [repr(v) for v in vars(current).values()]
        found += [f"{type(current).__name__}: text" for t in texts if signature in t or "sig=" in t]
        if current is not exc:  # frames of the exceptions behind the one raised to the caller
            tb = current.__traceback__
            while tb is not None:
                found += [f"{type(current).__name__}: frame local {k}" for k, v in tb.tb_frame.f_locals.items()
                          if signature in repr(v)]
                tb = tb.tb_next
        todo += [current.__context__, current.__cause__]
    return found


def test_updates_send_back_the_get_body_untouched(workspace, client, model_name, sklearn_model_dir):
    client.create_registered_model(model_name)
    mv = client.create_model_version(model_name, str(sklearn_model_dir))
    state = workspace.state
    stored = state.get_version("local-ws", model_name, str(mv.version))["properties"]
    state.put_version(
        "local-ws", model_name, str(mv.version), {**stored, "futureField": {"kept": "verbatim"}, "jobName": "job-1"}
    )
    before = state.get_version("local-ws", model_name, str(mv.version))["properties"]
    client.set_model_version_tag(model_name, mv.version, "k", "v")
    client.update_model_version(model_name, mv.version, "new description")
    after = state.get_version("local-ws", model_name, str(mv.version))["properties"]
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert changed == {"tags", "description"}
    assert after["futureField"] == {"kept": "verbatim"} and after["jobName"] == "job-1"


def test_dropped_answer_after_version_put_is_reconciled(workspace, client, model_name, sklearn_model_dir, intercept):
    client.create_registered_model(model_name)
    dropped = []

    def after(request, response):
        if _is(request, "PUT", f"/models/{model_name}/versions/1") and not dropped:
            dropped.append(response.status)
            return False  # the write happened; the client never hears about it
        return True

    intercept(after=after)
    mv = client.create_model_version(model_name, str(sklearn_model_dir), description="once")
    assert dropped == [201]
    assert mv.version == 1
    versions = client.search_model_versions(f"name = '{model_name}'")
    assert [v.version for v in versions] == [1]  # no duplicate from the retried PUT
    assert versions[0].description == "once"


def test_racing_writer_with_other_files_gets_the_number(workspace, client, model_name, sklearn_model_dir, intercept):
    """Another client creates version 1 between our existence check and our PUT."""
    client.create_registered_model(model_name)
    foreign = {
        "modelUri": "azureml://datastores/workspaceblobstore/paths/other/model",
        "modelType": "custom_model",
        "properties": {"mlflow.registrationId": str(uuid.uuid4())},
        "description": "foreign",
    }

    def before(request):
        if (
            _is(request, "PUT", f"/models/{model_name}/versions/1")
            and not workspace.state.list_versions(
                "local-ws",
                model_name,
                view="All",
                newest_first=True,
                top=None,
                offset=0,
                version=None,
                description=None,
                tags=None,
                properties=None,
                stage=None,
            ).items
        ):
            workspace.state.put_version("local-ws", model_name, "1", foreign)
        return None

    intercept(before=before)
    mv = client.create_model_version(model_name, str(sklearn_model_dir), description="ours")
    assert mv.version == 2 and mv.description == "ours"
    assert client.get_model_version(model_name, "1").description == "foreign"  # untouched


def test_racing_writer_with_same_files_is_detected_by_verification(
    workspace, client, model_name, sklearn_model_dir, intercept
):
    """Another client overwrites our version 1 (same files) before our verification GET."""
    client.create_registered_model(model_name)
    raced = []

    def after(request, response):
        if _is(request, "PUT", f"/models/{model_name}/versions/1") and not raced:
            raced.append(1)
            props = dict(workspace.state.get_version("local-ws", model_name, "1")["properties"])
            props["properties"] = {**props["properties"], "mlflow.registrationId": "someone-else"}
            props["description"] = "theirs"
            workspace.state.put_version("local-ws", model_name, "1", props)
        return True

    intercept(after=after)
    mv = client.create_model_version(model_name, str(sklearn_model_dir), description="ours")
    assert raced and mv.version == 2 and mv.description == "ours"
    assert client.get_model_version(model_name, "1").description == "theirs"


def test_numbers_taken_by_others_are_skipped(workspace, client, model_name, sklearn_model_dir):
    client.create_registered_model(model_name)
    # nextVersion says 1, but someone made versions 1 and 2 in the meantime via the SDK's explicit versions.
    for v in ("1", "2"):
        workspace.state.put_version(
            "local-ws",
            model_name,
            v,
            {"modelUri": f"azureml://datastores/workspaceblobstore/paths/x{v}", "modelType": "custom_model"},
        )
    assert client.create_model_version(model_name, str(sklearn_model_dir)).version == 3


def test_non_integer_versions_are_skipped_with_a_warning(workspace, client, model_name, sklearn_model_dir, caplog):
    client.create_registered_model(model_name)
    client.create_model_version(model_name, str(sklearn_model_dir))
    workspace.state.put_version(
        "local-ws",
        model_name,
        "v2-cli",
        {"modelUri": "azureml://datastores/workspaceblobstore/paths/cli", "modelType": "custom_model"},
    )
    with caplog.at_level("WARNING"):
        versions = client.search_model_versions(f"name = '{model_name}'")
        latest = client.get_latest_versions(model_name)
    assert [v.version for v in versions] == [1] and [v.version for v in latest] == [1]
    assert "v2-cli" in caplog.text
    assert client.create_model_version(model_name, str(sklearn_model_dir)).version == 2


def test_configured_credential_is_used_by_store_and_artifact_repo(
    workspace, model_name, sklearn_model_dir, fresh_gateways
):
    calls = []

    class Recording:
        def get_token(self, *scopes, **kwargs):
            calls.append(scopes)
            return workspace.credential().get_token(*scopes)

    fresh_gateways.delenv("MLFLOW_AZUREML_LOCAL_TOKEN")
    credentials.configure(Recording())
    try:
        store = _store(workspace)
        store.create_registered_model(model_name)
        mv = store.create_model_version(model_name, str(sklearn_model_dir))
        files = mlflow.artifacts.download_artifacts(store.get_model_version_download_uri(model_name, mv.version))
        assert (__import__("pathlib").Path(files) / "MLmodel").is_file()
        assert calls and all(s == (f"{workspace.resource_manager_url}/.default",) for s in calls)
    finally:
        credentials.configure(None)


def test_ml_client_credential_can_be_reused(workspace, model_name, fresh_gateways):
    from azure.ai.ml import MLClient

    fresh_gateways.delenv("MLFLOW_AZUREML_LOCAL_TOKEN")
    credentials.configure(ml_client=MLClient(**workspace.ml_client_kwargs()))
    try:
        assert _store(workspace).create_registered_model(model_name).name == model_name
    finally:
        credentials.configure(None)


def test_wrong_token_is_unauthenticated_with_hint(workspace, model_name, fresh_gateways):
    fresh_gateways.setenv("MLFLOW_AZUREML_LOCAL_TOKEN", "not-the-token")
    with pytest.raises(MlflowException) as info:
        _store(workspace).get_registered_model(model_name)
    assert info.value.error_code == "UNAUTHENTICATED"
    assert "configure(credential=" in info.value.message
    assert "not-the-token" not in info.value.message


def test_local_token_is_never_sent_to_non_loopback_endpoints(monkeypatch):
    monkeypatch.setenv("MLFLOW_AZUREML_LOCAL_TOKEN", "secret")
    chosen = credentials.resolve("https://management.azure.com")
    assert not isinstance(chosen, credentials.StaticTokenCredential)
    assert isinstance(credentials.resolve("https://127.0.0.1:8443"), credentials.StaticTokenCredential)
    assert "secret" not in repr(credentials.resolve("https://localhost:8443"))


def test_default_credential_never_prompts(monkeypatch):
    from azure.identity import DefaultAzureCredential, InteractiveBrowserCredential

    monkeypatch.delenv("MLFLOW_AZUREML_LOCAL_TOKEN", raising=False)
    monkeypatch.setattr(credentials, "_default", None)
    chosen = credentials.resolve("https://management.azure.com")
    assert isinstance(chosen, DefaultAzureCredential)
    assert not any(isinstance(c, InteractiveBrowserCredential) for c in chosen.credentials)
