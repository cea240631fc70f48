"""Live mode's instruments: the traffic recorder's scrubbing (``tests/live/traffic.py``), the FIDELITY.md comparer
(``scripts/compare_fidelity.py``), and how the suite reports live-only and emulator-only tests in either mode."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests import processes
from tests.live import mode, traffic

REPO = Path(__file__).resolve().parents[2]
SAS = "sv=2026-10-06&ss=b&srt=co&sp=rl&se=2030-01-01T00%3A00%3A00Z&st=2026-01-01T00%3A00%3A00Z&spr=https"
ARM = "https://management.azure.com/subscriptions/s/resourceGroups/g/providers/Microsoft.MachineLearningServices"


def _compare_fidelity() -> Any:
    """``scripts/compare_fidelity.py`` as a module (loaded once)."""
    if "compare_fidelity" not in sys.modules:
        spec = importlib.util.spec_from_file_location("compare_fidelity", REPO / "scripts" / "compare_fidelity.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up
        spec.loader.exec_module(module)
    return sys.modules["compare_fidelity"]


def _jwt(signature: bytes) -> str:
    part = lambda data: base64.urlsafe_b64encode(data).decode().rstrip("=")  # noqa: E731
    return ".".join([part(b'{"alg":"RS256","typ":"JWT"}'), part(b'{"aud":"https://management.azure.com"}'),
                     part(signature)])


def _exchange(**overrides: Any) -> dict[str, Any]:
    base = dict(method="GET", url=f"{ARM}/workspaces/w/models/m?api-version=2025-12-01", request_headers={},
                request_data=None, status=200, response_headers={}, response_data=None)
    base.update(overrides)
    return base


JSON = {"Content-Type": "application/json; charset=utf-8"}
CARRIERS: dict[str, Callable[[str], dict[str, Any]]] = {
    "bearer token": lambda s: _exchange(request_headers={"Authorization": f"Bearer {s}"}),
    "storage shared key": lambda s: _exchange(request_headers={"Authorization": f"SharedKey devstoreaccount1:{s}"}),
    "proxy basic auth": lambda s: _exchange(request_headers={"Proxy-Authorization": f"Basic {s}"}),
    "SAS in a blob URL": lambda s: _exchange(url=f"https://a.blob.core.windows.net/c/b?{SAS}&sig={quote(s, safe='')}"),
    "SAS in a Location header": lambda s: _exchange(
        response_headers={"Location": f"https://a.blob.core.windows.net/c?{SAS}&sig={quote(s, safe='')}"}),
    "ARM signed operation URL": lambda s: _exchange(response_headers={
        "Azure-AsyncOperation": f"{ARM}/locations/eastus/operations/1?api-version=1&t=638&c={s}&s={s}&h={s}"}),
    "listSecrets SAS token": lambda s: _exchange(method="POST", response_headers=JSON, response_data=json.dumps(
        {"secretsType": "Sas", "sasToken": f"?{SAS}&sig={quote(s, safe='')}"})),
    "listSecrets account key": lambda s: _exchange(method="POST", response_headers=JSON, response_data=json.dumps(
        {"secretsType": "AccountKey", "key": s})),
    "registry pending upload SAS URI": lambda s: _exchange(
        method="PUT", response_headers=JSON, response_data=json.dumps({"blobReferenceForConsumption": {
            "credential": {"credentialType": "SAS", "sasUri": f"https://a/c?{SAS}&sr=c&sig={quote(s, safe='')}"}}})),
    "datastore client secret": lambda s: _exchange(method="PUT", request_headers=JSON, request_data=json.dumps(
        {"properties": {"credentials": {"secrets": {"secretsType": "ServicePrincipal", "clientSecret": s}}}})),
    "connection string": lambda s: _exchange(response_headers=JSON, response_data=json.dumps(
        {"value": f"DefaultEndpointsProtocol=https;AccountName=a;AccountKey={s};EndpointSuffix=core.windows.net"})),
    "token answer": lambda s: _exchange(method="POST", response_headers=JSON, response_data=json.dumps(
        {"token_type": "Bearer", "access_token": s, "refresh_token": s, "expires_in": 3599})),
    "client secret in a form": lambda s: _exchange(method="POST", request_data={
        "client_id": "x", "client_secret": s, "grant_type": "client_credentials", "scope": "https://x/.default"}),
    "client assertion in an encoded form": lambda s: _exchange(
        method="POST", request_headers={"Content-Type": "application/x-www-form-urlencoded"},
        request_data=f"client_id=x&client_assertion={quote_plus(s)}&grant_type=client_credentials".encode()),
    "JWT in a free-text field": lambda s: _exchange(response_headers=JSON, response_data=json.dumps(
        {"properties": {"description": f"token {_jwt(s.encode())} pasted by mistake"}})),
    "JWT in a query value": lambda s: _exchange(url=f"{ARM}/x?next={_jwt(s.encode())}"),
}
SECRETS = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_-", min_size=16,
                  max_size=64)


def _line(exchange: dict[str, Any]) -> str:
    return traffic.dumps(traffic.record_of(**exchange))


@pytest.mark.parametrize("carrier", list(CARRIERS))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(secret=SECRETS)
def test_no_secret_survives_scrubbing(carrier, secret):
    baseline = _line(CARRIERS[carrier]("PLACEHOLDERxxxxxxxx"))
    assume(secret not in baseline and quote(secret, safe="") not in baseline)
    line = _line(CARRIERS[carrier](secret))
    forms = {secret, quote(secret, safe=""), quote_plus(secret), base64.urlsafe_b64encode(secret.encode()).decode()}
    assert not [form for form in forms if form.rstrip("=") in line], line
    assert traffic.SCRUBBED in line
    json.loads(line)  # still one valid JSON line


def test_what_scrubbing_keeps():
    """The scheme of an auth header, the harmless SAS fields (what it allows, until when), everything else."""
    record = traffic.record_of(**_exchange(
        method="POST", url=f"https://a.blob.core.windows.net/c/b?comp=block&{SAS}&sig=abc",
        request_headers={"Authorization": "Bearer abc.def", "User-Agent": "mlflow-azureml-registry/0.1",
                         "Cookie": "session=1"},
        response_headers={**JSON, "WWW-Authenticate": 'Bearer authorization_uri="https://login/x", error="e"',
                          "x-ms-request-id": "r1", "Set-Cookie": "a=b"},
        response_data=json.dumps({"secretsType": "Sas", "systemData": {"createdBy": "Jane Doe",
                                                                       "lastModifiedBy": "Local User"}}),
    ))
    assert record["query"]["sig"] == traffic.SCRUBBED
    assert {k: record["query"][k] for k in ("comp", "sp", "se", "sv")} == {
        "comp": "block", "sp": "rl", "se": "2030-01-01T00:00:00Z", "sv": "2026-10-06"}
    assert record["request_headers"] == {"Authorization": "Bearer <scrubbed>",
                                         "User-Agent": "mlflow-azureml-registry/0.1"}
    assert record["agent"] == "plugin"
    assert record["response_headers"]["WWW-Authenticate"].startswith('Bearer authorization_uri="https://login/x"')
    assert "Set-Cookie" not in record["response_headers"]
    assert record["response_body"] == {"secretsType": "Sas", "systemData": {"createdBy": traffic.SCRUBBED,
                                                                            "lastModifiedBy": "Local User"}}


def test_bodies_other_than_json_and_forms_are_recorded_by_size_only():
    record = traffic.record_of(**_exchange(method="PUT", request_headers={"Content-Type": "application/octet-stream"},
                                           request_data=b'{"a file": "that looks like JSON"}'))
    assert record["request_body"] == {"bytes": 34}


# ------------------------------------------------------------------------------------------------ the comparer
def _recorded(*exchanges: dict[str, Any]) -> list[str]:
    return [traffic.dumps(traffic.record_of(**e, seq=i)) for i, e in enumerate(exchanges, 1)]


def _ids(request_id: str, correlation: str = "") -> dict[str, str]:
    return {**JSON, "x-ms-request-id": request_id, "x-ms-correlation-request-id": correlation or request_id}


UUIDS = [f"00000000-0000-4000-8000-{i:012d}" for i in range(10)]
VERSION = f"{ARM}/workspaces/w/models/m/versions/1?api-version=2025-12-01"
CONTAINER = f"{ARM}/workspaces/w/models/n?api-version=2025-12-01"


def _outcomes(lines: list[str]) -> dict[str, Any]:
    cf = _compare_fidelity()
    outcomes, lost = cf.compare(cf.parse_fidelity(cf.FIDELITY.read_text()), cf.load(lines))
    assert lost == []
    return {o.row.behaviour: o for o in outcomes}


def _outcome(outcomes: dict[str, Any], phrase: str) -> Any:
    (found,) = [o for text, o in outcomes.items() if phrase in text]
    return found


def test_the_comparer_matches_a_small_recording_to_its_rows():
    lines = _recorded(
        _exchange(url=VERSION, response_headers=_ids(UUIDS[0])),
        _exchange(method="DELETE", url=VERSION, response_headers=_ids(UUIDS[1])),
        _exchange(method="DELETE", url=VERSION, status=204, response_headers=_ids(UUIDS[2], UUIDS[9])),
        _exchange(url=CONTAINER, status=404, response_headers=_ids(UUIDS[3])),
        _exchange(method="PUT", url=CONTAINER, status=201, response_headers=_ids(UUIDS[4])),  # no Location
        _exchange(method="PUT", url=CONTAINER, status=200, response_headers=_ids(UUIDS[5])),
    )
    outcomes = _outcomes(lines)
    delete = _outcome(outcomes, "DELETE version answers 200 when it existed and 204")
    assert (len(delete.agreed), len(delete.disagreed)) == (2, 0)
    correlation = _outcome(outcomes, "also carries `x-ms-correlation-request-id`")
    assert (len(correlation.agreed), len(correlation.disagreed)) == (5, 1)
    assert correlation.disagreed[0][1].seq == 3
    container = _outcome(outcomes, "PUT: 201 + `Location` on create, 200 on update")
    assert [v[0] for v in container.agreed + container.disagreed] == [True, False]
    assert _outcome(outcomes, "Tag, property and description sizes are not limited").checked is False
    assert _outcome(outcomes, "Unknown datastore gives 404").checked is True
    assert not _outcome(outcomes, "Unknown datastore gives 404").agreed


def test_the_comparer_reads_fidelity_md_and_exits_1_on_a_contradiction(tmp_path, capsys):
    cf = _compare_fidelity()
    rows = cf.parse_fidelity(cf.FIDELITY.read_text())
    assert len(rows) > 100 and sum(r.assumed for r in rows) > 30
    assert {"Model versions", "Registries"} <= {r.section for r in rows}
    assert cf._cells("| a `x|y` b | assumed |") == ["a `x|y` b", "assumed"]
    recording = tmp_path / "rec.jsonl"
    recording.write_text("\n".join(_recorded(_exchange(url=VERSION, response_headers=_ids("not-a-uuid")))))
    assert cf.main([str(recording)]) == 1
    out = capsys.readouterr().out
    assert "CONTRADICTED: 1" in out and "x-ms-request-id 'not-a-uuid'" in out


def test_the_comparer_refuses_an_empty_or_malformed_recording(tmp_path, capsys):
    cf = _compare_fidelity()
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(SystemExit) as raised:
        cf.main([str(empty)])
    assert raised.value.code == 2  # not a silent pass
    assert "holds no exchange: nothing was recorded" in capsys.readouterr().err

    broken = tmp_path / "broken.jsonl"
    broken.write_text("\n".join([*_recorded(_exchange(url=VERSION)), "{not json", ""]))
    with pytest.raises(SystemExit) as raised:
        cf.main([str(broken)])
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert "line 2 is not JSON" in err and "Traceback" not in err


def test_the_comparers_help_names_its_argument_and_exit_codes():
    done = processes.run([sys.executable, str(REPO / "scripts" / "compare_fidelity.py"), "--help"],
                         capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "``" not in done.stdout
    assert "RECORDING            JSON lines written by `pytest --record-traffic" in done.stdout
    assert "exit status:" in done.stdout and "  2  bad input" in done.stdout


# ------------------------------------------------------------------------------------------------ live mode
def test_model_names_carry_the_run_prefix_only_in_live_mode(model_name):
    assert model_name.startswith(f"mlflowazmltest-{mode.RUN_ID}-") is mode.is_live()
    assert re.match(r"^[a-zA-Z0-9][a-zA-Z0-9\-_]{0,254}$", model_name)  # Azure ML's name rule


def test_every_test_live_mode_names_exists():
    for nodeid in mode.LIVE_UNFIT:
        path, _, name = nodeid.partition("::")
        source = (REPO / path).read_text()
        assert not name or re.search(rf"^def {re.escape(name)}\(", source, re.M), nodeid


def _pytest(env: dict[str, str], *args: str) -> str:
    done = processes.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", *args], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


EMULATOR_ONLY = ("tests/integration/test_proxy.py::"
                 "test_settings_are_read_safely_while_another_thread_changes_the_environment")
NAMES = "tests/unit/test_live_traffic.py::test_model_names_carry_the_run_prefix_only_in_live_mode"


def test_without_a_live_uri_live_only_tests_skip_with_their_reason_and_the_rest_runs():
    env = {k: v for k, v in os.environ.items() if k != mode.LIVE_URI_VARIABLE}
    out = _pytest(env, "tests/live/test_live_probes.py", EMULATOR_ONLY, NAMES)
    assert re.search(r"SKIPPED \[5\] tests/live/test_live_probes.py(:\d+)?: live only: probes FIDELITY.md's assumed "
                     r"rows against a real workspace .*\(set MLFLOW_AZUREML_LIVE_REGISTRY_URI to run it\)", out), out
    assert re.search(r"\b2 passed, 5 skipped\b", out), out


def test_in_live_mode_emulator_only_tests_skip_with_their_reason():
    """A URI nobody can reach: only tests that never ask for the workspace are selected (the loopback guard is off
    in live mode)."""
    env = {**os.environ,
           mode.LIVE_URI_VARIABLE: "azureml-registry://subscriptions/0/resourceGroups/none/workspaces/none"}
    sweep = ("tests/integration/test_benchmark_sweep.py::"
             "test_the_pass_picks_the_fastest_finished_setting_and_limits_each_by_the_fastest_so_far")
    out = _pytest(env, EMULATOR_ONLY, sweep, NAMES)
    assert "emulator only: sends the traffic through a loopback proxy fake" in out, out
    assert "emulator only: drives the benchmark's raw blob worker against Azurite" in out, out
    assert re.search(r"\b1 passed, 2 skipped\b", out), out


def test_in_live_mode_an_unreachable_target_stops_the_session_once(tmp_path):
    """A live URI whose endpoint refuses: one reachability check for the session, one line saying why and what to
    do, and the session stops (pytest.exit) instead of every test erroring with the credential chain's text."""
    env = {**os.environ,
           mode.LIVE_URI_VARIABLE: "azureml-registry://subscriptions/0/resourceGroups/none/workspaces/none",
           "MLFLOW_AZUREML_RESOURCE_MANAGER_URL": "https://127.0.0.1:9",  # a closed loopback port: refused at once
           "MLFLOW_AZUREML_LOCAL_TOKEN": "a-token-for-the-loopback-endpoint",  # no credential chain (no IMDS)
           "MLFLOW_AZUREML_RETRY_TOTAL": "0"}
    first = ("tests/integration/test_first_path.py::test_register_local_folder_load_and_predict",
             "tests/integration/test_first_path.py::test_version_exists_only_after_its_files")
    done = processes.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *first], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=300)
    out = done.stdout + done.stderr
    assert done.returncode == 2, out  # pytest's "interrupted"
    assert out.count("live mode: MLFLOW_AZUREML_LIVE_REGISTRY_URI=") == 1, out
    assert "the reachable check failed" in out and "To fix: check the network path" in out, out
    assert "ERROR" not in out and "DefaultAzureCredential" not in out, out
    assert "a-token-for-the-loopback-endpoint" not in out


