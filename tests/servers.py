"""A real ``mlflow server`` for tests, on loopback, stopped with every process it started.

``mlflow server`` runs gunicorn (MLflow 2) or uvicorn (MLflow 3) workers under its CLI process; stopping
only the CLI process leaves them running. The server therefore starts in a session of its own and is
stopped by process group: SIGTERM to the group, then SIGKILL to whatever of the group is left.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import mlflow
import requests

from mlflow_azureml_registry.local.azurite import free_port

MLFLOW_MAJOR = int(mlflow.__version__.split(".")[0])


class MlflowServer:
    """``mlflow server --backend-store-uri sqlite:///<root>/server.db`` on 127.0.0.1.

    ``registry_uri``: ``--registry-store-uri`` (None: the backend store is the registry, MLflow's SQL
    registry). ``serve_artifacts``: the artifact proxy with ``--artifacts-destination <root>/artifacts``
    (MLflow's default), else ``--no-serve-artifacts`` with ``--default-artifact-root <root>/artifacts``.
    ``workers``: the server's worker processes (default 1).
    The server's environment is this process's (the local workspace's printed variables included);
    its output goes to ``<root>/server.log``.
    """

    def __init__(
        self, root: Path, *, registry_uri: Optional[str] = None, serve_artifacts: bool = True, workers: int = 1
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.registry_uri = registry_uri
        self.serve_artifacts = serve_artifacts
        self.workers = workers
        self.backend_uri = f"sqlite:///{self.root / 'server.db'}"
        self.artifacts = self.root / "artifacts"
        self.log_path = self.root / "server.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: Optional[subprocess.Popen] = None

    def command(self) -> list[str]:
        command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port),
                   "--workers", str(self.workers), "--backend-store-uri", self.backend_uri]
        if self.registry_uri:
            command += ["--registry-store-uri", self.registry_uri]
        if self.serve_artifacts:
            command += ["--artifacts-destination", str(self.artifacts)]
        else:
            command += ["--no-serve-artifacts", "--default-artifact-root", str(self.artifacts)]
        return command

    def start(self, timeout: float = 120.0) -> MlflowServer:
        env = dict(os.environ)
        env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])  # venv's uvicorn
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.command(), cwd=self.root, env=env, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited ({self.process.returncode}):\n{self.log()[-3000:]}")
            try:  # /health builds no store: the first store call stays the test's
                if requests.get(f"{self.url}/health", timeout=1).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"mlflow server did not answer on {self.url}:\n{self.log()[-3000:]}")

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM to the server's process group, SIGKILL to what is left of it after ``timeout``."""
        process, self.process = self.process, None
        if process is None:
            return
        group = process.pid  # start_new_session: the CLI process leads its own group
        _signal_group(group, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout)
        deadline = time.monotonic() + timeout
        while _group_alive(group) and time.monotonic() < deadline:
            time.sleep(0.1)
        _signal_group(group, signal.SIGKILL)
        process.wait(timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> MlflowServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _signal_group(group: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, sig)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def plugin_tracebacks(log: str) -> list[str]:
    """The tracebacks in a server log, each as text (a clean log has none)."""
    blocks, current = [], None
    for line in log.splitlines():
        if line.startswith("Traceback (most recent call last)"):
            current = [line]
            blocks.append(current)
        elif current is not None:
            current.append(line)
            if line and not line.startswith((" ", "\t")) and not line.startswith("Traceback"):
                current = None
    return ["\n".join(block) for block in blocks]
