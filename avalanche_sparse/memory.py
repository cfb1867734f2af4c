"""Keep freed memory in the process instead of handing it back to the kernel.

Why: glibc's ``malloc`` serves every block above ``M_MMAP_THRESHOLD`` (at
most 32 MiB, by default adjusted at run time) with a fresh ``mmap`` and
returns it with ``munmap`` when freed, and it trims the heap once the free
space at its top exceeds ``M_TRIM_THRESHOLD``. A training step that allocates
the same large tensors again and again (the 64 MB gradient of a 16M-weight
dendritic segment layer, the temporaries of a penalty) then pays a page fault
for every 4 KiB page of each new block: on the 2-core VM this project is
measured on, zero-filling a fresh 64 MB tensor took 22 ms against 7 ms for
memory already mapped (``reproduce/cell_cost.py`` and the README give the
cell-level effect). Raising both thresholds keeps freed blocks in the heap,
where the next allocation of the same size reuses pages that are already
mapped. Values are unchanged: only where the bytes live.

The cost is that the process keeps its peak heap size until it exits.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import platform

__all__ = ["M_TRIM_THRESHOLD", "M_MMAP_THRESHOLD", "keep_freed_memory"]

#: ``mallopt`` parameter numbers of glibc (``malloc.h``)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

_applied: dict[int, bool] = {}


def keep_freed_memory(threshold_bytes: int = 2**31 - 1) -> bool:
    """Ask glibc to serve blocks below ``threshold_bytes`` from the heap and to
    keep up to that much free memory at its top (``mallopt(M_MMAP_THRESHOLD)``
    and ``mallopt(M_TRIM_THRESHOLD)``).

    :param threshold_bytes: an int in [1 MiB, 2**31 - 1] (``mallopt`` takes a C ``int``).
    :returns: ``True`` if glibc took both settings, ``False`` where there is no
        glibc (macOS, Windows, musl) or it refused; the process then keeps the
        allocator's defaults, which is always safe.
    """
    if isinstance(threshold_bytes, bool) or not isinstance(threshold_bytes, int) \
            or not 2**20 <= threshold_bytes <= 2**31 - 1:
        raise ValueError(f"threshold_bytes must be an int in [{2**20}, {2**31 - 1}], got {threshold_bytes!r}")
    if threshold_bytes in _applied:
        return _applied[threshold_bytes]
    ok = False
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):
            mallopt = None
        if mallopt is not None:
            mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            mallopt.restype = ctypes.c_int
            ok = bool(mallopt(M_MMAP_THRESHOLD, threshold_bytes)) and bool(mallopt(M_TRIM_THRESHOLD, threshold_bytes))
    _applied[threshold_bytes] = ok
    return ok