# ------------------------------------------------------------------------------------------------ a real recording
@pytest.mark.emulator_only("looks for the emulator's own token and account keys in a recording")
def test_a_recording_of_the_local_workspace_holds_no_secret(workspace, client, model_name, sklearn_model_dir,
                                                            tmp_path):
    import mlflow

    from mlflow_azureml_registry import session

    recorder = traffic.Recorder(tmp_path / "rec.jsonl")
    traffic.add_listener(recorder)
    try:
        session.reset()  # new gateways: the datastore's SAS is asked for again
        client.create_registered_model(model_name)
        client.create_model_version(model_name, str(sklearn_model_dir))
        mlflow.artifacts.download_artifacts(f"models:/{model_name}/1", dst_path=str(tmp_path / "dl"))
        registry = mlflow.MlflowClient(registry_uri=workspace.azureml_registry_uri())
        registry.create_registered_model(model_name)
        registry.create_model_version(model_name, str(sklearn_model_dir))  # a pending upload's SAS URI
        workspace.blob_service().get_service_properties()  # the account key (SharedKey)
    finally:
        traffic.remove_listener(recorder)
        recorder.close()
    text = (tmp_path / "rec.jsonl").read_text()
    for secret in [workspace.token, *workspace.account_keys.values()]:
        assert secret not in text and quote(secret, safe="") not in text and secret[-24:] not in text
    records = [json.loads(line) for line in text.splitlines()]
    assert {"plugin", "blob"} <= {r["agent"] for r in records}
    schemes = {r["request_headers"].get("Authorization") for r in records} - {None}  # SAS requests carry none
    assert schemes == {"Bearer <scrubbed>", "SharedKey <scrubbed>"}
    assert not re.search(r"sig=(?!<scrubbed>)", text)
    listed = next(r for r in records if r["path"].endswith("/listSecrets"))
    assert re.search(r"&se=[^&]+&sp=[^&]+&.*sig=<scrubbed>$", listed["response_body"]["sasToken"])
    assert [r for r in records if "/tempdatarefs/" in r["path"]]
    cf = _compare_fidelity()
    outcomes, _ = cf.compare(cf.parse_fidelity(cf.FIDELITY.read_text()), cf.load(text.splitlines()))
    assert [o.row.behaviour for o in outcomes if o.disagreed] == []  # the emulator agrees with its own assumptions


