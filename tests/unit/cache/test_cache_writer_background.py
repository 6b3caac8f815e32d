"""WindowWrites: windows written in order on one thread, the first failure re-raised in the
caller with the later windows skipped, and the thread stopped on leaving the block."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from probekit.cache.writer import WindowWrites


class _Recorder:
    """Stands in for a CacheWriter: records each window and its thread, fails on request."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.path = Path("fake.h5")
        self.f = type("F", (), {"attrs": {"n_examples": 10}})()
        self.windows: list[tuple[int, int, str]] = []
        self.fail_at = fail_at

    def write_window(self, start, stop, pooled, max_norm_pos, hidden) -> None:
        if start == self.fail_at:
            raise OSError(f"cannot write window at {start}")
        self.windows.append((start, stop, threading.current_thread().name))


@pytest.mark.parametrize("background", [True, False])
def test_windows_are_written_in_order(background):
    rec, seen = _Recorder(), []
    with WindowWrites(rec, background=background) as w:
        for a in range(0, 10, 2):
            w.submit(a, a + 2, {}, None, None, ready=lambda a=a: seen.append(a))
    assert [(a, b) for a, b, _ in rec.windows] == [(a, a + 2) for a in range(0, 10, 2)]
    assert seen == [0, 2, 4, 6, 8]  # ``ready`` runs before each window is read
    on_thread = {t.startswith("probekit-writer") for _, _, t in rec.windows}
    assert on_thread == {background}
    assert not [t for t in threading.enumerate() if t.name.startswith("probekit-writer")]


def test_a_failed_window_is_raised_and_later_ones_skipped():
    rec = _Recorder(fail_at=4)
    with pytest.raises(OSError, match="cannot write window at 4"), WindowWrites(rec) as w:
        futures = [w.submit(a, a + 2, {}, None, None) for a in range(0, 10, 2)]
    assert [a for a, _, _ in rec.windows] == [0, 2]
    assert futures[3].done() and futures[3].exception() is None  # skipped, not written
    assert not [t for t in threading.enumerate() if t.name.startswith("probekit-writer")]
