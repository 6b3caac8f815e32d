"""Helpers of the hostile test: snapshots of files, the clean-refusal check, disk filling."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def _digest(p: Path) -> str:
    if p.is_dir():
        return ";".join(f"{q.relative_to(p)}={_digest(q)}" for q in sorted(p.rglob("*")))
    return hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "missing"


class Snapshot:
    """The contents of some paths now, to assert later that nothing of them changed."""

    def __init__(self, *paths: str | Path) -> None:
        self.paths = [Path(p) for p in paths]
        self.before = [_digest(p) for p in self.paths]

    def unchanged(self) -> bool:
        return self.before == [_digest(p) for p in self.paths]


def refused(result: tuple[int, str, str], *culprits: str) -> str:
    """Assert a clean refusal (exit 2, one message naming every culprit); the message."""
    rc, out, err = result
    assert rc == 2, (rc, out, err)
    for c in culprits:
        assert c.lower() in err.lower(), (c, err)
    return err


def fill(disk: Path, leave: int) -> Path:
    """Fill ``disk`` up to ``leave`` free bytes with one filler file (its path)."""
    filler = disk / "filler"
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, free - leave))
    return filler
