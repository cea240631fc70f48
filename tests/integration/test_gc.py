"""``mlflow-azureml-registry gc``: reclaim the upload folders no model version references, and nothing else.

Runs on the local workspace's second workspace (``local-ws-2``), which few other tests write to; each test first
reclaims what earlier tests left orphaned there, so what a test's own ``gc`` reclaims is exactly its scenario's.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import mlflow
import pytest

from mlflow_azureml_registry import registration, storage_gc
from mlflow_azureml_registry.local.testing import resolve_localhost

from ..conftest import files_of

pytestmark = pytest.mark.emulator_only(
    "runs gc --apply with --min-age 0 on the second workspace (it would delete real blobs live) and reads the"
    " emulator's state"
)

WS2 = "local-ws-2"
MANIFEST = registration.MANIFEST_NAME


@pytest.fixture
def ws2(workspace):
    """The second workspace's registry URI, also MLflow's global one for the test (``models:/`` loads read it)."""
    uri = workspace.registry_uri(WS2)
    mlflow.set_registry_uri(uri)
    yield uri
    mlflow.set_registry_uri(workspace.registry_uri())


@pytest.fixture
def client(ws2):
    return mlflow.MlflowClient(registry_uri=ws2)


@pytest.fixture
def ml_client(workspace):
    from azure.ai.ml import MLClient

    return MLClient(**workspace.ml_client_kwargs(WS2))


@pytest.fixture
def container(workspace):
    store = workspace.datastore(WS2)
    return workspace.blob_service(store["accountName"]).get_container_client(store["containerName"])


@pytest.fixture
def clean(ws2, capsys, mocker):
    """Short retire grace, and no orphan left by earlier tests in the workspace."""
    mocker.patch.object(storage_gc, "RETIRE_GRACE_S", 0.2)
    code, out, err = run_gc(capsys, ws2, "--apply", "--min-age", "0")
    assert code == 0, out + err
    return ws2


def run_gc(capsys, *args: str) -> tuple[int, str, str]:
    code = storage_gc.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def blobs(container) -> dict[str, tuple[str, int]]:
    """Every upload blob: name -> (ETag, size)."""
    return {b.name: (b.etag, b.size) for b in container.list_blobs(name_starts_with="LocalUpload/")}


def model_dir(tmp_path: Path, sklearn_model_dir: Path) -> Path:
    """A loadable MLflow model with files of its own (its own content hash, so its own upload folder)."""
    path = tmp_path / uuid.uuid4().hex / "model"
    shutil.copytree(sklearn_model_dir, path)
    (path / "unique.txt").write_text(uuid.uuid4().hex)
    return path


def register(client, name: str, path: Path):
    try:
        client.get_registered_model(name)
    except mlflow.exceptions.MlflowException:
        client.create_registered_model(name)
    return client.create_model_version(name, str(path))


def folder_of(workspace, name: str, version: str) -> str:
    return workspace.state.get_version(WS2, name, str(version))["properties"]["modelUri"].split("/paths/", 1)[1]


def inside(found: dict, folder: str) -> dict:
    """The blobs of an upload folder, with its hash's manifest."""
    manifest = folder.rsplit("/", 1)[0] + "/" + MANIFEST
    return {n: v for n, v in found.items() if n.startswith(folder + "/") or n == manifest}


def orphan(client, workspace, name: str, path: Path, versions: int = 1) -> str:
    """Register ``path`` ``versions`` times under ``name``, delete every version: the folder is orphaned."""
    created = [register(client, name, path) for _ in range(versions)]
    folder = folder_of(workspace, name, created[0].version)
    for mv in created:
        client.delete_model_version(name, mv.version)
    return folder


def listed(out: str) -> list[str]:
    """The folders a run lists as orphaned (its first section)."""
    section = out.split("written less than")[0]
    return [line.split()[0] for line in section.splitlines() if line.startswith("  LocalUpload/")]


def newest(container, folder: str) -> float:
    """The last write to an upload folder or its hash's manifest (the age gc measures), epoch seconds."""
    hash_dir = folder.rsplit("/", 1)[0]
    return max(b.last_modified.timestamp() for b in container.list_blobs(name_starts_with=hash_dir + "/"))