@pytest.mark.emulator_only("runs the live cleanup on the local workspace (live, the session's own cleanup runs)")
def test_cleanup_empties_and_archives_the_runs_models_and_nothing_else(workspace, client, model_name, tmp_path):
    from mlflow_azureml_registry import session
    from mlflow_azureml_registry.uri import parse_registry_uri
    from tests.live import cleanup

    (tmp_path / "weights.bin").write_bytes(model_name.encode())
    prefix = f"{mode.NAME_PREFIX}{model_name}-"
    ours, born, other = f"{prefix}a", f"{model_name}-born", f"{model_name}-other"

    def two_versions(name: str) -> None:
        client.create_registered_model(name)
        for _ in range(2):
            client.create_model_version(name, str(tmp_path))

    two_versions(ours)  # as a process the tests start would: found by its prefix
    two_versions(other)  # there before the run
    target = parse_registry_uri(workspace.registry_uri())
    tracker = cleanup.Tracker(target)
    traffic.add_listener(tracker)
    try:
        two_versions(born)  # absent when first asked for: the run's
        client.set_registered_model_tag(other, "touched", "yes")  # written to, but not the run's
    finally:
        traffic.remove_listener(tracker)
    summary = cleanup.sweep(target, prefix, tracker.born(), tracker.written)
    owned = sorted([ours, born])
    assert (summary.models, summary.versions_deleted, summary.archived) == (owned, 4, owned)
    assert summary.written_not_owned == [other] and summary.failures == []
    models = session.gateway(target).models
    for name in (ours, born):
        assert list(models.list_versions(name, list_view_type="All")) == []
        assert models.get_container(name)["properties"]["isArchived"] is True
    assert len(list(models.list_versions(other, list_view_type="All"))) == 2
    assert not models.get_container(other)["properties"].get("isArchived")
    assert cleanup.sweep(target, prefix).versions_deleted == 0  # a second sweep finds nothing left to do


