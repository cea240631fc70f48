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
    assert lines["reachable"][0] == "ok" and "registry discovery" in lines["reachable"][1]
    assert lines["permissions"][0] == "ok" and "write: allowed" in lines["permissions"][1]
    assert lines["datastore"] == ("skip", lines["datastore"][1]) and "a registry has no datastore" in out
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
    status, text = lines["reachable"]
    assert status == "FAIL" and "token was refused" in text and "HTTP 401, InvalidAuthenticationToken" in text
    assert "To fix: MLFLOW_AZUREML_LOCAL_TOKEN is not the token this local workspace issued" in text
    assert [lines[t][0] for t in ("permissions", "datastore", "storage")] == ["skip"] * 3
    assert lines["clock"][0] == "ok"  # read without a token
    assert wrong not in out


def test_forbidden_workspace(workspace, capsys):
    code, lines, out = doctor(capsys, workspace.registry_uri(workspace.forbidden_workspace))

    assert code == 1
    assert lines["reachable"][0] == "ok" and "HTTP 403" in lines["reachable"][1]
    status, text = lines["permissions"]
    assert status == "FAIL" and "AuthorizationFailed" in text and "workspaces/models/read" in text
    assert "To fix: ask for a role on the workspace" in text and "AzureML Data Scientist" in text
    assert lines["datastore"][0] == "skip" and lines["storage"][0] == "skip"
    assert out.count(" FAIL ") == 1


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

    assert code == 1
    status, text = lines["URI"]
    assert status == "FAIL" and "Invalid registry URI" in text and "To fix: use one of the forms" in text
    assert [lines[t][0] for t in ("reachable", "permissions", "datastore", "storage")] == ["skip"] * 4
    assert lines["credential"][0] == "ok"  # does not depend on the URI
    assert "SECRET-VALUE" not in out


def test_no_uri_at_all(workspace, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_REGISTRY_URI")
    code, lines, out = doctor(capsys)
    assert code == 1
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