def test_apply_reclaims_exactly_the_orphans(
    workspace, clean, client, ml_client, container, capsys, mocker, tmp_path, sklearn_model_dir, model_name, iris
):
    from azure.ai.ml.entities import Model

    names = {k: f"{model_name}-{k}" for k in "acbmsfrxn"}
    # Deleted versions: orphans (one folder had two versions).
    path_a = model_dir(tmp_path, sklearn_model_dir)
    folder_a = orphan(client, workspace, names["a"], path_a)
    folder_c = orphan(client, workspace, names["c"], model_dir(tmp_path, sklearn_model_dir), versions=2)
    # Two versions share one folder; one is deleted: the other still references it.
    path_b = model_dir(tmp_path, sklearn_model_dir)
    register(client, names["b"], path_b)
    register(client, names["b"], path_b)
    client.delete_model_version(names["b"], "1")
    folder_b = folder_of(workspace, names["b"], "2")
    # One hash, two folder names (one manifest serves both): the orphaned name goes, the manifest stays.
    path_m = model_dir(tmp_path, sklearn_model_dir)
    register(client, names["m"], path_m)
    folder_m = folder_of(workspace, names["m"], "1")
    shutil.copytree(path_m, path_m.parent / "other")
    folder_m2 = orphan(client, workspace, names["m"] + "-other", path_m.parent / "other")
    assert folder_m2 == folder_m.rsplit("/", 1)[0] + "/other"
    # The Azure ML SDK uploads and registers a folder; the plugin reuses that upload (and adds its manifest);
    # the plugin's version is deleted: the SDK's version still references it.
    path_s = model_dir(tmp_path, sklearn_model_dir)
    with resolve_localhost():
        sdk_version = ml_client.models.create_or_update(Model(name=names["s"], path=str(path_s), type="mlflow_model"))
    folder_s = orphan(client, workspace, names["s"] + "-plugin", path_s)
    assert folder_s == sdk_version.path.split("/paths/", 1)[1]
    # An SDK version names one file inside a folder the plugin uploaded; the plugin's version is deleted.
    folder_f = orphan(client, workspace, names["f"], model_dir(tmp_path, sklearn_model_dir))
    with resolve_localhost():
        ml_client.models.create_or_update(Model(
            name=names["f"] + "-sdk", type="custom_model",
            path=f"azureml://datastores/workspaceblobstore/paths/{folder_f}/MLmodel",
        ))
    # An archived version (Azure ML's isArchived: hidden from default lists) keeps its files.
    path_r = model_dir(tmp_path, sklearn_model_dir)
    register(client, names["r"], path_r)
    ml_client.models.archive(name=names["r"], version="1")
    assert workspace.state.get_version(WS2, names["r"], "1")["properties"]["isArchived"] is True
    folder_r = folder_of(workspace, names["r"], "1")
    # The SDK's own upload, its version deleted: no manifest, so not the plugin's to delete.
    with resolve_localhost():
        x = ml_client.models.create_or_update(
            Model(name=names["x"], path=str(model_dir(tmp_path, sklearn_model_dir)), type="custom_model")
        )
    client.delete_model_version(names["x"], x.version)
    folder_x = x.path.split("/paths/", 1)[1]
    # A fresh orphan, written at least 2 s after the old ones (blob times have 1 s resolution).
    old = max(newest(container, f) for f in (folder_a, folder_c, folder_m2))
    while time.time() < old + 2:
        time.sleep(0.1)
    folder_n = orphan(client, workspace, names["n"], model_dir(tmp_path, sklearn_model_dir))
    fresh = newest(container, folder_n)
    # The clock: an hour after the fresh orphan; minimum age: an hour and a second. Old orphans are >= 3602 s old.
    mocker.patch.object(storage_gc, "_now", return_value=fresh + 3600)
    min_age = str((3600 + 1) / 3600)

    before = blobs(container)
    assert MANIFEST in {n.rsplit("/", 1)[-1] for n in inside(before, folder_s)}  # the plugin's now
    assert not any(n.endswith(MANIFEST) for n in inside(before, folder_x))

    code, out, err = run_gc(capsys, clean, "--min-age", min_age)  # a dry run first
    assert code == 0, out + err
    assert sorted(listed(out)) == sorted([folder_a, folder_c, folder_m2])
    assert f"  {folder_n}  " in out.split("written less than")[1]  # kept as young
    assert blobs(container) == before

    code, out, err = run_gc(capsys, clean, "--apply", "--min-age", min_age)
    assert code == 0, out + err
    after = blobs(container)
    reclaimed = {**inside(before, folder_a), **inside(before, folder_c),
                 **{n: v for n, v in before.items() if n.startswith(folder_m2 + "/")}}
    assert set(before) - set(after) == set(reclaimed)  # exactly the orphans, with their manifests
    assert {n: before[n] for n in after} == after  # nothing else changed, not even metadata
    size = sum(s for _, s in reclaimed.values())
    assert f"Reclaimed 3 folders, {size} bytes" in out
    for folder in (folder_b, folder_m, folder_s, folder_f, folder_r, folder_x, folder_n):
        assert inside(after, folder) == inside(before, folder)

    # What is left loads; the SDK downloads its version byte for byte.
    expected = list(mlflow.pyfunc.load_model(str(sklearn_model_dir)).predict(iris.head(3)))
    for uri in (f"models:/{names['b']}/2", f"models:/{names['m']}/1", f"models:/{names['r']}/1"):
        assert list(mlflow.pyfunc.load_model(uri).predict(iris.head(3))) == expected
    with resolve_localhost():
        ml_client.models.download(names["s"], version=sdk_version.version, download_path=str(tmp_path / "sdk"))
    assert files_of(tmp_path / "sdk" / names["s"] / path_s.name) == files_of(path_s)
    # Registering a reclaimed folder's files again uploads them again, and works.
    mv = register(client, names["a"], path_a)
    assert folder_of(workspace, names["a"], mv.version) == folder_a
    assert list(mlflow.pyfunc.load_model(f"models:/{names['a']}/{mv.version}").predict(iris.head(3))) == expected


