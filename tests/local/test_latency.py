"""``--latency MS[:JITTER]``: every control-plane answer leaves that long after its request arrived."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import requests

from mlflow_azureml_registry.local.latency import Latency

from .conftest import Arm
from .test_cli import cli  # noqa: F401, F811 - the fixture that runs the command and stops it


def test_parse_and_draws():
    assert Latency.parse("100").seconds() == 0.1
    jittered = Latency.parse("100:20", seed=1)
    draws = [jittered.seconds() for _ in range(500)]
    assert min(draws) >= 0.08 and max(draws) <= 0.12 and len(set(draws)) > 100
    for bad in ("", "x", "-5", "10:", "1e3"):
        with pytest.raises(ValueError, match="MS or MS:JITTER"):
            Latency.parse(bad)
    with pytest.raises(ValueError, match="jitter"):
        Latency.parse("10:20")  # more jitter than latency


def test_answers_wait_for_the_latency_and_their_effect_is_immediate(ws):
    arm = Arm(ws)
    name = f"lat-{time.monotonic_ns()}"
    ws.set_latency(Latency(150))
    try:
        started = time.perf_counter()
        arm.put(f"models/{name}", {"properties": {"description": "d"}})
        took_put = time.perf_counter() - started
        started = time.perf_counter()
        assert arm.get(f"models/{name}").json()["properties"]["description"] == "d"
        took_get = time.perf_counter() - started
    finally:
        ws.set_latency(None)
    assert took_put >= 0.15 and took_get >= 0.15
    started = time.perf_counter()
    arm.get(f"models/{name}")
    assert time.perf_counter() - started < 0.15  # off again


def test_cli_takes_latency_and_refuses_a_bad_one(cli, tmp_path: Path) -> None:  # noqa: F811
    bad = cli("--port", "0", "--latency", "fast")
    assert bad.process.wait(timeout=30) == 2
    assert "MS or MS:JITTER" in bad.process.stderr.read()
    c = cli("--port", "0", "--latency", "120:10")
    env = c.wait_ready()
    url = (
        f"{env['MLFLOW_AZUREML_RESOURCE_MANAGER_URL']}/subscriptions/00000000-0000-4000-8000-000000000000/"
        "resourceGroups/local-rg/providers/Microsoft.MachineLearningServices/workspaces/local-ws/models"
    )
    session = requests.Session()
    session.trust_env = False
    started = time.perf_counter()
    answer = session.get(url, params={"api-version": "2025-12-01"}, verify=env["REQUESTS_CA_BUNDLE"],
                         headers={"Authorization": f"Bearer {env['MLFLOW_AZUREML_LOCAL_TOKEN']}"}, timeout=10)
    assert answer.status_code == 200 and time.perf_counter() - started >= 0.11
    c.process.send_signal(signal.SIGTERM)
    assert c.process.wait(timeout=15) == 0
