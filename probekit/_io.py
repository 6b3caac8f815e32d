"""Writing files so that a failure never leaves a half-written or clobbered one.

Every result file probekit writes goes through :func:`atomic_path`: the content is written
to a temporary name in the same directory and renamed over the target only once it is
complete, so the old file (if any) survives a full disk, a kill or an exception intact.
JSON goes through :func:`to_jsonable` (NumPy scalars and arrays to Python, non-finite
floats to ``null``) so that every JSON file probekit writes is strict JSON.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ProbekitError

__all__ = [
    "atomic_path",
    "atomic_write_text",
    "describe_os_error",
    "to_jsonable",
    "write_json",
    "writer_lock",
]


@contextlib.contextmanager
def atomic_path(path: str | Path, *, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` when the block succeeds.

    On any exception the temporary file is removed and ``path`` is left as it was.
    ``suffix`` keeps an extension some writers insist on (``np.save`` adds ``.npy``).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(e, OSError) and e.errno is not None and e.filename in (None, str(tmp)):
            raise OSError(e.errno, os.strerror(e.errno), str(path)) from e  # name the target
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def to_jsonable(o: Any) -> Any:
    """``o`` with NumPy values, tuples and paths made JSON-native; NaN and inf become None."""
    if isinstance(o, dict):
        return {str(k): to_jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [to_jsonable(v) for v in o]
    if isinstance(o, np.ndarray):
        return to_jsonable(o.tolist())
    if isinstance(o, (bool, np.bool_)):
        return bool(o)
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, (np.floating, float)):
        v = float(o)
        return v if math.isfinite(v) else None
    if isinstance(o, Path):
        return str(o)
    return o


def write_json(path: str | Path, obj: Any, *, indent: int = 2) -> None:
    """Write ``obj`` as strict JSON (see :func:`to_jsonable`) to ``path`` atomically."""
    atomic_write_text(path, json.dumps(to_jsonable(obj), indent=indent, allow_nan=False) + "\n")


@contextlib.contextmanager
def writer_lock(path: str | Path) -> Iterator[Path]:
    """Hold an exclusive lock on ``PATH.lock`` (holding this process's pid) while writing ``path``.

    A second writer to the same output is refused at once, told which process holds it.
    The lock is released (and the lock file removed) when the block ends, however it ends;
    a killed writer's lock dies with it (``flock``), so a stale ``.lock`` file never blocks.

    Raises:
        ProbekitError: another process holds the lock.
    """
    path = Path(path)
    lock = path.with_name(path.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            raise ProbekitError(
                f"{path} is being written by process {holder} (lock {lock}); wait for it to "
                "finish or stop it, then retry"
            ) from None
        with contextlib.suppress(OSError):  # a full disk: the lock holds, without the pid
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        try:
            yield lock
        finally:
            with contextlib.suppress(OSError):
                lock.unlink()
    finally:
        os.close(fd)


_OS_HINTS = {
    errno.ENOSPC: "the disk is full; free some space and retry (extract: with --resume)",
    errno.EDQUOT: "the disk quota is exceeded; free some space and retry",
    errno.EROFS: "the file system is read-only; choose a writable location",
    errno.EACCES: "permission denied; choose a location you may write to",
    errno.EPERM: "operation not permitted; choose a location you may write to",
    errno.ENOENT: "no such file or directory",
    errno.ENOTDIR: "a part of the path is not a directory",
    errno.EISDIR: "it is a directory, not a file",
    errno.EAGAIN: "the file is in use by another process; wait for it or stop it, then retry",
}


def describe_os_error(e: OSError) -> str | None:
    """One line naming the path and what to do, for an environment error (disk full,
    read-only, permission, file in use); None for an OSError that is not one of those."""
    code = e.errno
    if code is None:  # h5py wraps the C error: recover the errno from the message
        text = str(e)
        for c, words in (
            (errno.ENOSPC, "No space left"),
            (errno.EROFS, "Read-only file system"),
            (errno.EACCES, "Permission denied"),
            (errno.EAGAIN, "unable to lock file"),
        ):
            if words in text:
                code = c
                break
    if code not in _OS_HINTS:
        return None
    where = e.filename or ""
    return f"{where + ': ' if where else ''}{_OS_HINTS[code]} ({os.strerror(code)})"
