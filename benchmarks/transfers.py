"""Transfer rows: register_model of a local folder (hashing and control plane included) and
download_artifacts("models:/...") for a large single-file model and a many-file model, against MLflow's
own AzureBlobArtifactRepository and raw azure-storage-blob at its best setting, on the same Azurite.

Method (RESULTS.md repeats it):
- One local workspace, Azurite keeping blobs on disk. In memory, one Node thread does all of a
  request's work, so concurrent requests overlap nothing and a sequential client looks nearly as fast as
  a parallel one (1 GiB upload, same hour: MLflow's sequential client 10.5 s against 7-9 s for parallel
  ones in memory; 13.2 s against 8-8.5 s on disk). A storage account serves parallel requests in
  parallel; disk mode's off-thread I/O is the closer stand-in.
- Every upload run starts on empty storage (:meth:`Bench.empty_storage`): Azurite slows down as it fills.
  Downloads only read: they run against the plugin's last upload, left in place.
- One fresh process per implementation (``transfer_worker.py``), plus one for re-registering, for both
  models; all import before the first run, then runs go in rounds (MLflow, raw, plugin), so drift in the
  machine's load hits all alike. Times are medians of 3 runs; peak RSS is per run.
- Raw azure-storage-blob: a sweep pass over threads {1, 4, 8, 16} x chunks {4, 32} MiB (threads only for
  many small files, where chunks do not matter) moves a share of the model once per setting (a quarter
  of the large file's upload, all of its download, an eighth of the files), most threads first, on
  storage emptied before each upload setting (Azurite restarted before the first only); the fastest
  setting is then measured 3 times on the whole model, in the rounds with the others. A setting still
  running when the fastest so far had finished is stopped there: it cannot win. (A quarter of 1 GiB is
  8 blocks of 32 MiB, so at 32 MiB the upload pass cannot tell 8 threads from 16.)
- The plugin's first registrations start with an empty content-hash cache (as a new folder does);
  re-registering runs 3 times in another process with the cache the last first registration left.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

MiB = 1024 * 1024
SWEEP_SHARE_LARGE = 0.25  # of the single-file model, uploads: 64 blocks of 4 MiB, 8 of 32 MiB
# Downloads of the single file sweep the whole of it: on a quarter, the settings came within 5% of each other
# and one thread won (0.82 s against 0.84 s for 4 threads), then took 4.5 s on the whole file where 4 threads
# had taken 2.7-3.7 s. Downloads need no emptied storage, and the stopping rule caps each setting at the best's time.
SWEEP_SHARE_LARGE_DOWNLOAD = 1.0
SWEEP_SHARE_MANY = 0.125  # of the many-file model: 250 of 2,000 files, 16 per thread at 16 threads
RAW_SETTINGS_LARGE = [(threads, chunk) for threads in (1, 4, 8, 16) for chunk in (4, 32)]
RAW_SETTINGS_MANY = [(threads, 4) for threads in (1, 4, 8, 16)]
EMPTYING = "emptying storage"  # a phase within the sweeps and upload rounds
SET_UP = "set-up (workspace, workers, model files)"  # a phase before them


def say(message: str) -> None:
    """A progress line on stderr: the full run takes minutes, and the report is printed at the end."""
    print(f"benchmarks: {message}", file=sys.stderr, flush=True)


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


class Worker:
    """A ``transfer_worker`` process: it imports and warms up when started, then does one run per :meth:`go`."""

    def __init__(self, bench: Bench, job: dict[str, Any]) -> None:
        self.log = bench.scratch / "worker.log"
        # A tracking store of its own: workers starting together would race to create one database's tables.
        env = {**bench.env, "MLFLOW_TRACKING_URI": f"sqlite:///{bench.scratch}/tracking-{uuid.uuid4().hex[:8]}.db"}
        with open(self.log, "ab") as errors:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.transfer_worker", json.dumps({**bench.base, **job})],
                env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, text=True,
                cwd=Path(__file__).parent.parent,
            )

    def _line(self) -> str:
        line = self.process.stdout.readline().strip()
        if not line:
            self.process.kill()
            raise RuntimeError(f"transfer worker failed: {self.log.read_text(errors='replace')[-2000:]}")
        return line

    def ready(self) -> None:
        if self._line() != "ready":
            raise RuntimeError(f"transfer worker did not start: {self.log.read_text(errors='replace')[-2000:]}")

    def go(self, **params: Any) -> dict[str, Any]:
        """One timed run with these parameters: ``{"seconds", "peak_rss_growth_mib"}``."""
        self.process.stdin.write(f"go {json.dumps(params)}\n")
        self.process.stdin.flush()
        return json.loads(self._line())

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.close()
                self.process.wait(30)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()


class Bench:
    """The local workspace and the scratch folder that both models' measurements share."""

    def __init__(self, workspace: Any, scratch: Path) -> None:
        self.ws = workspace
        datastore = workspace.datastore("local-ws")
        self.account, self.container = datastore["accountName"], datastore["containerName"]
        self.scratch = scratch
        self.env = {**os.environ, **workspace.env, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
        self.base = {"account": self.account, "container": self.container, "key": workspace.account_keys[self.account],
                     "account_url": workspace.storage_account_url_template.format(account=self.account),
                     "scratch": str(scratch)}
        self.spent: dict[str, float] = {}  # wall seconds per phase, both models (what the 10-minute budget buys)

    @contextlib.contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.spent[phase] = self.spent.get(phase, 0.0) + time.monotonic() - started

    def empty_storage(self, *, restart: bool) -> None:
        """Before an upload run: nothing left from earlier runs.

        ``restart`` (large model): Azurite restarted with its data deleted, as deleted blobs' data stays until
        a 10-minute GC and slows it down. Otherwise (many small files) the container is deleted and made
        again: the blob count is what slows Azurite there, and a restart would cost more than the run's data.
        """
        with self.timed(EMPTYING):
            self._empty_storage(restart=restart)

    def _empty_storage(self, *, restart: bool) -> None:
        if restart:
            self.ws.stop_azurite()
            # Azurite's --location, as local/azurite.py gives it (checked below: a wrong path leaves blobs).
            shutil.rmtree(Path(self.ws.workdir) / "azurite" / "data", ignore_errors=True)
            self.ws.start_azurite()
        else:
            service = self.ws.blob_service(self.account)
            service.delete_container(self.container)
            service.create_container(self.container)
        container = self.ws.blob_service(self.account).get_container_client(self.container)
        if next(iter(container.list_blobs(results_per_page=1)), None) is not None:
            raise RuntimeError("the container still holds blobs; the benchmark needs an empty one per upload run")

    def version_prefix(self, name: str, version: str) -> str:
        """The blob prefix of a model version's files."""
        return self.ws.state.get_version("local-ws", name, version)["properties"]["modelUri"].split("/paths/", 1)[1]


def _sweep(
    bench: Bench, raw: Worker, op: str, folder: Path, prefix: str, single_file: bool
) -> tuple[tuple[int, int], list[tuple[tuple[int, int], float, bool]]]:
    """Raw azure-storage-blob's fastest (threads, chunk MiB), from one pass over a share of the model, and the
    pass itself: (setting, seconds, stopped) per setting.

    A setting still running when the fastest so far had finished is stopped there (at its next request): it
    cannot win, and the slow settings (one thread) would otherwise take most of the pass's time.
    """
    # Most threads first: as storage fills over the pass (a restart per setting would cost ~1 s each, and the
    # pass only ranks settings), the likeliest winners meet the emptiest storage, so drift can only favour raw.
    settings = sorted(RAW_SETTINGS_LARGE if single_file else RAW_SETTINGS_MANY, key=lambda s: (-s[0], -s[1]))
    share = SWEEP_SHARE_MANY
    if single_file:
        share = SWEEP_SHARE_LARGE_DOWNLOAD if op == "download" else SWEEP_SHARE_LARGE
    passes: list[tuple[tuple[int, int], float, bool]] = []
    best: tuple[int, int] | None = None
    best_seconds = None
    for index, (threads, chunk) in enumerate(settings):
        if op == "upload":
            bench.empty_storage(restart=single_file and index == 0)
        result = raw.go(op=op, folder=str(folder), prefix=prefix, threads=threads, chunk=chunk * MiB,
                        fraction=share, limit=best_seconds)
        passes.append(((threads, chunk), result["seconds"], result["stopped"]))
        if not result["stopped"] and (best_seconds is None or result["seconds"] < best_seconds):
            best, best_seconds = (threads, chunk), result["seconds"]
    assert best is not None  # the first setting runs without a limit
    return best, passes


def _sweep_text(passes: list[tuple[tuple[int, int], float, bool]], single_file: bool) -> str:
    return ", ".join(f"{_raw_label(setting, single_file)} {'>' if stopped else ''}{seconds:.2f}"
                     for setting, seconds, stopped in passes)


def _raw_label(setting: tuple[int, int], single_file: bool) -> str:
    threads, chunk = setting
    return f"{threads} thread{'s' if threads > 1 else ''}" + (f" x {chunk} MiB" if single_file else "")


def _summary(runs: list[dict[str, Any]]) -> tuple[float, float]:
    """Median seconds and the largest peak RSS growth of a list of runs."""
    return statistics.median(r["seconds"] for r in runs), max(r["peak_rss_growth_mib"] for r in runs)


def measure_model(
    bench: Bench, workers: dict[str, Worker], folder: Path, label: str, tag: str, repeats: int
) -> list[dict[str, Any]]:
    """One model's register row and download row, on the shared workers, in rounds (one run of each per round)."""
    single = len(list(folder.iterdir())) == 1
    up_name, again_name = f"bench-up-{tag}", f"bench-again-{tag}"
    model = {"folder": str(folder)}
    runs: dict[str, list[dict[str, Any]]] = {key: [] for key in ("mlflow", "raw", "plugin", "again", "mlflow-down",
                                                                   "raw-down", "plugin-down")}
    say(f"transfers, {label}: raw sweep, then upload rounds")
    bench.empty_storage(restart=True)  # nothing of the previous model either
    # Uploads, each on empty storage; the plugin last in each round, so its upload stays for the rest.
    with bench.timed("raw sweeps"):
        up, up_sweep = _sweep(bench, workers["raw"], "upload", folder, "raw-up", single)
    with bench.timed("upload rounds"):
        for _ in range(repeats):
            bench.empty_storage(restart=single)
            runs["mlflow"].append(workers["mlflow"].go(op="upload", prefix="mlflow-up", **model))
            bench.empty_storage(restart=single)
            runs["raw"].append(workers["raw"].go(op="upload", prefix="raw-up", threads=up[0], chunk=up[1] * MiB,
                                                 **model))
            bench.empty_storage(restart=single)
            runs["plugin"].append(workers["plugin"].go(op="upload", name=up_name, cold_cache=True, **model))
        # Re-registering the same files: another process, the cache the last first registration left.
        for _ in range(repeats):
            runs["again"].append(workers["again"].go(op="upload", name=again_name, **model))
    # Downloads of the last first registration's files (only reads: no resets).
    version = str(repeats)
    prefix = bench.version_prefix(up_name, version)
    say(f"transfers, {label}: raw sweep, then download rounds")
    with bench.timed("raw sweeps"):
        down, down_sweep = _sweep(bench, workers["raw"], "download", folder, prefix, single)
    with bench.timed("download rounds"):
        for _ in range(repeats):
            runs["plugin-down"].append(workers["plugin"].go(op="download", name=up_name, version=version))
            runs["mlflow-down"].append(workers["mlflow"].go(op="download", prefix=prefix))
            runs["raw-down"].append(workers["raw"].go(op="download", prefix=prefix, threads=down[0],
                                                      chunk=down[1] * MiB))
    plugin_s, plugin_rss = _summary(runs["plugin"])
    plugin_down_s, plugin_down_rss = _summary(runs["plugin-down"])
    return [
        {"row": f"register_model, {label}", "plugin_s": plugin_s, "mlflow_s": _summary(runs["mlflow"])[0],
         "raw_s": _summary(runs["raw"])[0], "raw_setting": _raw_label(up, single),
         "peak_rss_mib": plugin_rss, "reregister_s": _summary(runs["again"])[0], "runs": _seconds(runs, ""),
         "cpu": _cpu(runs, ""), "sweep": _sweep_text(up_sweep, single)},
        {"row": f"download_artifacts(models:/), {label}", "plugin_s": plugin_down_s,
         "mlflow_s": _summary(runs["mlflow-down"])[0], "raw_s": _summary(runs["raw-down"])[0],
         "raw_setting": _raw_label(down, single), "peak_rss_mib": plugin_down_rss,
         "runs": _seconds(runs, "-down"), "cpu": _cpu(runs, "-down"), "sweep": _sweep_text(down_sweep, single)},
    ]


def _seconds(runs: dict[str, list[dict[str, Any]]], suffix: str) -> dict[str, list[float]]:
    keys = ("plugin", "mlflow", "raw") + (("again",) if not suffix else ())
    return {key: [round(r["seconds"], 2) for r in runs[key + suffix]] for key in keys}


def _cpu(runs: dict[str, list[dict[str, Any]]], suffix: str) -> dict[str, float]:
    """Median client CPU seconds (all threads) per implementation: the storage emulator shares the 2 cores."""
    keys = ("plugin", "mlflow", "raw")
    return {key: round(statistics.median(r["cpu_s"] for r in runs[key + suffix]), 2) for key in keys}


class TransferRows:
    """The transfer rows' local workspace (blobs on disk, see the module docstring), one process per
    implementation (plus one for re-registering) and the model files.

    Entering starts the workers and writes the model files in the background, so that both can overlap
    work that times nothing (``python -m benchmarks`` runs the round-trip counts meanwhile);
    :meth:`wait_ready` waits for them before the first timed run, :meth:`measure` gives both models' rows.
    """

    def __init__(self, big_bytes: int = 1024 * MiB, small_files: int = 2000, repeats: int = 3) -> None:
        self.big_bytes, self.small_files, self.repeats = big_bytes, small_files, repeats
        self.models: list[tuple[str, Path]] | None = None

    def __enter__(self) -> TransferRows:
        from mlflow_azureml_registry.local import LocalWorkspace

        self._started = time.monotonic()
        self._stack = contextlib.ExitStack()
        try:
            scratch = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-transfers-")))
            workspace = self._stack.enter_context(LocalWorkspace(workdir=str(scratch / "ws"), blob_persistence="disk"))
            self.bench = Bench(workspace, scratch)
            cache = str(scratch / "hash-cache")
            self.workers: dict[str, Worker] = {}
            self._stack.callback(self._stop_workers)
            for key, job in (("raw", {"impl": "raw"}), ("mlflow", {"impl": "mlflow"}),
                             ("plugin", {"impl": "plugin", "hash_cache": cache}),
                             ("again", {"impl": "plugin", "hash_cache": cache})):
                self.workers[key] = Worker(self.bench, job)
            writer = self._stack.enter_context(ThreadPoolExecutor(1))
            self._models = writer.submit(make_models, scratch / "data", self.big_bytes, self.small_files)
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    def _stop_workers(self) -> None:
        for worker in self.workers.values():
            worker.stop()

    def wait_ready(self) -> None:
        """Until the model files are written and every worker has imported and warmed up (once)."""
        if self.models is None:
            self.models = self._models.result()
            for worker in self.workers.values():
                worker.ready()
            self.bench.spent[SET_UP] = time.monotonic() - self._started

    def measure(self) -> tuple[list[dict[str, Any]], dict[str, float]]:
        """Both models' rows, and wall seconds per phase."""
        self.wait_ready()
        rows = []
        for index, (label, folder) in enumerate(self.models):
            rows += measure_model(self.bench, self.workers, folder, label, str(index), self.repeats)
        return rows, self.bench.spent