def test_dry_run_lists_with_sizes_and_deletes_nothing(workspace, clean, client, container, capsys, tmp_path,
                                                       sklearn_model_dir, model_name):
    folder = orphan(client, workspace, model_name, model_dir(tmp_path, sklearn_model_dir))
    before = blobs(container)
    code, out, err = run_gc(capsys, clean, "--min-age", "0")
    assert code == 0, out + err
    assert listed(out) == [folder]
    size = sum(s for _, s in inside(before, folder).values())
    own = {n: v for n, v in inside(before, folder).items() if n.startswith(folder + "/")}
    manifest = size - sum(s for _, s in own.values())
    assert (f"  {folder}  {len(own)} files  {size - manifest} bytes (and the hash folder's manifest, {manifest} "
            "bytes)  ") in out
    assert f"1 folder, {size} bytes" in out and "manifests included" in out and "run with --apply" in out
    assert blobs(container) == before  # names, sizes and ETags: not even a marker was touched


def test_a_manifest_left_alone_is_reclaimed(workspace, clean, client, container, capsys, tmp_path,
                                            sklearn_model_dir, model_name):
    folder = orphan(client, workspace, model_name, model_dir(tmp_path, sklearn_model_dir))
    for name in [n for n in blobs(container) if n.startswith(folder + "/")]:  # as a gc cut short would leave it
        container.delete_blob(name)
    hash_dir = folder.rsplit("/", 1)[0]
    (manifest,) = [(n, size) for n, (_, size) in blobs(container).items() if n.startswith(hash_dir + "/")]
    assert manifest[0] == f"{hash_dir}/{MANIFEST}"
    code, out, err = run_gc(capsys, clean, "--apply", "--min-age", "0")
    assert code == 0, out + err
    assert listed(out) == [hash_dir]
    assert f"Deleted {hash_dir} (only its manifest {MANIFEST} is left, {manifest[1]} bytes)" in out
    assert not [n for n in blobs(container) if n.startswith(hash_dir + "/")]


