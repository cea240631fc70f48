"""``mlflow-azureml-registry doctor`` against the local workspace: a passing run (in process and as the installed
console script), a registry, and each failure named with its cause (issue #17)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlflow_azureml_registry import settings
from mlflow_azureml_registry.doctor import main

pytestmark = pytest.mark.emulator_only(
    "each failure is made of the local workspace's state: its token, a removed datastore, its permissions answer, "
    "a refusing storage endpoint, its forbidden workspace"
)

LINE = re.compile(r"^\s*(\d+) (ok|warn|FAIL|skip)\s+(\S+)\s+(.*)$")
TITLES = ["URI", "credential", "reachable", "permissions", "datastore", "storage", "clock", "MLflow", "plugins"]


def parse(output: str) -> dict[str, tuple[str, str]]:
    """check title -> (status, rest of the line); every check has exactly one line, in order."""
    found = [m.groups() for m in map(LINE.match, output.splitlines()) if m]
    assert [title for _, _, title, _ in found] == TITLES, output
    assert [int(number) for number, _, _, _ in found] == list(range(1, 10))
    return {title: (status, text) for _, status, title, text in found}


def doctor(capsys, *args: str) -> tuple[int, dict[str, tuple[str, str]], str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    return code, parse(out), out


def assert_no_secret(out: str, workspace) -> None:
    assert workspace.token not in out
    assert "sig=" not in out.replace("sig=<redacted>", "")
    assert not any(key in out for key in workspace.account_keys.values())
    assert "Traceback" not in out


def statuses(lines: dict[str, tuple[str, str]]) -> dict[str, str]:
    return {title: status for title, (status, _) in lines.items()}


# ------------------------------------------------------------------------------------------------ passing runs
def test_passing_run_creates_nothing(workspace, capsys):
    container = workspace.blob_service("devstoreaccount1").get_container_client(workspace.datastore()["containerName"])
    workspace.clear_requests()

    code, lines, out = doctor(capsys)  # the URI from MLFLOW_REGISTRY_URI

    assert code == 0, out
    assert set(statuses(lines).values()) == {"ok"}, out
    assert "(from MLFLOW_REGISTRY_URI)" in out.splitlines()[0]
    assert "workspace 'local-ws'" in lines["URI"][1]
    assert "00000000-0000-4000-8000-0000000000bb" in lines["credential"][1]  # the token's oid: whom it is for
    assert "MLFLOW_AZUREML_LOCAL_TOKEN" in lines["credential"][1]
    # the local token's own exp (30 days), not the credential's made-up hour
    assert re.search(r"valid (29|30) more days \(the token's exp claim\)", lines["credential"][1]), out
    assert "write: allowed" in lines["permissions"][1]
    assert "listSecrets gives a SAS" in lines["datastore"][1]
    assert "wrote, read back and removed a probe blob" in lines["storage"][1]
    assert "9 checks: 9 ok" in out
    assert_no_secret(out, workspace)
    # a dry run: no model asset written, and the probe blob is gone
    writes = [(r["method"], r["path"]) for r in workspace.requests if r["method"] in ("PUT", "POST", "DELETE", "PATCH")]
    assert all(path.endswith("/listSecrets") for _, path in writes), writes
    assert "Permissions_ListForResource" in {r.get("operation") for r in workspace.requests}
    assert list(container.list_blob_names(name_starts_with="mlflow-azureml-registry-doctor/")) == []


def _run_console_script(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / "mlflow-azureml-registry"  # the venv's installed console script
    assert script.exists(), script
    process = subprocess.Popen(
        [str(script), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_console_script_passes_and_fails_with_exit_codes(workspace):
    env = {**os.environ, **workspace.env}

    passed = _run_console_script(["doctor", workspace.registry_uri("local-ws-2")], env)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    lines = parse(passed.stdout)
    assert set(statuses(lines).values()) == {"ok"}, passed.stdout
    assert "workspace 'local-ws-2'" in lines["URI"][1]
    assert passed.stderr == ""

    failed = _run_console_script(["doctor", workspace.registry_uri("forbidden-ws")], env)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert statuses(parse(failed.stdout))["permissions"] == "FAIL"
    assert failed.stderr == ""
    for run in (passed, failed):
        assert workspace.token not in run.stdout + run.stderr


def test_registry_run(workspace, capsys, model_name, tmp_path):
    import mlflow

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "weights.txt").write_text("w")
    client = mlflow.MlflowClient(registry_uri=workspace.azureml_registry_uri())
    client.create_registered_model(model_name)
    version = client.create_model_version(model_name, str(folder)).version

    code, lines, out = doctor(capsys, workspace.azureml_registry_uri())

    assert code == 0, out
    assert "Azure ML registry 'local-registry'" in lines["URI"][1]
    assert "found" not in lines["URI"][1] and "to be looked up through registry discovery" in lines["URI"][1]
    assert lines["reachable"][0] == "ok" and "registry discovery" in lines["reachable"][1]
    assert lines["permissions"][0] == "ok" and "write: allowed" in lines["permissions"][1]
    assert lines["datastore"][0] == "skip" and "does not apply: a registry has no datastore" in lines["datastore"][1]
    assert lines["storage"][0] == "ok", out
    assert f"model {model_name!r} version {version} through a data reference" in lines["storage"][1]
    assert "write not probed" in lines["storage"][1]
    assert_no_secret(out, workspace)


def test_registry_by_name_alone(workspace, capsys):
    code, lines, out = doctor(capsys, "azureml-registry://registries/local-registry")
    assert code == 0, out
    assert "subscription 00000000-0000-4000-8000-000000000000" in lines["reachable"][1]  # supplied by discovery


# ------------------------------------------------------------------------------------------------ failures
def test_wrong_token(workspace, capsys, monkeypatch):
    wrong = "not-the-token-the-local-workspace-issued"
    monkeypatch.setenv(settings.LOCAL_TOKEN, wrong)

    code, lines, out = doctor(capsys, workspace.registry_uri())

    assert code == 1
    assert lines["credential"][0] == "warn" and "not a JWT" in lines["credential"][1]
    assert "expiry unknown" in lines["credential"][1] and "minutes" not in lines["credential"][1]
    status, text = lines["reachable"]
    assert status == "FAIL" and "token was refused" in text and "HTTP 401, InvalidAuthenticationToken" in text
    assert "To fix: MLFLOW_AZUREML_LOCAL_TOKEN is not the token this local workspace issued" in text
    assert [lines[t][0] for t in ("permissions", "datastore", "storage")] == ["skip"] * 3
    assert lines["clock"][0] == "ok"  # read without a token
    assert wrong not in out


def test_forbidden_workspace(workspace, capsys):
    code, lines, out = doctor(capsys, workspace.registry_uri(workspace.forbidden_workspace))

    assert code == 1
    # answered, but the workspace is not confirmed: a warning, not "ok"; the one FAIL is the permissions check
    status, text = lines["reachable"]
    assert status == "warn" and "HTTP 403" in text and "may not exist" in text
    status, text = lines["permissions"]
    assert status == "FAIL" and "AuthorizationFailed" in text and "workspaces/models/read" in text
    assert "To fix: first check the workspace name" in text and "ask for a role on the workspace" in text
    assert "AzureML Data Scientist" in text
    assert lines["datastore"][0] == "skip" and lines["storage"][0] == "skip"
    assert "not checked: permissions did not pass" in lines["storage"][1]
    assert out.count(" FAIL ") == 1


def test_a_workspace_that_does_not_exist_points_at_its_name(workspace, capsys):
    """Resource Manager answers 403 AuthorizationFailed for a workspace that does not exist (local/FIDELITY.md,
    Workspaces): a misspelt name is the likelier cause, so the fix names the listing first."""
    uri = workspace.registry_uri().replace("/workspaces/local-ws", "/workspaces/local-wss")

    code, lines, out = doctor(capsys, uri)

    assert code == 1
    assert lines["reachable"][0] == "warn" and "check the workspace's name in the URI" in lines["reachable"][1]
    status, text = lines["permissions"]
    assert status == "FAIL" and "AuthorizationFailed" in text
    assert f"`az ml workspace list -g {workspace.resource_group}`" in text and "403, not 404" in text


def test_write_not_allowed(workspace, capsys):
    from mlflow_azureml_registry.local.permissions import READER

    workspace.permissions.set("workspaces", "local-ws-2", [READER])
    try:
        code, lines, out = doctor(capsys, workspace.registry_uri("local-ws-2"))
    finally:
        workspace.permissions.set("workspaces", "local-ws-2", None)

    assert code == 1
    status, text = lines["permissions"]
    assert status == "FAIL" and "read: models listed" in text
    assert "do not allow Microsoft.MachineLearningServices/workspaces/models/write" in text
    assert lines["datastore"][0] == "ok" and lines["storage"][0] == "ok"  # loading models still works


def test_missing_datastore(workspace, capsys):
    stores = workspace.state.workspace("local-ws-2").datastores
    record = stores.pop("workspaceblobstore")
    try:
        code, lines, out = doctor(capsys, workspace.registry_uri("local-ws-2"))
    finally:
        stores["workspaceblobstore"] = record

    assert code == 1
    status, text = lines["datastore"]
    assert status == "FAIL" and "workspaceblobstore: not found" in text and "DatastoreNotFound" in text
    assert "To fix: the plugin uploads to the datastore named workspaceblobstore" in text
    assert lines["storage"][0] == "skip"
    assert lines["permissions"][0] == "ok"


def test_storage_behind_a_firewall(workspace, capsys, monkeypatch):
    with workspace.refusing_storage() as firewall:
        monkeypatch.setenv(settings.STORAGE_ACCOUNT_URL, firewall.account_url_template)
        code, lines, out = doctor(capsys, workspace.registry_uri())
        refused = list(firewall.refused)

    assert code == 1
    assert lines["datastore"][0] == "ok"  # the control plane is fine
    status, text = lines["storage"]
    assert status == "FAIL" and "HTTP 403, AuthorizationFailure" in text and "probe blob write" in text
    assert "To fix: the storage account's network rules refuse this machine" in text
    assert refused and refused[0].startswith("PUT /devstoreaccount1/")  # the probe went to the refusing account
    assert_no_secret(out, workspace)


def test_refusing_storage_answers_as_a_firewall(workspace):
    """The emulated refusal as Azure Storage sends it (local/FIDELITY.md, Blobs): 403, the error code header, XML."""
    from azure.core.exceptions import HttpResponseError
    from azure.storage.blob import ContainerClient

    with workspace.refusing_storage() as firewall:
        url = firewall.account_url_template.format(account="devstoreaccount1")
        client = ContainerClient(url, "c", credential=workspace.account_keys["devstoreaccount1"],
                                 connection_verify=workspace.ca_bundle, retry_total=0)
        with pytest.raises(HttpResponseError) as raised:
            client.get_container_properties()
    response = raised.value.response
    assert response.status_code == 403 and raised.value.error_code == "AuthorizationFailure"
    assert response.headers["x-ms-error-code"] == "AuthorizationFailure"
    assert response.headers["Content-Type"] == "application/xml"


@pytest.mark.parametrize(
    ("offset_s", "status", "code", "words"),
    [(20 * 60, "FAIL", 1, "1200 s ahead of"), (-7 * 60, "warn", 0, "420 s behind"), (30, "ok", 0, "30 s ahead of")],
)
def test_clock_skew(workspace, capsys, mocker, offset_s, status, code, words):
    # The local clock cannot be moved here: the doctor's reading of it is.
    mocker.patch("mlflow_azureml_registry.doctor_env.local_time", side_effect=lambda: time.time() + offset_s)

    got, lines, out = doctor(capsys, workspace.registry_uri())

    assert got == code, out
    assert lines["clock"][0] == status and words in lines["clock"][1], lines["clock"]
    if status != "ok":
        assert "To fix: synchronise the clock with NTP" in lines["clock"][1]
    if status == "FAIL":
        assert "Azure Storage refuses requests signed with a key" in lines["clock"][1]


@pytest.mark.parametrize(
    "uri",
    ["azureml-registry://subscriptions/s/resourceGroups/rg", "azureml://subscriptions/s/resourceGroups/rg/workspaces/w",
     "azureml-registry://subscriptions/s/resourceGroups/rg/workspaces/w?token=SECRET-VALUE"],
)
def test_unparsable_uri(workspace, capsys, uri):
    code, lines, out = doctor(capsys, uri)

    assert code == 2  # bad arguments
    status, text = lines["URI"]
    assert status == "FAIL" and "Invalid registry URI" in text and "To fix: use one of the forms" in text
    assert [lines[t][0] for t in ("reachable", "permissions", "datastore", "storage")] == ["skip"] * 4
    assert lines["credential"][0] == "ok"  # does not depend on the URI
    assert "SECRET-VALUE" not in out


def test_no_uri_at_all(workspace, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_REGISTRY_URI")
    code, lines, out = doctor(capsys)
    assert code == 2  # bad arguments, as documented
    assert lines["URI"][0] == "FAIL" and "MLFLOW_REGISTRY_URI is not set" in lines["URI"][1]


@pytest.mark.parametrize("version", ["4.0.0", "2.15.1"])
def test_mlflow_outside_the_supported_range(workspace, capsys, mocker, version):
    mocker.patch("mlflow.version.VERSION", version)

    code, lines, out = doctor(capsys, workspace.registry_uri())

    assert code == 1
    status, text = lines["MLflow"]
    assert status == "FAIL" and f"MLflow {version} is installed" in text and ">=2.16,<4" in text


def _fake_distribution(root: Path, name: str, entry_points: str) -> None:
    info = root / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(entry_points)


def test_a_second_plugin_claiming_the_scheme(workspace, capsys, monkeypatch, tmp_path):
    _fake_distribution(
        tmp_path, "other-registry-plugin",
        "[mlflow.model_registry_store]\nazureml-registry = other_registry_plugin:store\n",
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    code, lines, out = doctor(capsys, workspace.registry_uri())

    assert code == 1
    status, text = lines["plugins"]
    assert status == "FAIL" and "also claimed by other-registry-plugin 1.0" in text
    assert "To fix: uninstall other-registry-plugin" in text


def test_azureml_mlflow_beside_it(workspace, capsys, monkeypatch, tmp_path):
    _fake_distribution(
        tmp_path, "azureml-mlflow",
        "[mlflow.model_registry_store]\nazureml = azureml.mlflow.registry:AzureMLflowModelRegistry\n"
        "[mlflow.artifact_repository]\nazureml = azureml.mlflow._store.artifact:AzureMLflowArtifactRepository\n",
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    code, lines, out = doctor(capsys)  # MLFLOW_REGISTRY_URI is ours: no conflict
    assert code == 0, out
    assert lines["plugins"][0] == "ok" and "azureml-mlflow 1.0 is installed too and claims azureml://" in out

    monkeypatch.delenv("MLFLOW_REGISTRY_URI")
    code, lines, out = doctor(capsys, workspace.registry_uri())
    assert code == 0, out  # a warning is not a failure
    status, text = lines["plugins"]
    assert status == "warn" and "To fix: set MLFLOW_REGISTRY_URI" in text


def test_action_matching_follows_azure_rbac():
    """Wildcards and notActions as Azure RBAC evaluates them, on the built-in roles' published definitions."""
    from mlflow_azureml_registry.azure.diagnostics import Permission, allowed
    from mlflow_azureml_registry.local.permissions import DATA_SCIENTIST, READER, REGISTRY_USER

    def role(definition: dict) -> list[Permission]:
        return [Permission(tuple(definition["actions"]), tuple(definition["notActions"]))]

    write = "Microsoft.MachineLearningServices/workspaces/models/versions/write"
    assert allowed(role(DATA_SCIENTIST), write)
    assert allowed(role(DATA_SCIENTIST), write.upper())  # case-insensitive
    assert not allowed(role(DATA_SCIENTIST), "Microsoft.MachineLearningServices/workspaces/write")  # a notAction
    assert not allowed(role(READER), write) and allowed(role(READER), write.replace("/write", "/read"))
    assert allowed(role(REGISTRY_USER), "Microsoft.MachineLearningServices/registries/assets/write")
    assert not allowed(role(REGISTRY_USER), write)
    assert allowed(role(READER) + role(DATA_SCIENTIST), write)  # any role assignment that allows it
    assert not allowed([], write)


