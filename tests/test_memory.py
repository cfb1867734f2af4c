"""keep_freed_memory: freed large blocks stay mapped (glibc), bad arguments."""
from __future__ import annotations

import platform
import subprocess
import sys

import pytest

import avalanche_sparse.memory as memory
from avalanche_sparse.memory import keep_freed_memory

_GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# allocate and touch 96 MB, free it, report the resident-set growth that is left
_PROBE = r"""
import sys
from avalanche_sparse.memory import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096
base = rss()
block = bytearray(96 * 2**20)  # zero-filled: every page touched
del block
print((rss() - base) / 2**20)
"""


def _left_after_free(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not _GLIBC, reason="glibc malloc only")
def test_freed_block_stays_mapped_only_with_keep_freed_memory():
    assert _left_after_free("default") < 16  # glibc unmaps a 96 MB block when it is freed
    assert _left_after_free("keep") > 80     # kept in the heap, ready for the next allocation


@pytest.mark.skipif(not _GLIBC, reason="glibc malloc only")
def test_keep_freed_memory_reports_success_and_what_is_in_effect(monkeypatch):
    monkeypatch.setattr(memory, "_in_effect", None)  # undone after the test
    assert keep_freed_memory() is True
    assert memory.freed_memory_kept() == (2**31 - 1, 2**31 - 1)


class _FakeMallopt:
    """glibc that refuses mmap thresholds above ``cap`` (None: refuses everything)."""

    def __init__(self, cap):
        self.cap, self.calls = cap, []

    def __call__(self, param, value):
        self.calls.append((param, value))
        return int(self.cap is not None and (param != memory.M_MMAP_THRESHOLD or value <= self.cap))


def test_an_older_glibc_gets_the_32_mib_threshold(monkeypatch):
    fake = _FakeMallopt(cap=memory.MMAP_THRESHOLD_CAP)
    monkeypatch.setattr(memory, "_mallopt", lambda: fake)
    monkeypatch.setattr(memory, "_in_effect", None)
    assert keep_freed_memory(2**30) is True
    assert fake.calls == [(memory.M_MMAP_THRESHOLD, 2**30), (memory.M_MMAP_THRESHOLD, 32 * 2**20),
                          (memory.M_TRIM_THRESHOLD, 2**30)]
    assert memory.freed_memory_kept() == (32 * 2**20, 2**30)


def test_refusal_or_no_glibc_leaves_nothing_in_effect(monkeypatch):
    monkeypatch.setattr(memory, "_in_effect", None)
    monkeypatch.setattr(memory, "_mallopt", lambda: _FakeMallopt(cap=None))
    assert keep_freed_memory() is False
    monkeypatch.setattr(memory, "_mallopt", lambda: None)
    assert keep_freed_memory() is False
    assert memory.freed_memory_kept() is None


@pytest.mark.parametrize("bad", [0, 2**20 - 1, 2**31, -5, 1.5, True, "64M"])
def test_keep_freed_memory_rejects_bad_thresholds(bad):
    with pytest.raises(ValueError, match=r"threshold_bytes must be an int in \[1048576, 2147483647\]"):
        keep_freed_memory(bad)
