"""Progress bars as MLflow's own artifact repositories show them, made by MLflow's ``ArtifactProgressBar``.

MLflow (``store/artifact/artifact_repo.py``, ``cloud_artifact_repo.py``, ``http_artifact_repo.py``, 2.16 to 3.x)
shows, when ``MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR`` allows it (default on):
- a file-count bar for every multi-file transfer, "Downloading artifacts" / "Uploading artifacts", advanced by one as
  each file completes, whatever the files' sizes (a 7-file model: "Downloading artifacts: 100% 7/7");
- a byte bar for each file of at least MLflow's display threshold (500,000,000 bytes), "Downloading <path>" /
  "Uploading <path>", beside the file-count bar.

:class:`TransferProgress` gives the gateway (``azure/blobs.py``) both, through two thread-safe calls: ``file_done()``
and ``large_file(name, size)`` (a context yielding ``advance(n_bytes)``). Worker threads call them concurrently.

:func:`quiet` turns both off for the transfers its thread starts meanwhile: a prompt version's two small files
(``prompts.py``). MLflow's own registry stores a prompt as tags: no transfer, no bar.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Callable, Optional

_quiet: contextvars.ContextVar[bool] = contextvars.ContextVar("mlflow_azureml_registry_quiet", default=False)


@contextmanager
def quiet() -> Iterator[None]:
    """No bar for a transfer started inside this block, on this thread (a context variable: other threads, and a
    model registration beside it, keep theirs). The transfer's own worker threads follow the transfer's choice."""
    token = _quiet.set(True)
    try:
        yield
    finally:
        _quiet.reset(token)


class TransferProgress(AbstractContextManager):
    """The file-count bar of one transfer of ``total_files`` files; ``verb`` is "Downloading" or "Uploading".

    Shown only when MLflow's progress setting is on (MLflow decides, in ``ArtifactProgressBar.set_pbar``) and the
    transfer does not start inside :func:`quiet`; otherwise every call is a no-op. Use as a context manager: the bar
    closes on exit.
    """

    def __init__(self, verb: str, total_files: int) -> None:
        self.verb = verb
        self.total_files = total_files
        self._bar: Any = None
        self._lock = threading.Lock()
        self._quiet = _quiet.get()

    def __enter__(self) -> TransferProgress:
        if self._quiet:
            return self
        from mlflow.utils.file_utils import ArtifactProgressBar

        self._bar = ArtifactProgressBar.files(desc=f"{self.verb} artifacts", total=self.total_files)
        self._bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        bar, self._bar = self._bar, None
        if bar is not None:
            bar.__exit__(*exc)

    def file_done(self) -> None:
        """One file of the transfer is complete (thread-safe)."""
        bar = self._bar
        if bar is not None and bar.pbar is not None:
            with self._lock:
                bar.update()

    @contextmanager
    def large_file(self, name: str, size: int) -> Iterator[Callable[[int], None]]:
        """A byte bar for one file of ``size`` bytes, shown when MLflow would (``size`` ≥ its 500 MB threshold);
        yields ``advance(n_bytes)``, safe to call from several threads."""
        if self._quiet:
            yield lambda n: None
            return
        with _byte_bar(f"{self.verb} {name}", size) as advance:
            yield advance


@contextmanager
def _byte_bar(description: str, total_bytes: int) -> Iterator[Callable[[int], None]]:
    from mlflow.utils.file_utils import ArtifactProgressBar

    with ArtifactProgressBar.chunks(total_bytes, description, chunk_size=1) as bar:
        pbar: Optional[Any] = getattr(bar, "pbar", None)
        if pbar is None:
            yield lambda n: None
            return
        lock = threading.Lock()

        def advance(n: int) -> None:
            with lock:
                pbar.update(n)

        yield advance