def test_no_credential_found(workspace, capsys, monkeypatch):
    # DefaultAzureCredential finds nothing here: no environment credential, the managed-identity endpoint conftest
    # points at a closed loopback port, no Azure CLI login.
    for name in (settings.LOCAL_TOKEN, "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET",
                 "AZURE_FEDERATED_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(settings.TOKEN_TIMEOUT, "3")
    monkeypatch.setenv(settings.RETRY_TOTAL, "0")
    monkeypatch.setenv("AZURE_CONFIG_DIR", str(workspace.workdir))  # no `az login` of this machine's user
    from mlflow_azureml_registry import credentials

    monkeypatch.setattr(credentials, "_default", None)  # built again with these settings

    code, lines, out = doctor(capsys, workspace.registry_uri())

    assert code == 1
    status, text = lines["credential"]
    assert status == "FAIL" and "DefaultAzureCredential" in text and "no token" in text
    assert "To fix: sign in with `az login`" in text
    assert [lines[t][0] for t in ("reachable", "permissions", "datastore", "storage")] == ["skip"] * 4


def test_a_bad_setting_is_named(workspace, capsys, monkeypatch):
    monkeypatch.setenv(settings.HTTP_TIMEOUT, "soon")

    code, lines, out = doctor(capsys, workspace.registry_uri())

    assert code == 1
    status, text = lines["reachable"]
    assert status == "FAIL" and "MLFLOW_AZUREML_HTTP_TIMEOUT must be a number, got 'soon'" in text
    assert "To fix: correct that environment variable" in text


def test_a_defect_in_a_check_is_a_fail_line_not_a_traceback(workspace, capsys, mocker):
    mocker.patch("mlflow_azureml_registry.doctor_env.check_mlflow", side_effect=KeyError("boom"))

    code, lines, out = doctor(capsys, workspace.registry_uri())

    assert code == 1
    status, text = lines["MLflow"]
    assert status == "FAIL" and "the check itself failed: KeyError" in text
    assert lines["plugins"][0] == "ok"  # the checks after it still run


# ------------------------------------------------------------------------------------------------ issue #17 review
def test_an_expired_jwt_fails_the_credential_check(workspace, capsys, monkeypatch):
    from mlflow_azureml_registry.local.workspace import make_token

    monkeypatch.setenv(settings.LOCAL_TOKEN, make_token(lifetime_days=-1))  # its exp: a day ago

    code, lines, out = doctor(capsys, workspace.registry_uri())

    assert code == 1
    status, text = lines["credential"]
    assert status == "FAIL" and "its token expired 24 hours ago (the token's exp claim)" in text, text
    assert "To fix: export the lines `mlflow-azureml-registry local` printed" in text
    assert [lines[t][0] for t in ("reachable", "permissions", "datastore", "storage")] == ["skip"] * 4


def test_a_jwt_reports_its_own_expiry(workspace, capsys, monkeypatch):
    from mlflow_azureml_registry.local.workspace import make_token

    monkeypatch.setenv(settings.LOCAL_TOKEN, make_token(lifetime_days=5))
    code, lines, out = doctor(capsys, workspace.registry_uri())
    assert lines["credential"][0] == "ok" and "valid 5 more days (the token's exp claim)" in lines["credential"][1]


def test_a_storage_url_template_without_account_is_named(workspace, capsys, monkeypatch):
    monkeypatch.setenv(settings.STORAGE_ACCOUNT_URL, "https://127.0.0.1:9/devstoreaccount1")

    code, lines, out = doctor(capsys, workspace.registry_uri())

    assert code == 1
    status, text = lines["storage"]
    assert status == "FAIL" and "MLFLOW_AZUREML_STORAGE_ACCOUNT_URL is 'https://127.0.0.1:9/devstoreaccount1'" in text
    assert "has no {account}" in text and "To fix: write the account's place as {account}" in text
    assert lines["datastore"][0] == "ok"


def _tls_context(workspace):
    import ssl

    certs = Path(workspace.ca_cert).parent  # the local workspace's certificate also covers 127.0.0.1
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(certs / "server.pem"), str(certs / "server-key.pem"))
    return context


