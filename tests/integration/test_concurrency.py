"""Concurrent writers (issue #7): processes and threads registering one model, tags and aliases at once.

The REST API has no conditional create or update; the plugin's clients serialise writes to a model
with a blob lease (mlflow_azureml_registry/azure/leases.py) and verify every version after writing it.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests import processes

PROCESSES = 8
CALLS = 25

WORKER = textwrap.dedent(
    """
    import json, sys
    import mlflow

    name, folder, proc, calls = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    got = []
    for i in range(calls):
        mv = mlflow.register_model(folder, name, tags={"proc": proc, "i": str(i)})
        got.append([mv.version, mv.tags.get("proc"), mv.tags.get("i")])
    print(json.dumps(got))
    """
)


def _folder(root: Path) -> Path:
    folder = root / "model"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(os.urandom(2048))
    (folder / "config.json").write_text('{"layers": 3}')
    return folder


def test_processes_registering_one_model_get_distinct_versions(workspace, client, model_name, tmp_path):
    """8 processes x 25 register_model calls of one name (same files, so the same asset path: the
    case where a version PUT could silently overwrite another's): exactly 200 versions, none merged."""
    folder = _folder(tmp_path)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        **workspace.env,
        "IDENTITY_ENDPOINT": "http://127.0.0.1:9/token",
        "IDENTITY_HEADER": "x",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/tracking.db",
    }
    client.create_registered_model(model_name)  # so the workers' first calls do not race on the sqlite schema
    reported: dict[int, tuple[str, str]] = {}
    with contextlib.ExitStack() as stack:  # each worker in its own process group, killed with it when done
        workers = [
            stack.enter_context(processes.group(
                [sys.executable, "-c", WORKER, model_name, str(folder), str(p), str(CALLS)],
                env={**env, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/tracking-{p}.db"},
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ))
            for p in range(PROCESSES)
        ]
        for p, worker in enumerate(workers):
            out, err = worker.communicate(timeout=600)
            assert worker.returncode == 0, "\n".join(line for line in err.splitlines() if "Warning" not in line)[-3000:]
            for version, proc, i in json.loads(out.strip().splitlines()[-1]):
                assert (proc, i) == (str(p), i)
                assert version not in reported, f"version {version} was returned to two registrations"
                reported[version] = (proc, i)
    assert len(reported) == PROCESSES * CALLS

    stored = {mv.version: mv for mv in client.search_model_versions(f"name = '{model_name}'")}
    assert sorted(stored) == list(range(1, PROCESSES * CALLS + 1))  # int versions, as MLflow's SQL registry
    for version, (proc, i) in reported.items():
        assert stored[version].tags == {"proc": proc, "i": i}, f"version {version} lost its own metadata"


def test_threads_sharing_one_store(workspace, client, model_name, tmp_path):
    """MLflow caches one store per process; threads registering, tagging and aliasing through it keep every write."""
    import mlflow

    folder = _folder(tmp_path)
    client.create_registered_model(model_name)
    threads = 8

    def register(t: int) -> list[int]:
        tags = [{"t": str(t), "i": str(i)} for i in range(4)]
        return [mlflow.register_model(str(folder), model_name, tags=tag).version for tag in tags]

    with ThreadPoolExecutor(threads) as pool:
        versions = [v for got in pool.map(register, range(threads)) for v in got]
    assert sorted(versions) == list(range(1, threads * 4 + 1))
    pairs = Counter((mv.tags["t"], mv.tags["i"]) for mv in client.search_model_versions(f"name = '{model_name}'"))
    assert len(pairs) == threads * 4 and set(pairs.values()) == {1}

    # Every thread writes its own model tag, alias and tag on the same version, all at once.
    start = threading.Barrier(threads)

    def write(t: int) -> None:
        start.wait()
        client.set_registered_model_tag(model_name, f"k{t}", str(t))
        client.set_registered_model_alias(model_name, f"a{t}", str(t + 1))
        client.set_model_version_tag(model_name, "1", f"v{t}", str(t))

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(write, range(threads)))
    model = client.get_registered_model(model_name)
    assert model.tags == {f"k{t}": str(t) for t in range(threads)}
    assert dict(model.aliases) == {f"a{t}": t + 1 for t in range(threads)}
    tags = client.get_model_version(model_name, "1").tags
    assert {k: v for k, v in tags.items() if k.startswith("v")} == {f"v{t}": str(t) for t in range(threads)}


def test_a_lease_held_by_a_crashed_client_delays_but_does_not_block(workspace, client, model_name, tmp_path):
    """A lease taken and never released (its holder died) is waited for, then the write goes on."""
    from azure.storage.blob import BlobLeaseClient

    from mlflow_azureml_registry import session
    from mlflow_azureml_registry.azure.leases import LEASE_PREFIX

    client.create_registered_model(model_name)
    container = session.gateway(client._get_registry_client().store.workspace).container_client("workspaceblobstore")
    blob = container.get_blob_client(f"{LEASE_PREFIX}{model_name}")
    BlobLeaseClient(blob).acquire(lease_duration=15)  # the shortest lease Azure Storage grants
    client.set_registered_model_tag(model_name, "after", "crash")
    assert client.get_registered_model(model_name).tags == {"after": "crash"}


def test_one_large_folder_registered_twice_at_once(workspace, client, model_name, tmp_path):
    """Two registrations of the same files at the same moment upload the same content-addressed blobs: the first
    block list committed discards the other's staged blocks. Both registrations must succeed (MLflow's SQL
    registry takes both), and each version downloads and verifies. A fresh folder per round: no upload reused."""
    import mlflow

    from mlflow_azureml_registry.azure.blob_common import UPLOAD_BLOCK_SIZE

    for round_ in range(3):
        folder = tmp_path / f"round{round_}" / "model"
        folder.mkdir(parents=True)
        (folder / "weights.bin").write_bytes(os.urandom(2 * UPLOAD_BLOCK_SIZE + 123))  # staged in 3 blocks
        (folder / "MLmodel").write_text("flavors: {}\n")
        start = threading.Barrier(2)

        def register(who: int, folder=folder, start=start, first=round_ == 0) -> int:
            name = f"{model_name}-{who}"
            if first:
                client.create_registered_model(name)
            start.wait()
            return client.create_model_version(name, str(folder)).version

        with ThreadPoolExecutor(2) as pool:
            versions = list(pool.map(register, range(2)))
        assert versions == [round_ + 1, round_ + 1]
        for who in range(2):
            out = tmp_path / f"out{round_}-{who}"
            local = mlflow.artifacts.download_artifacts(
                f"models:/{model_name}-{who}/{round_ + 1}", dst_path=str(out))
            assert (Path(local) / "weights.bin").read_bytes() == (folder / "weights.bin").read_bytes()