def test_default_min_age_keeps_a_fresh_orphan(workspace, clean, client, container, capsys, mocker, tmp_path,
                                              sklearn_model_dir, model_name):
    folder = orphan(client, workspace, model_name, model_dir(tmp_path, sklearn_model_dir))
    before = blobs(container)
    code, out, err = run_gc(capsys, clean, "--apply")  # 24 h by default
    assert code == 0, out + err
    assert listed(out) == [] and "0 folders, 0 bytes" in out
    assert f"  {folder}  " in out.split("written less than 24 h ago")[1]
    assert blobs(container) == before
    # A day and an hour later, the default age lets it go.
    mocker.patch.object(storage_gc, "_now", return_value=newest(container, folder) + 25 * 3600)
    code, out, err = run_gc(capsys, clean, "--apply")
    assert code == 0, out + err
    assert listed(out) == [folder]
    assert set(before) - set(blobs(container)) == set(inside(before, folder))


def test_write_leases_held_throughout_delete_nothing(workspace, clean, client, container, capsys, mocker, tmp_path,
                                                     sklearn_model_dir, model_name):
    """A held write lease means a registration may be about to use an orphan: gc waits for a moment without one,
    and when none comes, deletes nothing and puts the completion markers back."""
    from azure.storage.blob import BlobLeaseClient

    from mlflow_azureml_registry.azure.leases import LEASE_PREFIX

    folder = orphan(client, workspace, model_name, model_dir(tmp_path, sklearn_model_dir))
    before = blobs(container)
    lease_blob = container.get_blob_client(f"{LEASE_PREFIX}{model_name}-busy")
    lease_blob.upload_blob(b"", overwrite=True)
    lease = BlobLeaseClient(lease_blob)
    lease.acquire(lease_duration=60)
    mocker.patch.object(storage_gc, "QUIET_WAIT_S", 1.0)
    try:
        code, out, err = run_gc(capsys, clean, "--apply", "--min-age", "0")
    finally:
        lease.release()
    assert code == 1
    assert f"{model_name}-busy" in err and "Nothing was deleted" in err
    after = blobs(container)
    assert set(after) == set(before)
    marked = [b for b in container.list_blobs(name_starts_with=folder + "/", include=["metadata"])
              if b.metadata.get("upload_status") == "completed"]
    assert len(marked) == 1  # retired, then put back: a later registration reuses the folder
    # Released: the same run reclaims it.
    code, out, err = run_gc(capsys, clean, "--apply", "--min-age", "0")
    assert code == 0, out + err
    assert set(before) - set(blobs(container)) == set(inside(before, folder))
    lease_blob.delete_blob()


