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


def plugin_modules_after_import_mlflow(python: str = sys.executable) -> list[str]:
    code = f"import sys, mlflow; print(sorted(m for m in sys.modules if m.startswith(('{PLUGIN_PREFIX}', 'azure'))))"
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout
    return eval(out.strip().splitlines()[-1])  # a printed list of strings


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


def import_mlflow_milliseconds(python: str = sys.executable, runs: int = 3) -> float:
    """Median wall time of ``import mlflow`` in a fresh process (context for the figure above)."""
    code = "import time; t = time.perf_counter(); import mlflow; print(time.perf_counter() - t)"
    samples = [float(subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout)
               for _ in range(runs)]
    return sorted(samples)[len(samples) // 2] * 1000
