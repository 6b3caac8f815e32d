"""probekit.hardware: a reduced-precision CPU request slower than float32 is warned about
with the measured ratio (the measurement mocked), once per process, and still honoured."""

from __future__ import annotations

import logging

import h5py
import pytest
import torch

import probekit.hardware as hw
from probekit.extract import extract
from probekit.models import load_encoder
from probekit.tasks import load_demo


@pytest.fixture
def measured(monkeypatch):
    """Set the probe matmul's seconds per dtype; returns the dict of calls made."""
    calls: dict[torch.dtype, int] = {}

    def use(times: dict[torch.dtype, float]) -> dict[torch.dtype, int]:
        def fake(dtype, reps=3):
            calls[dtype] = calls.get(dtype, 0) + 1
            return times[dtype]

        monkeypatch.setattr(hw, "_matmul_seconds", fake)
        hw.cpu_dtype_speed.cache_clear()
        return calls

    yield use
    hw.cpu_dtype_speed.cache_clear()


def test_slower_bf16_warns_with_the_ratio_once(measured, caplog):
    calls = measured({torch.bfloat16: 7.2, torch.float32: 1.0})
    with caplog.at_level(logging.WARNING, logger="probekit.hardware"):
        speed = hw.check_cpu_dtype(torch.bfloat16, "cpu")
        again = hw.check_cpu_dtype("bfloat16", torch.device("cpu"))
    assert speed is again and speed.slower and speed.ratio == pytest.approx(7.2)
    assert calls == {torch.bfloat16: 1, torch.float32: 1}  # measured once per process
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and "7.20x slower than float32" in warnings[0]
    assert speed.capability in warnings[0]


def test_faster_or_irrelevant_requests_do_not_warn(measured, caplog):
    calls = measured({torch.float16: 0.6, torch.float32: 1.0})
    with caplog.at_level(logging.WARNING, logger="probekit.hardware"):
        assert not hw.check_cpu_dtype(torch.float16, "cpu").slower
        assert hw.check_cpu_dtype(torch.float32, "cpu") is None
        assert hw.check_cpu_dtype(torch.bfloat16, "meta") is None  # not a CPU: not checked
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]
    assert torch.bfloat16 not in calls


def test_capability_names_torch_dispatch_level():
    assert hw.cpu_capability().startswith(torch.backends.cpu.get_cpu_capability())
    assert set(hw.cpu_features()) <= set(hw._FLAGS)


def test_extraction_warns_but_honours_bf16(tiny_model_dir, measured, caplog, tmp_path):
    measured({torch.bfloat16: 3.0, torch.float32: 1.0})
    lm = load_encoder(str(tiny_model_dir), device="cpu", dtype="bfloat16")
    with caplog.at_level(logging.WARNING, logger="probekit.hardware"):
        path = extract(lm, load_demo("dev", limit=8), tmp_path / "b.h5", progress=False).path
    assert any("3.00x slower" in r.getMessage() for r in caplog.records)
    with h5py.File(path, "r") as f:
        assert f.attrs["compute_dtype"] == "bfloat16"