def test_registrations_in_flight_survive_apply(workspace, clean, client, container, capsys, mocker, tmp_path,
                                               sklearn_model_dir, model_name):
    """``gc --apply --min-age 0`` (no age protection at all) while registrations run: fresh uploads in flight, orphans
    reused after gc retired them, and one reused after its reuse check passed but before gc retired it. Every
    registration succeeds and loads; the orphan nobody uses is reclaimed."""
    mocker.patch.object(storage_gc, "RETIRE_GRACE_S", 2.0)
    reused = [model_dir(tmp_path, sklearn_model_dir) for _ in range(3)]
    for i, path in enumerate(reused):
        orphan(client, workspace, f"{model_name}-old{i}", path)
    checked_path = model_dir(tmp_path, sklearn_model_dir)
    checked_folder = orphan(client, workspace, f"{model_name}-checked", checked_path)
    unused_folder = orphan(client, workspace, f"{model_name}-unused", model_dir(tmp_path, sklearn_model_dir))

    made: list[tuple[str, str, Path]] = []
    errors: list[BaseException] = []
    stop, retired, checked, fresh_done = threading.Event(), threading.Event(), threading.Event(), threading.Event()

    def registering(name: str, paths) -> None:
        try:
            for path in paths():
                made.append((name, register(client, name, path).version, path))
                if "-fresh" in name:
                    fresh_done.set()
                if stop.is_set():
                    return
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    def fresh():
        while True:
            yield model_dir(tmp_path, sklearn_model_dir)

    original_upload = registration.upload_folder

    def upload_folder(gateway, model, *, model_name):
        uploaded = original_upload(gateway, model, model_name=model_name)
        if model_name.endswith("-late"):  # passed the reuse check; gc retires the folder before the version exists
            checked.set()
            assert retired.wait(60)
        return uploaded

    mocker.patch.object(registration, "upload_folder", side_effect=upload_folder)
    real_grace = storage_gc._grace
    after_retire = [threading.Thread(target=registering, args=(f"{model_name}-reuse{i}", lambda p=p: [p, p]))
                    for i, p in enumerate(reused)]

    def grace() -> None:  # the orphans are retired now: registrations of their files start during the grace
        retired.set()
        for thread in after_retire:
            thread.start()
        real_grace()

    mocker.patch.object(storage_gc, "_grace", side_effect=grace)
    threads = [threading.Thread(target=registering, args=(f"{model_name}-fresh{i}", fresh)) for i in range(2)]
    threads.append(threading.Thread(target=registering, args=(f"{model_name}-late", lambda: [checked_path])))
    for thread in threads:
        thread.start()
    assert checked.wait(120) and fresh_done.wait(120)  # gc starts with fresh registrations going on
    try:
        code, out, err = run_gc(capsys, clean, "--apply", "--min-age", "0")
    finally:
        stop.set()
        retired.set()
        for thread in threads + after_retire:
            if thread.is_alive() or thread.ident is not None:
                thread.join(300)
    assert not errors, errors
    assert code == 0, out + err
    assert checked_folder in listed(out) and unused_folder in listed(out)
    assert f"Kept {checked_folder}: a model version references it now" in out
    marked = [b.name for b in container.list_blobs(name_starts_with=checked_folder + "/", include=["metadata"])
              if b.metadata.get("upload_status") == "completed"]
    assert len(marked) == 1  # its completion marker put back
    assert f"Deleted {unused_folder} " in out
    assert not any(n.startswith(unused_folder.rsplit("/", 1)[0] + "/") for n in blobs(container))
    assert {name.rsplit("-", 1)[1] for name, _, _ in made} >= {"fresh0", "fresh1", "late", "reuse0", "reuse1",
                                                                 "reuse2"}
    for name, version, path in made:  # every file of every version, checked against its manifest
        got = Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{version}", dst_path=str(tmp_path / "dl")))
        files = files_of(got)
        files.pop("registered_model_meta", None)  # MLflow's own, added to models:/ downloads
        assert files == files_of(path), (name, version)
        shutil.rmtree(got)
    for name in {name for name, _, _ in made}:
        mlflow.pyfunc.load_model(f"models:/{name}/latest")


def test_files_written_after_the_last_check_are_never_deleted(workspace, clean, client, container, capsys, mocker,
                                                             tmp_path, sklearn_model_dir, model_name, iris):
    """A registration that writes an orphan's files after gc's last look (here: between gc's final listing of the
    folder and its deletes) keeps them: each delete asks for the blob as listed (If-Match)."""
    from mlflow_azureml_registry.azure import blob_scan

    path = model_dir(tmp_path, sklearn_model_dir)
    folder = orphan(client, workspace, model_name, path)
    original = blob_scan.list_blobs
    late = []

    def list_then_register(container_client, prefix):
        listing = list(original(container_client, prefix))
        if folder.startswith(prefix) and not late:  # gc's final listing of the hash folder
            late.append(register(client, model_name, path))  # finds no marker (retired): uploads every file again
        return listing

    mocker.patch.object(blob_scan, "list_blobs", side_effect=list_then_register)
    code, out, err = run_gc(capsys, clean, "--apply", "--min-age", "0")
    assert code == 0, out + err
    assert late and listed(out) == [folder]
    files = len([n for n in blobs(container) if n.startswith(folder + "/")])
    assert f"Kept {folder}: written to while it was deleted ({files} of {files} files kept" in out
    assert "Reclaimed 0 folders" in out
    expected = list(mlflow.pyfunc.load_model(str(sklearn_model_dir)).predict(iris.head(3)))
    assert list(mlflow.pyfunc.load_model(f"models:/{model_name}/{late[0].version}").predict(iris.head(3))) == expected