def test_the_cleanup_command_needs_a_run_or_an_age(capsys, monkeypatch):
    from tests.live import cleanup

    monkeypatch.delenv(mode.LIVE_URI_VARIABLE, raising=False)
    with pytest.raises(SystemExit) as raised:  # --help: usage and exit 0, with or without a live URI
        cleanup._parser().parse_args(["--help"])
    assert raised.value.code == 0 and "--older-than HOURS" in capsys.readouterr().out
    assert cleanup.main(["--help"]) == 0
    capsys.readouterr()
    assert cleanup.main([]) == 2  # no default: "every run's models" is never implied
    assert "one of the arguments RUN --older-than is required" in capsys.readouterr().err
    assert cleanup.main([mode.NAME_PREFIX]) == 2  # the bare prefix would sweep every run's models
    assert "RUN must be a run id" in capsys.readouterr().err
    assert cleanup.main(["11301604abcd"]) == 2  # a good run id; no live URI
    assert "usage:" in capsys.readouterr().err


def test_a_run_id_dates_the_run():
    from tests.live import cleanup

    now = 1_796_000_000.0  # 2026-11-30 (UTC)
    stamp = time.strftime("%m%d%H%M", time.gmtime(now - 30 * 3600))
    assert cleanup.run_started(f"{mode.NAME_PREFIX}{stamp}abcd-m1-x", now) == (now - 30 * 3600) // 60 * 60
    assert cleanup.run_started(f"{mode.NAME_PREFIX}nope-m1", now) is None
    select = cleanup.older_than(24, now)
    assert select({"name": f"{mode.NAME_PREFIX}{stamp}abcd-m1"})
    young = time.strftime("%m%d%H%M", time.gmtime(now - 3600))
    assert not select({"name": f"{mode.NAME_PREFIX}{young}abcd-m1"})
    modified = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 3600))
    assert not select({"name": f"{mode.NAME_PREFIX}{stamp}abcd-m1", "systemData": {"lastModifiedAt": modified}})


