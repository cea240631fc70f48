"""MLflow's own artifact progress bar for long transfers (shown above MLflow's size threshold, and only
when MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR allows it), fed with bytes from several worker threads."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Callable


@contextmanager
def transfer_progress(description: str, total_bytes: int) -> Iterator[Callable[[int], None]]:
    from mlflow.utils.file_utils import ArtifactProgressBar

    with ArtifactProgressBar.chunks(total_bytes, description, chunk_size=1) as bar:
        pbar = getattr(bar, "pbar", None)
        if pbar is None:
            yield lambda n: None
            return
        lock = threading.Lock()

        def advance(n: int) -> None:
            with lock:
                pbar.update(n)

        yield advance
