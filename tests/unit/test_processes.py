"""The tests' own process starter leaves nothing running: a grandchild that outlives its parent is killed too."""

import subprocess
import sys
import time

import pytest

from tests import processes

ORPHAN = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # not holding our pipes
print(child.pid, flush=True)
""" + "{tail}"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("ending", ["exits", "times out"])
def test_nothing_a_process_started_outlives_it(ending):
    tail = "" if ending == "exits" else "import time; time.sleep(600)"
    command = [sys.executable, "-c", ORPHAN.format(tail=tail)]
    if ending == "exits":
        done = processes.run(command, capture_output=True, text=True, timeout=60, check=True)
        grandchild = int(done.stdout.split()[0])
    else:
        with pytest.raises(subprocess.TimeoutExpired) as expired:
            processes.run(command, capture_output=True, text=True, timeout=3)
        grandchild = int(expired.value.stdout.split()[0]) if expired.value.stdout else None
        assert grandchild is not None, "the script printed its child's pid before the timeout"
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild), f"pid {grandchild} was left running"
