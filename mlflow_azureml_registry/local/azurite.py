"""Find, start and stop Azurite (the Azure Storage emulator) for the local workspace's blobs.

Azurite is pinned by ``azurite/package.json`` + ``package-lock.json`` next to this file and installed
with ``npm ci --prefix <that folder>``. It runs over HTTPS (the Azure ML SDK only builds https blob
URLs), with ``--oauth basic`` so identity-based datastores work with the workspace's bearer token,
and ``--skipApiVersionCheck`` because azure-storage-blob sends a newer x-ms-version than it knows.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Callable, Optional

AZURITE_ENV = "MLFLOW_AZUREML_AZURITE"
AZURITE_DIR = Path(__file__).resolve().parent / "azurite"
_PR_SET_PDEATHSIG = 1


class AzuriteNotFound(RuntimeError):
    pass


def find_azurite() -> str:
    """``$MLFLOW_AZUREML_AZURITE``, else the pinned copy beside this package, else ``azurite-blob``."""
    configured = os.environ.get(AZURITE_ENV)
    if configured:
        if not Path(configured).exists():
            raise AzuriteNotFound(f"{AZURITE_ENV}={configured} does not exist.")
        return configured
    pinned = AZURITE_DIR / "node_modules" / ".bin" / "azurite-blob"
    if pinned.exists():
        return str(pinned)
    on_path = shutil.which("azurite-blob")
    if on_path:
        return on_path
    raise AzuriteNotFound(
        f"Azurite is not installed. Run: npm ci --prefix {AZURITE_DIR}  (needs Node.js >= 18), "
        f"or set {AZURITE_ENV} to an azurite-blob executable."
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent_hook() -> Optional[Callable[[], None]]:
    """Linux: a ``preexec_fn`` that makes the kernel SIGTERM Azurite when its parent dies, even by SIGKILL.

    Strictly the death of the parent *thread* that forked it: start Azurite from a long-lived thread.
    libc is loaded here, in the parent, so the child only makes one system call before ``exec``.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def hook() -> None:  # pragma: no cover - runs in the child between fork and exec
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return hook


class Azurite:
    """One ``azurite-blob`` child process on 127.0.0.1:``port`` (0 picks a free port)."""

    def __init__(
        self,
        *,
        port: int,
        cert: Path,
        key: Path,
        accounts: dict[str, str],
        workdir: Path,
        in_memory: bool = True,
        executable: Optional[str] = None,
    ) -> None:
        self.port = port
        self.cert, self.key, self.accounts, self.workdir = cert, key, accounts, workdir
        self.in_memory = in_memory
        self.executable = executable or find_azurite()
        self.process: Optional[subprocess.Popen[bytes]] = None
        self._log: Optional[IO[bytes]] = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "azurite.log"

    def command(self) -> list[str]:
        cmd = [
            self.executable,
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(self.port),
            "--cert",
            str(self.cert),
            "--key",
            str(self.key),
            "--oauth",
            "basic",
            "--skipApiVersionCheck",
            "--loose",
            "--disableTelemetry",
            "--silent",
        ]
        if self.in_memory:
            return [*cmd, "--inMemoryPersistence"]
        return [*cmd, "--location", str(self.workdir / "data")]

    def start(self, timeout: float = 30.0) -> None:
        """Start and wait until the port accepts connections; retries a port race when port was 0."""
        pick = self.port == 0
        for _attempt in range(3):
            if pick:
                self.port = free_port()
            self._spawn()
            if self._wait_listening(timeout):
                return
            self.stop()
            if not pick:
                break
        tail = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
        raise RuntimeError(f"Azurite did not start on 127.0.0.1:{self.port}.\n{tail}")

    def _spawn(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env["AZURITE_ACCOUNTS"] = ";".join(f"{name}:{key}" for name, key in self.accounts.items())
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command(),
            cwd=self.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent_hook(),
        )

    def _wait_listening(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.05)
        return False

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        if self._log is not None:
            self._log.close()
            self._log = None
