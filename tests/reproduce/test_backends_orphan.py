"""A pool worker ends itself when table1.py (its parent) is killed."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reproduce.backends import exit_when_orphaned

ROOT = Path(__file__).resolve().parents[2]

# the parent forks a "worker" that watches it and then sleeps for a minute;
# the parent prints the worker's pid and dies at once (like a killed table1.py)
_SCRIPT = r"""
import os, sys, time
sys.path.insert(0, sys.argv[1])
from reproduce.backends import exit_when_orphaned
parent = os.getpid()
pid = os.fork()
if pid == 0:
    null = os.open(os.devnull, os.O_WRONLY)  # let the test's pipe close with the parent
    os.dup2(null, 1)
    os.dup2(null, 2)
    if sys.argv[2] == "watch":
        exit_when_orphaned(parent, poll_s=0.05)
    time.sleep(60)
    os._exit(0)
print(pid, flush=True)
os._exit(0)
"""


def _alive(pid: int) -> bool:
    """Running (a zombie, exited but not yet reaped by its new parent, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _orphan(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", _SCRIPT, str(ROOT), mode], capture_output=True,
                         text=True, check=True, timeout=60)
    return int(out.stdout.split()[0])


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.skipif(not hasattr(os, "fork") or not os.path.isdir("/proc/self"), reason="needs fork and /proc")
def test_orphaned_worker_exits_and_unwatched_one_lives_on():
    watched = _orphan("watch")
    assert _gone_within(watched, 10), "the watched worker outlived its parent"
    unwatched = _orphan("none")
    try:
        assert _alive(unwatched) and not _gone_within(unwatched, 1.0)
    finally:
        os.kill(unwatched, 9)


@pytest.mark.parametrize("bad", [0, -1.0])
def test_poll_must_be_positive(bad):
    with pytest.raises(ValueError, match="poll_s must be > 0"):
        exit_when_orphaned(os.getppid(), bad)


@pytest.mark.parametrize("bad", [0, -3, 1.5, True, "1"])
def test_parent_pid_must_be_a_pid(bad):
    with pytest.raises(ValueError, match="parent_pid must be a process id"):
        exit_when_orphaned(bad)


_DEAD_PARENT = r"""
import os, sys
sys.path.insert(0, sys.argv[1])
from reproduce.backends import exit_when_orphaned
exit_when_orphaned(os.getppid() + 1 if os.getppid() != 1 else 2, poll_s=60)
print("still running", flush=True)
"""


def test_a_parent_already_gone_ends_the_worker_at_once():
    # the pid it was told is not its parent: the parent died before the worker started
    out = subprocess.run([sys.executable, "-c", _DEAD_PARENT, str(ROOT)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 1 and "still running" not in out.stdout