def test_refuses_a_registry_and_bad_input(workspace, clean, capsys, monkeypatch):
    mark = len(workspace.requests)
    code, out, err = run_gc(capsys, workspace.azureml_registry_uri(), "--apply")
    assert code == 2 and out == ""
    assert "workspaces only" in err and "local-registry" in err and "Traceback" not in err
    assert workspace.requests[mark:] == []  # refused before any request

    code, out, err = run_gc(capsys, "azureml-registry://subscriptions/s/resourceGroups/rg/nonsense")
    assert code == 2 and "Invalid registry URI" in err and "Expected a URI of the form" in err
    code, out, err = run_gc(capsys, "runs:/abc/model")
    assert code == 2 and "does not start with azureml-registry://" in err

    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    code, out, err = run_gc(capsys)
    assert code == 2 and "MLFLOW_REGISTRY_URI" in err
    for bad in ("-1", "nan", "inf"):
        code, out, err = run_gc(capsys, clean, "--min-age", bad)
        assert code == 2 and "--min-age" in err, bad
    code, out, err = run_gc(capsys, clean, "--min-age", "soon")
    assert code == 2 and "invalid float value" in err
    assert workspace.requests[mark:] == []


def test_console_script(workspace, clean, client, container, tmp_path, sklearn_model_dir, model_name):
    """The installed ``mlflow-azureml-registry gc``, in a fresh process with only the workspace's environment (the
    registry URI from ``MLFLOW_REGISTRY_URI``)."""
    folder = orphan(client, workspace, model_name, model_dir(tmp_path, sklearn_model_dir))
    script = Path(sys.executable).parent / "mlflow-azureml-registry"
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **workspace.env, "MLFLOW_REGISTRY_URI": clean,
           "IDENTITY_ENDPOINT": "http://127.0.0.1:9/token", "IDENTITY_HEADER": "x"}
    before = blobs(container)
    process = subprocess.Popen([str(script), "gc", "--min-age", "0"], env=env, cwd=tmp_path, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = process.communicate(timeout=240)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert process.returncode == 0, out + err
    assert listed(out) == [folder] and "run with --apply" in out
    assert blobs(container) == before


def test_a_folder_is_counted_the_same_in_every_list(workspace, clean, client, container, capsys, tmp_path,
                                                    sklearn_model_dir, model_name):
    """Kept as young, listed as an orphan, deleted: the folder's own files and bytes each time; the manifest that
    goes with it is named apart (issue #17)."""
    folder = orphan(client, workspace, model_name, model_dir(tmp_path, sklearn_model_dir))
    own = {n: size for n, (_, size) in blobs(container).items() if n.startswith(folder + "/")}
    counted = f"{len(own)} files  {sum(own.values())} bytes"

    code, young, err = run_gc(capsys, clean)  # 24 h: kept
    assert code == 0, young + err
    assert f"  {folder}  {counted}  last written" in young.split("written less than 24 h ago")[1]
    code, old, err = run_gc(capsys, clean, "--min-age", "0")
    assert code == 0, old + err
    assert f"  {folder}  {counted} (and the hash folder's manifest, " in old
    code, applied, err = run_gc(capsys, clean, "--apply", "--min-age", "0")
    assert code == 0, applied + err
    assert f"Deleted {folder} ({counted.replace('  ', ', ')} (and the hash folder's manifest, " in applied
    assert "Counted per folder: its own files and bytes" in young


def test_a_refused_token_gets_the_doctors_advice(workspace, clean, capsys, monkeypatch):
    from mlflow_azureml_registry import session, settings
    from mlflow_azureml_registry.doctor_advice import token_refused_fix

    monkeypatch.setenv(settings.LOCAL_TOKEN, "not-the-token-the-local-workspace-issued")
    session.reset()
    try:
        code, out, err = run_gc(capsys, clean)
    finally:
        monkeypatch.undo()
        session.reset()

    assert code == 1, out + err
    assert "HTTP 401" in err and "not-the-token" not in err
    assert "To fix: MLFLOW_AZUREML_LOCAL_TOKEN is not the token this local workspace issued" in err
    assert "az login" not in err
    from mlflow_azureml_registry.credentials import StaticTokenCredential

    assert token_refused_fix(StaticTokenCredential("x")) in err  # one wording, doctor_advice.py's
