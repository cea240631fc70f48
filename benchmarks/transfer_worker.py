"""Timed transfers in a fresh process (``python -m benchmarks.transfer_worker '<json job>'``), driven by the parent.

Every implementation runs the same way: a fresh process against the same Azurite. It imports and warms up,
prints ``ready``, then for each ``go <json>`` line on stdin (the parent may give it an empty Azurite first)
does one transfer with the job's parameters updated by that JSON, and prints ``{"seconds": s, "cpu_s": c,
"peak_rss_growth_mib": m}``: wall seconds of the transfer only, the process's CPU seconds (all threads) in
it, and its peak RSS during it minus its RSS just before (``VmHWM`` is reset first), and ``"stopped"``: a
raw run given a ``limit`` (seconds) stops at its first request after that long. An empty line or end of
input ends it.

Parameters: ``impl`` (plugin | mlflow | raw), ``op`` (upload | download), ``folder``, and per impl
``name``/``version``/``hash_cache``/``cold_cache`` (plugin), ``account_url``/``container``/``prefix``/``key``
(mlflow, raw), ``threads``/``chunk``/``fraction``/``limit`` (raw).
"""

from __future__ import annotations

import json
import os
import shutil
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


class Stopped(Exception):
    """A sweep setting ran past its ``deadline``: it is already slower than the best setting so far."""


def _service(job: dict, chunk: int | None = None):
    """A blob service client: SDK defaults, or every put/get size set to ``chunk`` (raw sweep).

    With a ``deadline`` in the job, every request made after it raises :class:`Stopped` before it is sent
    (the storage pipeline's request hook; it is not an Azure error, so nothing retries it).
    """
    from azure.storage.blob import BlobServiceClient

    options = {}
    if chunk:
        options = {"max_single_put_size": chunk, "max_block_size": chunk, "max_single_get_size": chunk,
                   "max_chunk_get_size": chunk}
    deadline = job.get("deadline")
    if deadline is not None:
        def stop_when_late(_request) -> None:
            if time.perf_counter() > deadline:
                raise Stopped

        options["raw_request_hook"] = stop_when_late
    credential = {"account_name": job["account"], "account_key": job["key"]}
    return BlobServiceClient(job["account_url"], credential=credential, **options)


def mlflow_repo(job: dict) -> None:
    from mlflow.store.artifact.azure_blob_artifact_repo import AzureBlobArtifactRepository

    # The client MLflow builds itself from AZURE_STORAGE_CONNECTION_STRING: SDK defaults.
    uri = f"wasbs://{job['container']}@{job['account']}.blob.core.windows.net/{job['prefix']}"
    repo = AzureBlobArtifactRepository(uri, client=_service(job))
    if job["op"] == "upload":
        repo.log_artifacts(job["folder"])
    else:
        repo.download_artifacts("", dst_path=job["dest"])


def raw(job: dict) -> None:
    """azure-storage-blob at ``threads`` x ``chunk``; ``fraction`` < 1 moves only that share (the sweep's pass)."""
    container = _service(job, job["chunk"]).get_container_client(job["container"])
    threads, fraction = job["threads"], job.get("fraction", 1.0)
    if job["op"] == "upload":
        files = _files(Path(job["folder"]))
        if len(files) == 1:
            path, name = files[0]
            length = max(1, int(path.stat().st_size * fraction))
            with open(path, "rb") as handle:
                container.upload_blob(f"{job['prefix']}/{name}", handle, length=length, overwrite=True,
                                      max_concurrency=threads)
            return

        def put(item):
            path, name = item
            with open(path, "rb") as handle:
                container.upload_blob(f"{job['prefix']}/{name}", handle, overwrite=True)

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(put, files[:max(1, int(len(files) * fraction))]))
        return

    blobs = list(container.list_blobs(name_starts_with=job["prefix"] + "/"))
    if len(blobs) == 1:
        dest = Path(job["dest"]) / blobs[0].name[len(job["prefix"]) + 1:]
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(dest, "wb") as handle:
            container.download_blob(blobs[0].name, offset=0, length=max(1, int(blobs[0].size * fraction)),
                                    max_concurrency=threads).readinto(handle)
        return

    def get(blob):
        dest = Path(job["dest"]) / blob.name[len(job["prefix"]) + 1:]
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(dest, "wb") as handle:
            container.download_blob(blob.name).readinto(handle)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(get, blobs[:max(1, int(len(blobs) * fraction))]))


def main() -> None:
    import warnings

    warnings.simplefilter("ignore")
    job = json.loads(sys.argv[1])
    import azure.storage.blob  # noqa: F401

    if job["impl"] != "raw":  # raw azure-storage-blob does not pay for importing MLflow
        import mlflow

    if job["impl"] == "plugin":
        # What a notebook has warm after its first MLflow call: MLflow's tracking and registry stores.
        client = mlflow.MlflowClient()
        _ = client._tracking_client.store
        _ = client._get_registry_client().store

    print("ready", flush=True)
    for line in sys.stdin:
        if not line.startswith("go"):
            break
        params = {**job, **json.loads(line[2:].strip() or "{}")}
        if params["op"] == "download":
            params["dest"] = tempfile.mkdtemp(prefix="bench-dl-", dir=params.get("scratch"))
        if params.get("hash_cache"):
            # A first registration has nothing cached: the cache is emptied before each such run.
            if params.get("cold_cache"):
                shutil.rmtree(params["hash_cache"], ignore_errors=True)
            os.environ["MLFLOW_AZUREML_HASH_CACHE_DIR"] = params["hash_cache"]
        _reset_peak_rss()
        before = _status_kib("VmRSS")
        stopped = False
        started, cpu_started = time.perf_counter(), time.process_time()
        if params.get("limit"):
            params["deadline"] = started + params["limit"]
        try:
            {"plugin": plugin, "mlflow": mlflow_repo, "raw": raw}[params["impl"]](params)
        except Stopped:
            stopped = True
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        peak = _status_kib("VmHWM")
        if params["op"] == "download":
            shutil.rmtree(params["dest"], ignore_errors=True)
        print(json.dumps({"seconds": seconds, "cpu_s": cpu, "peak_rss_growth_mib": max(0, peak - before) / 1024,
                          "stopped": stopped}), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    main()
