"""Threads whose first registry call comes at the same time (issue #15).

MLflow builds its registry-store registry on first use without a lock and publishes it before it registers the
entry-point schemes, so 7 of 8 threads starting together failed with "Model registry functionality is unavailable;
got unsupported URI 'azureml-registry://...'" (MLflow 2.16 and 3.17 alike). The plugin's entry-point module, which
``import mlflow`` loads, makes that first build wait for itself. Each run is a fresh process: only the first call
of a process can race.
"""

from __future__ import annotations

import json
import sys

import pytest

from tests import processes

SCRIPT = """
import json, threading
import mlflow
from mlflow.tracking._model_registry.utils import _get_store
uri = "azureml-registry://subscriptions/0000/resourceGroups/rg/workspaces/ws"
threads, barrier, errors = 8, threading.Barrier(8), []
def first_call():
    barrier.wait()
    try:
        _get_store(uri)  # builds the store: no request is sent
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}"[:200])
pool = [threading.Thread(target=first_call) for _ in range(threads)]
[t.start() for t in pool]
[t.join() for t in pool]
print(json.dumps(errors))
"""


@pytest.mark.parametrize("run", range(3))
def test_eight_threads_first_registry_call_at_once(run):
    out = processes.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_mlflows_builder_is_wrapped_once_and_still_mlflows():
    code = (
        "import mlflow, mlflow.tracking._model_registry.utils as u\n"
        "from mlflow_azureml_registry import entrypoints\n"
        "entrypoints._install()\n"  # a second install changes nothing
        "f = u._get_store_registry\n"
        "print(f.__wrapped_by_azureml_registry__, f.__wrapped__.__module__, f() is f(), "
        "'azureml-registry' in f()._registry)\n"
    )
    out = processes.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["True", "mlflow.tracking._model_registry.utils", "True", "True"]