READ_TIMEOUT_S = 3


def test_a_control_plane_that_never_answers_is_reported_within_one_timeout(workspace, capsys, monkeypatch):
    """The doctor sends its requests once whatever MLFLOW_AZUREML_RETRY_TOTAL says: a retry would wait the whole
    read timeout again before the user hears that the endpoint does not answer."""
    from tests.fakes.identity import SilentEndpoint

    monkeypatch.setenv(settings.HTTP_TIMEOUT, str(READ_TIMEOUT_S))
    monkeypatch.setenv(settings.RETRY_TOTAL, "5")  # the plugin's default, set here so that it is the one tested
    with SilentEndpoint(_tls_context(workspace)) as silent:
        monkeypatch.setenv("MLFLOW_AZUREML_RESOURCE_MANAGER_URL", f"https://127.0.0.1:{silent.port}")
        started = time.monotonic()
        code, lines, out = doctor(capsys, workspace.registry_uri())
        took = time.monotonic() - started
        asked = list(silent.request_lines)

    assert code == 1
    status, text = lines["reachable"]
    assert status == "FAIL" and "timed out" in text and "accepts connections and does not answer" in text
    status, text = lines["clock"]
    assert status == "skip" and "did not answer the reachable check (timed out)" in text
    assert len(asked) == 1, asked  # the reachable check's one request, not retried; the clock check sent none
    assert READ_TIMEOUT_S <= took < 2 * READ_TIMEOUT_S, took  # one read timeout and the other checks' own time


