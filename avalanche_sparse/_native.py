"""Build small C++ kernels on first use and load them with :mod:`ctypes`.

Used by the fused complex-synapse optimizer step
(:mod:`avalanche_sparse.optim._fused_cpu`) and by the CPU k-WTA kernel
(:mod:`avalanche_sparse.layers._kwta_cpu`). The kernels include no torch
header: they take raw data pointers, so they compile in about a second with
the system compiler (``$CXX``, else ``g++``/``c++``/``clang++``). A built
library is cached in a per-user folder of the temporary directory, named by a
hash of its source, compiler, flags and machine, and written atomically (a
temporary file renamed into place), so concurrent processes never load a
half-written file. When no compiler exists or a build fails,
:meth:`LazyLibrary.load` returns ``None`` and :meth:`LazyLibrary.error` says
why; callers then use their pure-torch path.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from typing import Callable, Optional, Sequence

__all__ = ["BASE_FLAGS", "compiler", "compile_library", "LazyLibrary"]

#: flags every kernel is built with
BASE_FLAGS: tuple[str, ...] = ("-O3", "-march=native", "-fno-math-errno", "-shared", "-fPIC", "-std=c++17")


def compiler() -> Optional[str]:
    """The C++ compiler to use: ``$CXX`` if set, else the first of ``g++``,
    ``c++``, ``clang++`` on the PATH; ``None`` if there is none."""
    cxx = os.environ.get("CXX")
    if cxx:
        return shutil.which(cxx) or cxx
    for name in ("g++", "c++", "clang++"):
        path = shutil.which(name)
        if path:
            return path
    return None


def compile_library(tag: str, source: str, flags: Sequence[str] = BASE_FLAGS) -> ctypes.CDLL:
    """Compile ``source`` into a shared library (or reuse the cached build)
    and load it.

    :param tag: file-name prefix of the cached library (letters, digits, ``_``).
    :raises RuntimeError: no compiler, or the compiler failed (its stderr tail
        is in the message).
    """
    cxx = compiler()
    if cxx is None:
        raise RuntimeError("no C++ compiler found (set $CXX or install g++)")
    key = hashlib.sha256(
        "\0".join([source, cxx, *flags, platform.machine(), platform.node()]).encode()
    ).hexdigest()[:16]
    cache = os.path.join(tempfile.gettempdir(), f"avalanche_sparse_fused_{os.getuid()}")
    os.makedirs(cache, mode=0o700, exist_ok=True)
    lib_path = os.path.join(cache, f"{tag}_{key}.so")
    if not os.path.exists(lib_path):
        src = os.path.join(cache, f"{tag}_{key}_{os.getpid()}.cpp")
        tmp = lib_path + f".{os.getpid()}.tmp"
        with open(src, "w") as f:
            f.write(source)
        try:
            proc = subprocess.run([cxx, *flags, src, "-o", tmp], capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"{cxx} failed: {proc.stderr.strip()[-2000:]}")
            os.replace(tmp, lib_path)
        finally:
            for path in (src, tmp):
                if os.path.exists(path):
                    os.remove(path)
    return ctypes.CDLL(lib_path)


class LazyLibrary:
    """A kernel library built by ``build()`` on the first :meth:`load`
    (thread-safe, tried once; a failure is remembered, not retried)."""

    def __init__(self, build: Callable[[], ctypes.CDLL]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._lib: Optional[ctypes.CDLL] = None
        self._error: Optional[str] = None
        self._tried = False

    def load(self) -> Optional[ctypes.CDLL]:
        """The library, building it on first call; ``None`` if that failed."""
        if self._tried:
            return self._lib
        with self._lock:
            if not self._tried:
                try:
                    self._lib = self._build()
                except Exception as err:  # any failure -> the caller's torch path
                    self._lib, self._error = None, f"{type(err).__name__}: {err}"
                self._tried = True
        return self._lib

    def error(self) -> Optional[str]:
        """Why :meth:`load` returned ``None`` (``None`` if it did not, or was not called)."""
        return self._error

    def reset(self) -> None:
        """Forget the build (tests)."""
        with self._lock:
            self._lib, self._error, self._tried = None, None, False
