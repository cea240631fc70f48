"""Transfer rows: register_model of a local folder (hashing and control plane included) and
download_artifacts("models:/...") for a large single-file model and a many-file model, against MLflow's
own AzureBlobArtifactRepository and raw azure-storage-blob at its best setting, on the same Azurite.

Each row gets a fresh HTTPS Azurite (Azurite slows down as it fills); each measurement runs in a fresh
process (``transfer_worker.py``); times are medians of 3. Raw azure-storage-blob is swept over threads
{1, 4, 8, 16} x chunks {4, 32} MiB (threads only for many small files, where chunks do not matter)
once each, and its best setting is then measured 3 times.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

MiB = 1024 * 1024


def make_models(root: Path, big_bytes: int, small_files: int) -> list[tuple[str, Path]]:
    big = root / "big" / "model"
    big.mkdir(parents=True)
    with open(big / "weights.bin", "wb") as handle:
        left = big_bytes
        while left:
            chunk = min(left, 64 * MiB)
            handle.write(os.urandom(chunk))
            left -= chunk
    small = root / "small" / "model"
    small.mkdir(parents=True)
    for i in range(small_files):
        (small / f"part-{i:05d}.bin").write_bytes(os.urandom(4096))
    return [(f"{big_bytes // MiB} MiB model (1 file)", big), (f"{small_files:,}-file model (4 KiB each)", small)]


class Row:
    def __init__(self, workspace: Any, scratch: Path) -> None:
        self.ws = workspace
        datastore = workspace.datastore("local-ws")
        self.account, self.container = datastore["accountName"], datastore["containerName"]
        self.scratch = scratch
        self.env = {**os.environ, **workspace.env, "MLFLOW_TRACKING_URI": f"sqlite:///{scratch}/tracking.db",
                    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
        self.base = {"account": self.account, "container": self.container, "key": workspace.account_keys[self.account],
                     "account_url": workspace.storage_account_url_template.format(account=self.account),
                     "scratch": str(scratch)}

    def run(self, **job: Any) -> dict[str, Any]:
        out = subprocess.run([sys.executable, "-m", "benchmarks.transfer_worker", json.dumps({**self.base, **job})],
                             env=self.env, capture_output=True, text=True, cwd=Path(__file__).parent.parent)
        if out.returncode != 0:
            raise RuntimeError(f"transfer worker failed: {out.stderr[-2000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    def version_prefix(self, name: str, version: str) -> str:
        return self.ws.state.get_version("local-ws", name, version)["properties"]["modelUri"].split("/paths/", 1)[1]


def _raw(row: Row, op: str, folder: Path, prefix: str, single_file: bool, repeats: int) -> tuple[float, str]:
    """Sweep raw azure-storage-blob settings once each, then measure the best one ``repeats`` times."""
    settings = [(t, c) for t in (1, 4, 8, 16) for c in ((4, 32) if single_file else (4,))]
    sweep = {}
    for threads, chunk in settings:
        sweep[(threads, chunk)] = row.run(impl="raw", op=op, folder=str(folder), prefix=prefix, threads=threads,
                                          chunk=chunk * MiB)["seconds"][0]
    threads, chunk = min(sweep, key=sweep.get)
    best = row.run(impl="raw", op=op, folder=str(folder), prefix=prefix, threads=threads, chunk=chunk * MiB,
                   repeats=repeats - 1)["seconds"]  # with the sweep's own sample: `repeats` in all
    return statistics.median([sweep[(threads, chunk)], *best]), f"{threads} threads" + (
        f" x {chunk} MiB" if single_file else "")


def measure_upload(row: Row, label: str, folder: Path, repeats: int) -> dict[str, Any]:
    single = len(list(folder.iterdir())) == 1
    # Uploads are content-addressed: delete them after each run so that every run uploads.
    plugin = row.run(impl="plugin", op="upload", folder=str(folder), name="bench-up", repeats=repeats,
                     cleanup="LocalUpload/")
    row.run(impl="plugin", op="upload", folder=str(folder), name="bench-up-first")
    reuse = row.run(impl="plugin", op="upload", folder=str(folder), name="bench-up-again", repeats=repeats)
    mlflow_runs = row.run(impl="mlflow", op="upload", folder=str(folder), prefix="mlflow-up", repeats=repeats,
                          cleanup="mlflow-up/")
    raw_seconds, setting = _raw(row, "upload", folder, "raw-up", single, repeats)
    return {"row": f"register_model, {label}", "plugin_s": statistics.median(plugin["seconds"]),
            "mlflow_s": statistics.median(mlflow_runs["seconds"]), "raw_s": raw_seconds, "raw_setting": setting,
            "peak_rss_mib": plugin["peak_rss_growth_mib"], "reregister_s": statistics.median(reuse["seconds"])}


def measure_download(row: Row, label: str, folder: Path, repeats: int) -> dict[str, Any]:
    single = len(list(folder.iterdir())) == 1
    row.run(impl="plugin", op="upload", folder=str(folder), name="bench-down")
    prefix = row.version_prefix("bench-down", "1")
    plugin = row.run(impl="plugin", op="download", name="bench-down", version="1", repeats=repeats)
    mlflow_runs = row.run(impl="mlflow", op="download", prefix=prefix, repeats=repeats)
    raw_seconds, setting = _raw(row, "download", folder, prefix, single, repeats)
    return {"row": f"download_artifacts(models:/), {label}", "plugin_s": statistics.median(plugin["seconds"]),
            "mlflow_s": statistics.median(mlflow_runs["seconds"]), "raw_s": raw_seconds, "raw_setting": setting,
            "peak_rss_mib": plugin["peak_rss_growth_mib"]}


def run(big_bytes: int = 1024 * MiB, small_files: int = 2000, repeats: int = 3) -> list[dict[str, Any]]:
    from mlflow_azureml_registry.local import LocalWorkspace

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-transfers-") as tmp:
        models = make_models(Path(tmp) / "data", big_bytes, small_files)
        for label, folder in models:
            for measure in (measure_upload, measure_download):
                scratch = Path(tmp) / uuid.uuid4().hex
                scratch.mkdir()
                # A fresh Azurite per row. On disk: Azurite keeps deleted and overwritten data until its
                # 10-minute GC, and a 1 GiB row writes ~20 GiB, past its in-memory limit (half the RAM).
                with LocalWorkspace(workdir=str(scratch / "ws"), blob_persistence="disk") as workspace:
                    rows.append(measure(Row(workspace, scratch), label, folder, repeats))
    return rows
