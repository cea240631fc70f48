"""Processes that tests start: each leads its own process group, and whatever is left of the group is killed when
the test is done with it, so nothing it started (a local workspace's Azurite, an ``mlflow server``) outlives it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator, Sequence
from typing import Any


@contextlib.contextmanager
def group(args: Sequence[str], **kwargs: Any) -> Iterator[subprocess.Popen]:
    """``subprocess.Popen(args, **kwargs)`` in a new session (its own process group); on leaving, SIGKILL to the
    whole group (the process and anything it started that is still running), then the process is reaped."""
    process = subprocess.Popen(args, start_new_session=True, **kwargs)
    try:
        yield process
    finally:
        kill_group(process)


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL to ``process``'s group (it leads one: :func:`group`), reap it and close its pipes."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(10)
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            stream.close()


def run(args: Sequence[str], *, timeout: float, check: bool = False, capture_output: bool = False,
        **kwargs: Any) -> subprocess.CompletedProcess:
    """``subprocess.run`` in its own process group (:func:`group`): on a timeout, or once it exits, nothing it
    started is left running. Raises ``subprocess.TimeoutExpired`` after ``timeout`` seconds, and
    ``CalledProcessError`` for a non-zero exit when ``check``."""
    if capture_output:
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
    with group(args, **kwargs) as process:
        stdout, stderr = process.communicate(timeout=timeout)
    done = subprocess.CompletedProcess(list(args), process.returncode, stdout, stderr)
    if check:
        done.check_returncode()
    return done
