"""Control-plane requests that do not need each other's answers go out together.

On Azure one request takes roughly 50-300 ms, so what a user waits for is the number of requests that must happen
one after another (issue #16). Reads that do not depend on each other (a version and its model's container; a
model's container and its versions) are sent at once through one bounded pool per process, shared by the store
and the artifact repository. Only leaf calls run in the pool; a call already running in it runs what it is given
in turn (a pool that waits on itself could deadlock).
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Optional

from . import settings

_lock = threading.Lock()
_pool: Optional[ThreadPoolExecutor] = None
_inside = threading.local()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=settings.request_concurrency(), thread_name_prefix="azureml-requests"
            )
        return _pool


def _marked(call: Callable[[], Any]) -> Any:
    _inside.active = True
    try:
        return call()
    finally:
        _inside.active = False


def outcomes(*calls: Callable[[], Any]) -> list[tuple[Any, Optional[BaseException]]]:
    """Run ``calls`` at once (the first on this thread, the others in the process's request pool) and return each
    one's ``(result, None)`` or ``(None, exception)``, in order, once all have finished."""
    if len(calls) <= 1 or getattr(_inside, "active", False):
        return [_outcome(call) for call in calls]
    futures: list[Future] = [_executor().submit(_marked, call) for call in calls[1:]]
    results = [_outcome(calls[0])]
    for future in futures:
        try:
            results.append((future.result(), None))
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller, who raises it
            results.append((None, exc))
    return results


def together(*calls: Callable[[], Any]) -> list[Any]:
    """The results of ``calls``, run at once (:func:`outcomes`); if any raised, the first in order is raised, after
    all have finished. For reads: a read whose answer is not used costs a request, and changes nothing."""
    results = outcomes(*calls)
    for _, error in results:
        if error is not None:
            raise error
    return [result for result, _ in results]


def _outcome(call: Callable[[], Any]) -> tuple[Any, Optional[BaseException]]:
    try:
        return call(), None
    except BaseException as exc:  # noqa: BLE001 - handed back to the caller, who raises it
        return None, exc
