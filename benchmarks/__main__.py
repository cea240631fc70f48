"""``python -m benchmarks``: one table of round trips, import cost and scale, measured side by side in one run.

Starts a fresh local workspace, measures, prints a Markdown report and writes it to
``benchmarks/RESULTS.md`` with the machine and date.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from . import import_cost, round_trips, server_load, transfers
from .transfers import EMPTYING, SET_UP, say

RESULTS = Path(__file__).with_name("RESULTS.md")


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
        cpu = f"{names[0]} ×{len(names)}" if names else cpu
    except OSError:
        pass
    return f"{platform.system()} {platform.release()}, {cpu}, Python {platform.python_version()}"


LATENCY_MS = 100.0


def _round_trip_section(workspace) -> list[str]:
    model_dir = round_trips.sample_model_dir()
    try:
        rows = round_trips.measure(workspace, model_dir, "bench-round-trips", latency_ms=LATENCY_MS)
        registry_rows = round_trips.measure(workspace, model_dir, "bench-round-trips", registry=True,
                                            latency_ms=LATENCY_MS)
    finally:
        round_trips.cleanup(model_dir)
    lines = [
        "## Round trips per MlflowClient call",
        "",
        "Control-plane requests counted by the local workspace, blob requests by the client; the minimum is what",
        "MLflow's own call sequence and the Azure ML REST API allow (`benchmarks/round_trips.py` explains each).",
        f"Measured with {LATENCY_MS:g} ms injected per control-plane answer (`--latency`): *chain* is the longest",
        "run of requests each sent after the previous answer (from the request log), beside the minimum the design",
        "needs; *wall / latency* is what the caller waited, in latencies (blob transfers and the client's own work",
        "included, not delayed).",
        "",
        "| call | control plane | minimum | chain | minimum chain | wall / latency | blob | note |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(f"| {r.call} | {r.control_plane} | {r.minimum_control_plane} | {r.chain} | {r.minimum_chain} "
                     f"| {r.critical_path:.2f} | {r.blob} | {r.why} |")
    lines += [
        "",
        "### On an Azure ML registry",
        "",
        "Writes are long-running operations: each is polled to its end (one poll here; on Azure one more per `202`",
        "the service answers while it works). Blob requests include the local registry creating each pending",
        "upload's container, in this process.",
        "",
        "| call | control plane | minimum | chain | minimum chain | wall / latency | blob | note |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in registry_rows:
        lines.append(f"| {r.call} | {r.control_plane} | {r.minimum_control_plane} | {r.chain} | {r.minimum_chain} "
                     f"| {r.critical_path:.2f} | {r.blob} | {r.why} |")
    return lines


def _import_section() -> list[str]:
    modules, total = import_cost.import_mlflow()
    micros = import_cost.plugin_import_microseconds()
    return [
        "## Import cost",
        "",
        "| measure | value |",
        "|---|---|",
        f"| modules the plugin adds to `import mlflow` | {len(modules)}: {', '.join(modules)} (no `azure.*`) |",
        f"| their `-X importtime` self time (median of 7 fresh processes) | {micros} µs (target ≤ 30,000 µs; "
        "Microsoft's azureml-mlflow adds about 200,000 µs) |",
        f"| `import mlflow` wall time, for scale (median of 3) | {total:.0f} ms |",
    ]


def _scale_section(workspace, *, with_latency: bool = True) -> list[str]:
    try:
        from . import search_scale
    except ImportError:
        return ["## Scale", "", "(search scale rows not available in this build)"]
    rows = search_scale.run(workspace, with_latency=with_latency)
    lines = [
        "## Scale",
        "",
        "Requests counted by the local workspace (20 items per list page, as the real service's model lists). The",
        "rows measured with latency injected give the chain of requests each sent after the previous answer, and",
        "the wall time in latencies: container pages follow one another (each `nextLink` is in the previous page);",
        "the matched models' versions are read together, 8 at a time (`MLFLOW_AZUREML_REQUEST_CONCURRENCY`).",
        "",
        "| row | requests | seconds | chain | wall / latency |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [f"| {r['row']} | {r['requests']} | {r['seconds']:.2f} | {r.get('chain', '')} | {r.get('latencies', '')} |"
              for r in rows]
    return lines


def _transfer_section(transfer_rows: transfers.TransferRows) -> list[str]:
    started = time.monotonic()
    rows, phases = transfer_rows.measure()
    lines = [
        "## Transfers",
        "",
        "End to end, median of 3: `register_model` of a local folder (content hashing and control-plane calls",
        "included) and `download_artifacts(\"models:/...\")` (every file checked against the SHA-256 manifest as it",
        "streams), against MLflow's `AzureBlobArtifactRepository` (`log_artifacts` / `download_artifacts`, the",
        "client MLflow builds) and raw azure-storage-blob at its best setting. Ratios above 1 mean the plugin is",
        "faster (targets: ≥ 1.3× MLflow, ≥ 0.8× raw, re-registering ≥ 10× faster, peak RSS ≤ 256 MiB).",
        "",
        "Method (`benchmarks/transfers.py`): one local workspace, HTTPS Azurite keeping blobs on disk. In memory,",
        "Azurite does all of a request's work on one thread, so concurrent requests overlap nothing and sequential",
        "clients look nearly as fast as parallel ones, which a storage account does not do; disk mode's off-thread",
        "I/O is the closer stand-in. Every upload run starts on empty storage (Azurite slows down as it fills):",
        "Azurite restarted with its data deleted for the large model, the container deleted and made again for",
        "the many-file one. Downloads read the plugin's last upload. One fresh process per implementation (plus",
        "one for re-registering) for both models; all import first, then runs go in rounds (one run of each per",
        "round), so drift in the machine's load hits all of them alike. Raw azure-storage-blob: one sweep pass",
        "over threads {1, 4, 8, 16} × chunks {4, 32} MiB (threads only for small files) on a share of the model",
        "(¼ of the large file's upload, all of its download, ⅛ of the files; most threads first, storage",
        "emptied before each upload setting, Azurite restarted before the first; a setting still running when",
        "the fastest so far had finished is stopped there, as it cannot win) picks the setting, which is then",
        "measured 3 times on the whole model in the rounds. The plugin's first registrations start with an",
        "empty content-hash cache;",
        "re-registering runs in another process with the cache the last one left. Peak RSS: the plugin",
        "process's high-water mark during a run minus its RSS before it, the largest of the 3 runs.",
        "",
        "| row | plugin s | MLflow repo s | raw best s (setting) | × MLflow | × raw | plugin peak RSS growth | "
        "re-register s (× faster) |",
        "|---|---:|---:|---|---:|---:|---:|---|",
    ]
    for r in rows:
        again = ""
        if "reregister_s" in r:
            again = f"{r['reregister_s']:.2f} ({r['plugin_s'] / r['reregister_s']:.0f}×)"
        lines.append(
            f"| {r['row']} | {r['plugin_s']:.2f} | {r['mlflow_s']:.2f} | {r['raw_s']:.2f} ({r['raw_setting']}) | "
            f"{r['mlflow_s'] / r['plugin_s']:.2f} | {r['raw_s'] / r['plugin_s']:.2f} | {r['peak_rss_mib']:.0f} MiB | "
            f"{again} |"
        )
    lines += ["", "Every run, in seconds (rounds in order):", ""]
    for r in rows:
        runs = "; ".join(f"{key} {', '.join(f'{x:.2f}' for x in values)}" for key, values in r["runs"].items())
        cpu = ", ".join(f"{key} {value:.2f}" for key, value in r["cpu"].items())
        lines.append(f"- {r['row']}: {runs}. Client CPU s (median): {cpu}. Raw sweep on a share, in order "
                     f"(> stopped, slower than the fastest so far): {r['sweep']}")
    phases = dict(phases)
    set_up, emptying = phases.pop(SET_UP), phases.pop(EMPTYING, 0.0)
    lines += ["", f"Transfer rows: {time.monotonic() - started:.0f} s: "
              + ", ".join(f"{phase} {seconds:.0f} s" for phase, seconds in phases.items())
              + f" (emptying storage before uploads, within those: {emptying:.0f} s). Their set-up (workspace,"
              f" workers, model files) took {set_up:.0f} s, beside the round trips."]
    return lines


@contextlib.contextmanager
def _section(spent: dict[str, float], name: str) -> Iterator[None]:
    """Time one section into ``spent``, saying on stderr when it starts and ends (the report comes last)."""
    say(f"{name}...")
    started = time.monotonic()
    yield
    spent[name] = time.monotonic() - started
    say(f"{name}: {spent[name]:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--skip-scale", action="store_true", help="skip the 10,000-model scale rows")
    parser.add_argument("--skip-server-load", action="store_true", help="skip the shared-server load rows")
    parser.add_argument("--skip-transfers", action="store_true", help="skip the transfer rows")
    parser.add_argument("--big-mib", type=int, default=1024, help="size of the single-file model (MiB)")
    parser.add_argument("--small-files", type=int, default=2000, help="files in the many-file model")
    parser.add_argument("--quick", action="store_true",
                        help="256 MiB and 500 files instead of 1 GiB and 2,000")
    args = parser.parse_args(argv)
    if args.quick:
        args.big_mib, args.small_files = 256, 500
    started = time.monotonic()
    load_before = os.getloadavg()[0]

    import logging
    import shutil
    import warnings

    import mlflow

    from mlflow_azureml_registry import session
    from mlflow_azureml_registry.local import LocalWorkspace

    warnings.simplefilter("ignore")
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # its INFO lines would bury the progress lines
    # The round trips register models too: keep their content hashes out of the user's cache.
    hash_cache = tempfile.mkdtemp(prefix="bench-hash-cache-")
    os.environ["MLFLOW_AZUREML_HASH_CACHE_DIR"] = hash_cache
    report = [
        "# Benchmark results",
        "",
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC · {_machine()} · mlflow {mlflow.__version__} · "
        "local workspace (emulated control plane over HTTPS + Azurite)",
        "",
    ]
    spent: dict[str, float] = {}
    with contextlib.ExitStack() as stack:
        transfer_rows = None
        if not args.skip_transfers:
            # Started first: its workers import and its model files are written while the round trips, which
            # time nothing, are counted. Nothing timed runs before they are done.
            say("transfers: starting their workspace and workers, writing the model files (in the background)")
            transfer_rows = stack.enter_context(
                transfers.TransferRows(big_bytes=args.big_mib * transfers.MiB, small_files=args.small_files))
        with tempfile.TemporaryDirectory() as tracking, LocalWorkspace() as workspace:
            os.environ.update(workspace.env)
            session.reset()
            mlflow.set_tracking_uri(f"sqlite:///{tracking}/mlflow.db")
            mlflow.set_registry_uri(workspace.registry_uri())
            with _section(spent, "round trips"):
                report += _round_trip_section(workspace) + [""]
            if transfer_rows is not None:
                with _section(spent, "then waiting for the transfer set-up"):
                    transfer_rows.wait_ready()
            with _section(spent, "import cost"):
                report += _import_section() + [""]
            if not args.skip_server_load:
                with _section(spent, "server under load"):
                    result = server_load.run(workspace, duration_s=8.0 if args.quick else 30.0)
                    report += server_load.report(result) + [""]
            if not args.skip_scale:
                with _section(spent, "scale"):
                    report += _scale_section(workspace, with_latency=not args.quick) + [""]
        if transfer_rows is not None:
            with _section(spent, "transfers"):
                report += _transfer_section(transfer_rows) + [""]
    report.append("Time per section: " + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in spent.items()) + ".")
    report.append("")
    shutil.rmtree(hash_cache, ignore_errors=True)
    # Other work on the machine shows in every absolute time (the side-by-side ratios suffer less): say how much.
    report.append(f"Total benchmark time: {time.monotonic() - started:.0f} s (from the start of the command); "
                  f"1-minute load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end "
                  f"({os.cpu_count()} CPUs).")
    text = "\n".join(report) + "\n"
    print(text)
    RESULTS.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
