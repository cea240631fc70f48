"""A shared ``mlflow server`` in front of Azure ML under load (issue #16).

16 clients call one ``mlflow server --registry-store-uri azureml-registry://...`` at once, each through MLflow's REST
client, for a fixed time, with 50 ms injected per control-plane answer (the local workspace's ``--latency``): a mix
of ``get_model_version``, ``get_model_version_by_alias``, ``search_model_versions`` by name and tag writes. Reported:
throughput, p50 and p99 per call, errors, and whether every tag written is there afterwards. Beside the throughput,
the limit: the server's workers divided by the mix's mean critical path (each call's chain of requests, measured
alone with the same latency, times the latency): what workers that each serve one call at a time could do.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

CLIENTS = 16
LATENCY_MS = 50.0
WORKERS = 4
KINDS = ("get_model_version", "get_model_version_by_alias", "search_model_versions by name", "set_model_version_tag")


def _calls(client: Any, name: str, who: Any, written: list) -> list[Callable[[], Any]]:
    counter = iter(range(10**9))

    def tag() -> None:
        i = next(counter)
        version = str(1 + i % 3)
        key = f"c{who}-{i}"
        client.set_model_version_tag(name, version, key, "x")
        written.append((version, key))

    return [
        lambda: client.get_model_version(name, "2"),
        lambda: client.get_model_version_by_alias(name, "champion"),
        lambda: client.search_model_versions(f"name = '{name}'"),
        tag,
    ]


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))] if ordered else float("nan")


def _load(phase: str, clients: list, name: str, written: list, duration_s: float, timings: dict[str, list[float]],
          errors: list[str], lock: threading.Lock) -> None:
    """Every client calls the mix in turn, each from its own thread, until ``duration_s`` has passed; each call's
    seconds go into ``timings`` by kind, failures into ``errors``."""
    deadline = time.monotonic() + duration_s

    def loop(who: int) -> None:
        calls = _calls(clients[who], name, f"{phase}{who}", written)
        i = who
        while time.monotonic() < deadline:
            kind, call = KINDS[i % len(KINDS)], calls[i % len(KINDS)]
            i += 1
            started = time.perf_counter()
            try:
                call()
            except Exception as exc:  # noqa: BLE001 - counted and reported
                with lock:
                    errors.append(f"{kind}: {type(exc).__name__}: {str(exc)[:200]}")
                continue
            with lock:
                timings[kind].append(time.perf_counter() - started)

    threads = [threading.Thread(target=loop, args=(who,)) for who in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def run(workspace: Any, *, duration_s: float = 20.0, warmup_s: float = 3.0, clients: int = CLIENTS,
        workers: int = WORKERS) -> dict:
    import mlflow

    from mlflow_azureml_registry.local.latency import Latency
    from tests.servers import MlflowServer, plugin_tracebacks

    from .round_trips import longest_chain

    name = f"load-{uuid.uuid4().hex[:8]}"
    root = Path(tempfile.mkdtemp(prefix="bench-server-load-"))
    folder = root / "model"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"w" * 1024)
    setup = mlflow.MlflowClient(registry_uri=workspace.registry_uri())
    setup.create_registered_model(name)
    for _ in range(3):
        setup.create_model_version(name, str(folder))
    setup.set_registered_model_alias(name, "champion", "2")
    with MlflowServer(root / "server", registry_uri=workspace.registry_uri(), workers=workers) as server:
        clients_ = [mlflow.MlflowClient(tracking_uri=server.url, registry_uri=server.url) for _ in range(clients)]
        probe_written: list = []
        for call in _calls(clients_[0], name, -1, probe_written):
            call()  # every worker's store built, credentials and datastore fetched: not part of the measure
        chains = {}
        workspace.set_latency(Latency(LATENCY_MS))
        try:
            for kind, call in zip(KINDS, _calls(clients_[0], name, -2, probe_written)):
                mark = len(workspace.requests)
                call()
                chains[kind] = longest_chain(workspace.requests[mark:])
            timings: dict[str, list[float]] = {kind: [] for kind in KINDS}
            errors: list[str] = []
            written: list = []
            lock = threading.Lock()
            # The same load, unmeasured, first: every server worker has built its store and fetched its token and
            # datastore (a worker starts cold on its first request; one probe call warms only the worker it meets).
            warm_timings: dict[str, list[float]] = {kind: [] for kind in KINDS}
            _load("w", clients_, name, written, warmup_s, warm_timings, errors, lock)
            started = time.monotonic()
            _load("m", clients_, name, written, duration_s, timings, errors, lock)
            elapsed = time.monotonic() - started
        finally:
            workspace.set_latency(None)
        tracebacks = plugin_tracebacks(server.log())
    stored: dict[str, set] = {}
    for version in ("1", "2", "3"):
        stored[version] = set(setup.get_model_version(name, version).tags)
    lost = [(v, k) for v, k in written + probe_written if k not in stored[v]]
    done = sum(len(v) for v in timings.values())
    mean_path_s = statistics.mean(chains[k] for k in KINDS) * LATENCY_MS / 1000
    limit = workers / mean_path_s
    return {
        "clients": clients, "workers": workers, "warmup_s": warmup_s, "latency_ms": LATENCY_MS, "seconds": elapsed,
        "calls": done, "throughput": done / elapsed, "limit": limit, "errors": errors, "lost_tags": lost,
        "tags_written": len(written), "tracebacks": len(tracebacks),
        "per_kind": {
            k: {"count": len(v), "p50_ms": 1000 * _percentile(v, 0.5), "p99_ms": 1000 * _percentile(v, 0.99),
                "chain": chains[k]}
            for k, v in timings.items()
        },
    }


def report(result: dict) -> list[str]:
    r = result
    lines = [
        "## A shared mlflow server under load",
        "",
        f"{r['clients']} clients at once through MLflow's REST client, {r['seconds']:.0f} s, against `mlflow server "
        f"--workers {r['workers']} --registry-store-uri azureml-registry://...` (the local workspace), "
        f"{r['latency_ms']:g} ms injected per control-plane answer, after {r['warmup_s']:g} s of the same load "
        "unmeasured (each server worker starts cold on its first request). The limit is the workers divided by "
        "the mix's mean critical path (each call's chain, measured alone, times the latency).",
        "",
        "| call | calls | p50 ms | p99 ms | chain |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind, k in r["per_kind"].items():
        lines.append(f"| {kind} | {k['count']} | {k['p50_ms']:.0f} | {k['p99_ms']:.0f} | {k['chain']} |")
    lines += [
        "",
        f"Throughput {r['throughput']:.1f} calls/s; limit {r['limit']:.1f} calls/s "
        f"(× {r['throughput'] / r['limit']:.2f}; goal ≥ 0.8). Errors: {len(r['errors'])}"
        + (f" (first: {r['errors'][0]})" if r["errors"] else "")
        + f". Tags written: {r['tags_written']}, lost: {len(r['lost_tags'])}. Server log tracebacks: "
        f"{r['tracebacks']}.",
    ]
    return lines


if __name__ == "__main__":  # pragma: no cover - manual run: python -m benchmarks.server_load
    import os

    import mlflow

    from mlflow_azureml_registry.local import LocalWorkspace

    with LocalWorkspace() as ws:
        os.environ.update(ws.env)
        mlflow.set_tracking_uri(f"sqlite:///{tempfile.mkdtemp()}/bench.db")
        print("\n".join(report(run(ws))))
