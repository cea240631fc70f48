"""Search at scale: 10,000 registered models and one model with 1,000 versions, measured through MlflowClient.

The state is seeded straight into the local workspace's emulator (``workspace.state``), which is what the
store would write, without 11,000 HTTP round trips; everything measured then goes over HTTPS as usual.
Requests are the control-plane requests the emulator logged during the call (its page size applies:
20 per list page by default, as the real service's model lists).
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Callable, Optional

WORKSPACE = "local-ws"
MODELS = 10_000
VERSIONS = 1_000


def _seed(workspace: Any, prefix: str) -> str:
    from mlflow_azureml_registry import mapping

    state = workspace.state
    for i in range(MODELS):
        state.put_model(WORKSPACE, f"{prefix}-{i:05d}", {"tags": {"bench": "scale", "bucket": str(i % 10)}})
    big = f"{prefix}-big"
    state.put_model(WORKSPACE, big, {"tags": {"bench": "scale"}})
    for v in range(1, VERSIONS + 1):
        state.put_version(
            WORKSPACE,
            big,
            str(v),
            {
                "tags": {"parity": str(v % 2)},
                "properties": {mapping.PROP_SOURCE: f"s3://bench/{big}/{v}", mapping.PROP_RUN_ID: f"run{v % 7}"},
                "modelUri": f"azureml://bench/{big}/{v}",
                "modelType": mapping.MODEL_TYPE_CUSTOM,
                "stage": "Production" if v == 10 else "Development",
            },
        )
    return big


LATENCY_MS = 100.0


def _measure(workspace: Any, row: str, call: Callable[[], Any], *, latency_ms: Optional[float] = None) -> dict:
    """Requests and seconds of ``call``; with ``latency_ms`` injected per control-plane answer, also its ``chain``
    (requests each sent after the previous answer) and its wall time in latencies."""
    from mlflow_azureml_registry.local.latency import Latency

    from .round_trips import longest_chain

    mark = len(workspace.requests)
    if latency_ms:
        workspace.set_latency(Latency(latency_ms))
    started = time.perf_counter()
    try:
        call()
    finally:
        seconds = time.perf_counter() - started
        workspace.set_latency(None)
    result = {"row": row, "requests": len(workspace.requests) - mark, "seconds": round(seconds, 3)}
    if latency_ms:
        result["chain"] = longest_chain(workspace.requests[mark:])
        result["latencies"] = round(seconds * 1000 / latency_ms, 1)
    return result


def _iterate(search: Callable[..., Any], **kwargs: Any) -> int:
    count, token = 0, None
    while True:
        page = search(page_token=token, **kwargs)
        count += len(page)
        token = page.token
        if not token:
            return count


def run(workspace: Any, *, with_latency: bool = True) -> list[dict]:
    """The scale rows; ``with_latency`` adds two searches that read every container page, measured with
    :data:`LATENCY_MS` per answer (about 50 s each: 500 pages of 20 one after another)."""
    import mlflow
    from mlflow.store.artifact.utils.models import get_model_name_and_version

    from mlflow_azureml_registry import search

    prefix = f"scale{uuid.uuid4().hex[:6]}"
    big = _seed(workspace, prefix)
    client = mlflow.MlflowClient(registry_uri=workspace.registry_uri(WORKSPACE))
    client.get_registered_model(big)  # warm the HTTP session and the credential outside the measurements
    search.snapshots.clear()
    n = f"{MODELS:,}"
    rows = [
        _measure(workspace, f"search_registered_models: first page of {n} (max_results=100)",
                 lambda: client.search_registered_models(max_results=100)),
        _measure(workspace, f"search_registered_models: all {n} models, 100 per page",
                 lambda: _iterate(client.search_registered_models, max_results=100)),
        _measure(workspace, f"search_registered_models: name LIKE '{prefix}-001%' (10 of {n})",
                 lambda: client.search_registered_models(f"name LIKE '{prefix}-001%'")),
        _measure(workspace, f"search_registered_models: tags.bucket = '3' (1,000 of {n}), all pages",
                 lambda: _iterate(client.search_registered_models, filter_string="tags.bucket = '3'",
                                  max_results=1000)),
        _measure(workspace, "search_registered_models: name = '<one>'",
                 lambda: client.search_registered_models(f"name = '{prefix}-04242'")),
        _measure(workspace, f"search_model_versions: name = '<big>' ({VERSIONS:,} versions), first page of 100",
                 lambda: client.search_model_versions(f"name = '{big}'", max_results=100)),
        _measure(workspace, f"search_model_versions: name = '<big>', all {VERSIONS:,}, 100 per page",
                 lambda: _iterate(client.search_model_versions, filter_string=f"name = '{big}'", max_results=100)),
        _measure(workspace, "search_model_versions: name = '<big>' AND version_number = 500",
                 lambda: client.search_model_versions(f"name = '{big}' AND version_number = 500")),
        _measure(workspace, "search_model_versions: name = '<big>' AND tags.parity = '1' (server-filtered)",
                 lambda: client.search_model_versions(f"name = '{big}' AND tags.parity = '1'")),
        _measure(workspace, f"search_model_versions: name LIKE '{prefix}-big%' (container list + 1 model)",
                 lambda: client.search_model_versions(f"name LIKE '{prefix}-big%'", max_results=100)),
        _measure(workspace, "get_latest_versions('<big>')", lambda: client.get_latest_versions(big)),
        _measure(workspace, "models:/<big>/latest -> version",
                 lambda: get_model_name_and_version(client, f"models:/{big}/latest")),
    ]
    if with_latency:
        at = f"at {LATENCY_MS:g} ms per answer"
        rows += [
            _measure(workspace, f"search_registered_models: name LIKE '{prefix}-001%' (10 of {n}), {at}",
                     lambda: client.search_registered_models(f"name LIKE '{prefix}-001%'"), latency_ms=LATENCY_MS),
            _measure(workspace, f"search_model_versions: name LIKE '{prefix}-000%' (versions of 100 models), {at}",
                     lambda: client.search_model_versions(f"name LIKE '{prefix}-000%'"), latency_ms=LATENCY_MS),
        ]
    return rows


if __name__ == "__main__":  # pragma: no cover - manual run: python -m benchmarks.search_scale
    from mlflow_azureml_registry.local import LocalWorkspace

    with LocalWorkspace() as ws:
        import os

        os.environ.update(ws.env)
        for r in run(ws):
            print(f"| {r['row']} | {r['requests']} | {r['seconds']:.2f} |")