def test_storage_that_never_answers_is_a_timeout_not_a_refusal(workspace, capsys, monkeypatch):
    from tests.fakes.identity import SilentEndpoint

    monkeypatch.setenv(settings.HTTP_TIMEOUT, str(READ_TIMEOUT_S))
    monkeypatch.setenv(settings.RETRY_TOTAL, "5")
    with SilentEndpoint(_tls_context(workspace)) as silent:
        monkeypatch.setenv(settings.STORAGE_ACCOUNT_URL, f"https://127.0.0.1:{silent.port}/{{account}}")
        started = time.monotonic()
        code, lines, out = doctor(capsys, workspace.registry_uri())
        took = time.monotonic() - started
        asked = list(silent.request_lines)

    assert code == 1
    status, text = lines["storage"]
    assert status == "FAIL" and "timed out" in text and "refused" not in text, text
    assert "accepts connections and does not answer" in text
    # The probe blob's one PUT, not retried, and no listing after the timeout.
    assert len(asked) == 1 and asked[0].startswith("PUT "), asked
    assert READ_TIMEOUT_S <= took < 2 * READ_TIMEOUT_S, took


def test_a_registry_that_does_not_exist(workspace, capsys):
    code, lines, out = doctor(capsys, "azureml-registry://registries/no-such-registry")

    assert code == 1
    assert "found" not in lines["URI"][1]
    status, text = lines["reachable"]
    assert status == "FAIL" and "`az ml registry list`" in text and "registry show" not in text, text
    assert lines["datastore"][0] == "skip" and "does not apply: a registry has no datastore" in lines["datastore"][1]
    assert lines["storage"][0] == "skip" and "not checked: reachable did not pass" in lines["storage"][1]


def test_the_clock_fix_does_not_point_at_a_skipped_reachable_check(workspace, capsys, monkeypatch):
    monkeypatch.setenv("MLFLOW_AZUREML_RESOURCE_MANAGER_URL", "https://127.0.0.1:9")  # a closed port
    monkeypatch.setenv(settings.RETRY_TOTAL, "0")

    code, lines, out = doctor(capsys, "azureml-registry://subscriptions/s/resourceGroups/rg")

    assert lines["reachable"][0] == "skip"
    status, text = lines["clock"]
    assert status == "warn" and "see the reachable check" not in text and "HTTPS_PROXY" in text, text


def test_a_pipe_closed_early_is_not_a_failed_check(workspace):
    """``doctor | head -2`` on a healthy set-up: the reader goes away after two lines; no check failed."""
    script = Path(sys.executable).parent / "mlflow-azureml-registry"
    env = {**os.environ, **workspace.env}
    process = subprocess.Popen(
        ["bash", "-c", f"'{script}' doctor '{workspace.registry_uri()}' | head -2; echo \"exit=${{PIPESTATUS[0]}}\""],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert out.splitlines()[-1] == "exit=0", out + err
    assert len(out.splitlines()) == 3 and "Traceback" not in err, out + err
