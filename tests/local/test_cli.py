"""The start contract of ``python -m mlflow_azureml_registry.local`` in a real subprocess."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from mlflow_azureml_registry.local import azurite
from mlflow_azureml_registry.local.workspace import ENV_NAMES


class Cli:
    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mlflow_azureml_registry.local", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.lines: list[str] = []

    def wait_ready(self, timeout: float = 60) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise AssertionError(f"exited early: {self.process.wait()} {self.process.stderr.read()}")
            self.lines.append(line.rstrip("\n"))
            if line.strip() == "ready":
                exports = {}
                for text in self.lines[:-1]:
                    words = shlex.split(text)
                    assert words[0] == "export" and len(words) == 2, text
                    name, _, value = words[1].partition("=")
                    exports[name] = value
                return exports
        raise AssertionError("no 'ready' line")

    def children(self) -> list[int]:
        out = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:
                out.append(int(stat.parent.name))
        return out

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def cli() -> Iterator[type[Cli]]:
    started: list[Cli] = []

    def make(*args: str, env: dict[str, str] | None = None) -> Cli:
        c = Cli(*args, env=env)
        started.append(c)
        return c

    yield make  # type: ignore[misc]
    for c in started:
        c.stop()


def _gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def _port_closed(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_prints_exports_then_ready_and_stops_everything(cli, tmp_path: Path, stop_signal: int) -> None:
    log = tmp_path / "requests.jsonl"
    c = cli("--port", "0", "--request-log", str(log))
    env = c.wait_ready()
    assert tuple(env) == ENV_NAMES and c.lines[-1] == "ready"
    assert env["MLFLOW_REGISTRY_URI"] == (
        "azureml-registry://subscriptions/00000000-0000-4000-8000-000000000000/"
        "resourceGroups/local-rg/workspaces/local-ws"
    )
    assert env["MLFLOW_AZUREML_LOCAL_TOKEN"] not in env["MLFLOW_REGISTRY_URI"]
    assert env["MLFLOW_AZUREML_RESOURCE_MANAGER_URL"].startswith("https://127.0.0.1:")
    assert env["MLFLOW_AZUREML_STORAGE_ACCOUNT_URL"].startswith("https://127.0.0.1:")
    assert env["MLFLOW_AZUREML_STORAGE_ACCOUNT_URL"].endswith("/{account}")
    assert env["REQUESTS_CA_BUNDLE"] == env["SSL_CERT_FILE"]
    assert env["MLFLOW_AZUREML_REGISTRY_DISCOVERY_URL"] == env["MLFLOW_AZUREML_RESOURCE_MANAGER_URL"]
    assert env["MLFLOW_AZUREML_LOCAL_REGISTRY_URI"] == (
        "azureml-registry://subscriptions/00000000-0000-4000-8000-000000000000/"
        "resourceGroups/local-rg/registries/local-registry"
    )
    bundle = Path(env["REQUESTS_CA_BUNDLE"]).read_text()
    assert bundle.count("BEGIN CERTIFICATE") > 50  # the local CA plus certifi's public roots

    base = env["MLFLOW_AZUREML_RESOURCE_MANAGER_URL"]
    url = (
        f"{base}/subscriptions/00000000-0000-4000-8000-000000000000/resourceGroups/local-rg/providers/"
        "Microsoft.MachineLearningServices/workspaces/local-ws/models"
    )
    session = requests.Session()
    session.trust_env = False
    ok = session.get(
        url,
        params={"api-version": "2023-08-01-preview", "listViewType": "All"},
        headers={"Authorization": f"Bearer {env['MLFLOW_AZUREML_LOCAL_TOKEN']}"},
        verify=env["REQUESTS_CA_BUNDLE"],
        timeout=10,
    )
    assert ok.status_code == 200
    denied = session.get(url, params={"api-version": "x"}, verify=env["REQUESTS_CA_BUNDLE"], timeout=10)
    assert denied.status_code == 401
    blob = requests.get(
        env["MLFLOW_AZUREML_STORAGE_ACCOUNT_URL"].format(account="devstoreaccount1"),
        params={"comp": "list"},
        verify=env["REQUESTS_CA_BUNDLE"],
        timeout=10,
    )
    assert blob.status_code in (400, 403)  # Azurite answers over TLS; anonymous listing is refused
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["method"], r["status"]) for r in records] == [("GET", 200), ("GET", 401)]
    assert records[0]["query"] == {"api-version": "2023-08-01-preview", "listViewType": "All"}
    assert records[0]["path"].endswith("/workspaces/local-ws/models")

    children = c.children()
    assert children, "Azurite should be a child of the CLI"
    blob_port = int(env["MLFLOW_AZUREML_STORAGE_ACCOUNT_URL"].split(":")[2].split("/")[0])
    started = time.monotonic()
    c.process.send_signal(stop_signal)
    assert c.process.wait(timeout=15) == 0
    assert all(_gone(pid, 5) for pid in children)
    assert time.monotonic() - started < 10
    assert _port_closed(blob_port) and _port_closed(int(base.rsplit(":", 1)[1]))


def test_azurite_dies_with_a_killed_cli(cli) -> None:
    c = cli("--port", "0")
    c.wait_ready()
    children = c.children()
    assert children
    c.process.kill()  # SIGKILL: no handler runs; the kernel's parent-death signal stops Azurite
    c.process.wait(timeout=10)
    assert all(_gone(pid, 10) for pid in children)


def test_missing_azurite_is_a_clear_error(cli, tmp_path: Path) -> None:
    c = cli("--port", "0", env={azurite.AZURITE_ENV: str(tmp_path / "nope")})
    assert c.process.wait(timeout=60) == 2
    assert "does not exist" in c.process.stderr.read()


def test_find_azurite_points_at_npm_ci(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv(azurite.AZURITE_ENV, raising=False)
    monkeypatch.setattr(azurite, "AZURITE_DIR", tmp_path / "azurite")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(azurite.AzuriteNotFound, match=r"npm ci --prefix .*azurite"):
        azurite.find_azurite()


def test_fault_rate_answers_requests_with_faults(cli, tmp_path: Path) -> None:
    """``--fault-rate 1`` faults every control-plane request (``--sas-ttl`` is accepted beside it; its effect is
    tested through the plugin in tests/integration/test_sas_expiry.py)."""
    log = tmp_path / "requests.jsonl"
    c = cli("--port", "0", "--request-log", str(log), "--fault-rate", "1", "--fault-seed", "3", "--sas-ttl", "5")
    env = c.wait_ready()
    base = env["MLFLOW_AZUREML_RESOURCE_MANAGER_URL"]
    url = (
        f"{base}/subscriptions/00000000-0000-4000-8000-000000000000/resourceGroups/local-rg/providers/"
        "Microsoft.MachineLearningServices/workspaces/local-ws/models"
    )
    session = requests.Session()
    session.trust_env = False
    outcomes = []
    for _ in range(12):
        try:
            answer = session.get(
                url,
                params={"api-version": "2025-12-01"},
                headers={"Authorization": f"Bearer {env['MLFLOW_AZUREML_LOCAL_TOKEN']}"},
                verify=env["REQUESTS_CA_BUNDLE"],
                timeout=10,
            )
            outcomes.append(answer.status_code)
        except requests.ConnectionError:
            outcomes.append("dropped")
    # "lost" handles the request, then drops the answer: the client sees a dropped connection too
    assert set(outcomes) <= {429, 500, 503, "dropped"}
    assert {429, "dropped"} <= set(outcomes) and ({500, 503} & set(outcomes))
    c.process.send_signal(signal.SIGTERM)
    assert c.process.wait(timeout=15) == 0
    assert "Fault injection: 12 faults in 12 requests" in c.process.stderr.read()