@pytest.mark.emulator_only("runs the live cleanup command on the local workspace, dating its models in its state")
def test_cleanup_older_than_leaves_a_run_in_progress_alone(workspace, client, model_name, tmp_path, monkeypatch,
                                                          capsys):
    from mlflow_azureml_registry import session
    from mlflow_azureml_registry.uri import parse_registry_uri
    from tests.live import cleanup

    (tmp_path / "weights.bin").write_bytes(model_name.encode())
    day_and_more = time.time() - 30 * 3600
    old_run = time.strftime("%m%d%H%M", time.gmtime(day_and_more)) + "0a0a"
    new_run = time.strftime("%m%d%H%M", time.gmtime()) + "0b0b"
    old, touched = f"{mode.NAME_PREFIX}{old_run}-{model_name}", f"{mode.NAME_PREFIX}{old_run}-{model_name}-t"
    new = f"{mode.NAME_PREFIX}{new_run}-{model_name}"
    for name in (old, touched, new):
        client.create_registered_model(name)
        client.create_model_version(name, str(tmp_path))
    stored = workspace.state.workspace(mode.EMULATOR_WORKSPACE).models
    stored[old].modified_ns = int(day_and_more * 1e9)  # `touched` keeps its fresh lastModifiedAt
    monkeypatch.setenv(mode.LIVE_URI_VARIABLE, workspace.registry_uri())

    assert cleanup.main(["--older-than", "24"]) == 0
    out = capsys.readouterr().out
    models = session.gateway(parse_registry_uri(workspace.registry_uri())).models
    assert list(models.list_versions(old, list_view_type="All")) == [], out
    assert len(list(models.list_versions(touched, list_view_type="All"))) == 1  # modified since: kept
    assert len(list(models.list_versions(new, list_view_type="All"))) == 1  # a run in progress: untouched

    assert cleanup.main([new_run]) == 0  # one run, by its id
    assert list(models.list_versions(new, list_view_type="All")) == []
    assert models.get_container(new)["properties"]["isArchived"] is True
    assert f"prefix {mode.NAME_PREFIX}{new_run}-" in capsys.readouterr().out
    assert cleanup.main([old_run]) == 0  # and the one left over
