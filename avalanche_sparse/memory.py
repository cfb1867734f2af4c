"""Keep freed memory in the process instead of handing it back to the kernel.

Why: glibc's ``malloc`` serves every block above ``M_MMAP_THRESHOLD`` (at
most 32 MiB, by default adjusted at run time) with a fresh ``mmap`` and
returns it with ``munmap`` when freed, and it trims the heap once the free
space at its top exceeds ``M_TRIM_THRESHOLD``. A training step that allocates
the same large tensors again and again (the 64 MB gradient of a 16M-weight
dendritic segment layer, the temporaries of a penalty) then pays a page fault
for every 4 KiB page of each new block. On the 2-core VM this project is
measured on, a paper-size ``DendriticMLP`` training step took 0.152 s with
freed memory kept and 0.179 s without (1 thread; ``python reproduce/speed.py
--section dendrites [--keep-freed-memory]``, results and commands in
``reproduce/results/speed_dendrites_1thread*.json``). Raising both
thresholds keeps freed blocks in the heap, where the next allocation of the
same size reuses pages that are already mapped. Values are unchanged: only
where the bytes live.

The cost is that the process keeps its peak heap size until it exits.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import platform

__all__ = ["M_TRIM_THRESHOLD", "M_MMAP_THRESHOLD", "MMAP_THRESHOLD_CAP", "keep_freed_memory",
           "freed_memory_kept"]

#: ``mallopt`` parameter numbers of glibc (``malloc.h``)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: the largest ``M_MMAP_THRESHOLD`` older glibc accepts on 64-bit (``HEAP_MAX_SIZE / 2``)
MMAP_THRESHOLD_CAP = 32 * 2**20

#: the settings in effect in this process: ``(mmap threshold, trim threshold)``, or None
_in_effect: "tuple[int, int] | None" = None


def _mallopt():
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        fn = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


def keep_freed_memory(threshold_bytes: int = 2**31 - 1) -> bool:
    """Ask glibc to serve blocks below ``threshold_bytes`` from the heap and to
    keep up to that much free memory at its top (``mallopt(M_MMAP_THRESHOLD)``
    and ``mallopt(M_TRIM_THRESHOLD)``). Where glibc refuses a threshold above
    32 MiB (older releases cap it at ``HEAP_MAX_SIZE / 2``), 32 MiB is used.

    :param threshold_bytes: an int in [1 MiB, 2**31 - 1] (``mallopt`` takes a C ``int``).
    :returns: ``True`` if glibc took both settings, ``False`` where there is no
        glibc (macOS, Windows, musl) or it refused; the process then keeps the
        allocator's defaults, which is always safe. The settings stay for the
        life of the process (:func:`freed_memory_kept`).
    """
    global _in_effect
    if isinstance(threshold_bytes, bool) or not isinstance(threshold_bytes, int) \
            or not 2**20 <= threshold_bytes <= 2**31 - 1:
        raise ValueError(f"threshold_bytes must be an int in [{2**20}, {2**31 - 1}], got {threshold_bytes!r}")
    mallopt = _mallopt()
    if mallopt is None:
        return False
    mmap = threshold_bytes
    if not mallopt(M_MMAP_THRESHOLD, mmap):
        mmap = min(threshold_bytes, MMAP_THRESHOLD_CAP)
        if not mallopt(M_MMAP_THRESHOLD, mmap):
            return False
    if not mallopt(M_TRIM_THRESHOLD, threshold_bytes):
        return False
    _in_effect = (mmap, threshold_bytes)
    return True


def freed_memory_kept() -> "tuple[int, int] | None":
    """``(mmap threshold, trim threshold)`` that :func:`keep_freed_memory` set
    in this process, or ``None`` if it never succeeded here."""
    return _in_effect
