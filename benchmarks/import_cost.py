"""What the plugin adds to ``import mlflow``: modules, and -X importtime microseconds of its own modules.

``import mlflow`` imports every artifact-repository entry point eagerly, so the plugin's entry-point
module and its package ``__init__`` are imported by every MLflow user on the machine. Both import
only what MLflow has already imported (``typing``, ``__future__``), so their own import time is what
the plugin adds.
"""

from __future__ import annotations

import subprocess
import sys

PLUGIN_PREFIX = "mlflow_azureml_registry"


def import_mlflow(python: str = sys.executable, runs: int = 3) -> tuple[list[str], float]:
    """Fresh processes that ``import mlflow``: the plugin and ``azure`` modules that import loaded (the same
    in every process), and the median wall milliseconds of the import (context for the figures below)."""
    code = (
        "import sys, time; started = time.perf_counter(); import mlflow; seconds = time.perf_counter() - started; "
        f"print(seconds); print(sorted(m for m in sys.modules if m.startswith(('{PLUGIN_PREFIX}', 'azure'))))"
    )
    samples, modules = [], []
    for _ in range(runs):
        lines = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
        samples.append(float(lines[-2]))
        modules = eval(lines[-1])  # a printed list of strings
    return modules, sorted(samples)[len(samples) // 2] * 1000


def plugin_import_microseconds(python: str = sys.executable, runs: int = 7) -> int:
    """Median over ``runs`` fresh processes of the plugin modules' self import time (-X importtime)."""
    samples = []
    for _ in range(runs):
        err = subprocess.run(
            [python, "-X", "importtime", "-c", f"import typing, __future__; import {PLUGIN_PREFIX}.entrypoints"],
            capture_output=True, text=True, check=True,
        ).stderr
        total = 0
        for line in err.splitlines():
            parts = [p.strip() for p in line.split("|")]
            if len(parts) == 3 and parts[2].startswith(PLUGIN_PREFIX):
                total += int(parts[0].split(":")[1])
        samples.append(total)
    return sorted(samples)[len(samples) // 2]
