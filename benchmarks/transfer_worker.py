"""Timed transfers in a fresh process (``python -m benchmarks.transfer_worker '<json job>'``).

Every implementation runs the same way — a fresh process against the same Azurite, ``repeats`` times
(``cleanup`` blobs deleted, untimed, after each) — and reports wall seconds of each transfer and the
process's peak RSS growth over the whole job (``VmHWM``, reset before the first run, minus RSS then).
The job gives: ``impl`` (plugin | mlflow | raw), ``op`` (upload | download), ``folder``, and per impl
``name``/``dest`` (plugin), ``account_url``/``container``/``prefix``/``key`` (mlflow, raw), ``threads``/``chunk`` (raw).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak_rss() -> None:
    """Reset the kernel's high-water mark, so import-time peaks do not count as transfer memory."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


def _files(folder: Path) -> list[tuple[Path, str]]:
    return [(p, p.relative_to(folder).as_posix()) for p in sorted(folder.rglob("*")) if p.is_file()]


def plugin(job: dict) -> None:
    import mlflow

    if job["op"] == "upload":
        mlflow.register_model(job["folder"], job["name"], await_registration_for=0)
    else:
        mlflow.artifacts.download_artifacts(f"models:/{job['name']}/{job['version']}", dst_path=job["dest"])


def _service(job: dict):
    from azure.storage.blob import BlobServiceClient

    chunk = job.get("chunk", 4 << 20)
    return BlobServiceClient(
        job["account_url"], credential={"account_name": job["account"], "account_key": job["key"]},
        max_single_put_size=chunk, max_block_size=chunk, max_single_get_size=chunk, max_chunk_get_size=chunk,
    )


def mlflow_repo(job: dict) -> None:
    from mlflow.store.artifact.azure_blob_artifact_repo import AzureBlobArtifactRepository

    uri = f"wasbs://{job['container']}@{job['account']}.blob.core.windows.net/{job['prefix']}"
    repo = AzureBlobArtifactRepository(uri, client=_service(job))
    if job["op"] == "upload":
        repo.log_artifacts(job["folder"])
    else:
        repo.download_artifacts("", dst_path=job["dest"])


def raw(job: dict) -> None:
    container = _service(job).get_container_client(job["container"])
    threads = job["threads"]
    if job["op"] == "upload":
        files = _files(Path(job["folder"]))

        def put(item):
            path, name = item
            with open(path, "rb") as handle:
                container.upload_blob(f"{job['prefix']}/{name}", handle, overwrite=True,
                                      max_concurrency=threads if len(files) == 1 else 1)

        if len(files) == 1:
            put(files[0])
        else:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(put, files))
    else:
        blobs = list(container.list_blobs(name_starts_with=job["prefix"] + "/"))

        def get(blob):
            dest = Path(job["dest"]) / blob.name[len(job["prefix"]) + 1:]
            dest.parent.mkdir(parents=True, exist_ok=True)
            with open(dest, "wb") as handle:
                container.download_blob(blob.name, max_concurrency=threads if len(blobs) == 1 else 1).readinto(handle)

        if len(blobs) == 1:
            get(blobs[0])
        else:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(get, blobs))


def main() -> None:
    import warnings

    warnings.simplefilter("ignore")
    job = json.loads(sys.argv[1])
    import azure.storage.blob  # noqa: F401
    import mlflow

    if job["impl"] == "plugin":
        # What a notebook has warm after its first MLflow call: MLflow's tracking and registry stores.
        client = mlflow.MlflowClient()
        _ = client._tracking_client.store
        _ = client._get_registry_client().store

    import shutil

    _reset_peak_rss()
    before = _status_kib("VmRSS")
    seconds = []
    for _ in range(job.get("repeats", 1)):
        if job["op"] == "download":
            job["dest"] = tempfile.mkdtemp(prefix="bench-dl-", dir=job.get("scratch"))
        started = time.perf_counter()
        {"plugin": plugin, "mlflow": mlflow_repo, "raw": raw}[job["impl"]](job)
        seconds.append(time.perf_counter() - started)
        if job["op"] == "download":
            shutil.rmtree(job["dest"], ignore_errors=True)
        if job.get("cleanup"):
            container = _service(job).get_container_client(job["container"])
            for blob in container.list_blobs(name_starts_with=job["cleanup"]):
                container.delete_blob(blob.name)
    peak = _status_kib("VmHWM")
    print(json.dumps({"seconds": seconds, "peak_rss_growth_mib": max(0, peak - before) / 1024}))


if __name__ == "__main__":
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    main()
