"""Atomic file writes: a reader sees the old file or the new one, never half."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_write_json", "OutputDirError"]


class OutputDirError(OSError):
    """The output location cannot be written (read-only, full, missing...)."""


def _default_mode() -> int:
    """``0o666`` minus the process umask: the mode ``open()`` would give a new
    file (``mkstemp`` makes its files 0600, unreadable to other users of a
    shared results folder)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temp file in the same folder and
    ``os.replace``; the temp file is removed on any failure.

    :raises OutputDirError: naming the path, when the folder is not writable
        or the disk is full.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise OutputDirError(f"cannot write {path}: {err.strerror or err}") from err
    try:
        os.fchmod(fd, _default_mode())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(err, OSError):
            raise OutputDirError(f"cannot write {path}: {err.strerror or err}") from err
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """:func:`atomic_write_bytes` for JSON (indented, keys sorted)."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")
