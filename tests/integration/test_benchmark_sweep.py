"""The benchmark's raw azure-storage-blob sweep (benchmarks/transfers.py), which picks raw's best setting.

A setting still running when the fastest so far had finished is stopped: these tests show that a real
worker stops at its limit on the local workspace's Azurite, and that the pass still picks the fastest
setting that finished.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from benchmarks.transfers import Bench, MiB, Worker, _sweep


def test_a_raw_run_past_its_limit_stops_and_one_without_a_limit_finishes(workspace, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    for i in range(300):
        (folder / f"part-{i:03d}.bin").write_bytes(os.urandom(1024))
    bench = Bench(workspace, tmp_path)
    raw = Worker(bench, {"impl": "raw"})
    try:
        raw.ready()
        whole = raw.go(op="upload", folder=str(folder), prefix="sweep-whole", threads=1, chunk=4 * MiB)
        limit = whole["seconds"] / 10
        cut = raw.go(op="upload", folder=str(folder), prefix="sweep-cut", threads=1, chunk=4 * MiB, limit=limit)
        down = raw.go(op="download", prefix="sweep-whole", threads=1, chunk=4 * MiB, limit=limit)
        down_whole = raw.go(op="download", prefix="sweep-whole", threads=4, chunk=4 * MiB)
    finally:
        raw.stop()
    container = workspace.blob_service(bench.account).get_container_client(bench.container)
    assert not whole["stopped"] and not down_whole["stopped"]
    assert len(list(container.list_blobs(name_starts_with="sweep-whole/"))) == 300
    assert cut["stopped"] and down["stopped"]
    assert len(list(container.list_blobs(name_starts_with="sweep-cut/"))) < 300


class ScriptedRaw:
    """Stands in for the raw worker: each setting takes the scripted seconds, stopped at the limit it is given."""

    def __init__(self, seconds: dict[tuple[int, int], float]) -> None:
        self.seconds, self.limits = seconds, []

    def go(self, **params: Any) -> dict[str, Any]:
        limit, took = params["limit"], self.seconds[(params["threads"], params["chunk"] // MiB)]
        self.limits.append(limit)
        stopped = limit is not None and took > limit
        return {"seconds": limit if stopped else took, "stopped": stopped}


def test_the_pass_picks_the_fastest_finished_setting_and_limits_each_by_the_fastest_so_far() -> None:
    seconds = {(16, 32): 3.0, (16, 4): 2.5, (8, 32): 2.8, (8, 4): 2.0, (4, 32): 2.2, (4, 4): 4.0,
               (1, 32): 6.0, (1, 4): 7.0}
    raw = ScriptedRaw(seconds)
    best, passes = _sweep(None, raw, "download", Path("unused"), "prefix", single_file=True)
    assert best == (8, 4)
    assert raw.limits == [None, 3.0, 2.5, 2.5, 2.0, 2.0, 2.0, 2.0]
    assert [(setting, stopped) for setting, _, stopped in passes] == [
        ((16, 32), False), ((16, 4), False), ((8, 32), True), ((8, 4), False), ((4, 32), True), ((4, 4), True),
        ((1, 32), True), ((1, 4), True)]
