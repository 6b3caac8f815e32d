"""Know the hardware: which CPU kernels torch runs here, and whether reduced precision
(bfloat16 / float16) is faster or slower than float32 on this CPU.

The same machine kind is not always the same CPU: with native bf16 (AVX512-BF16, AMX) a
bfloat16 forward pass runs 1.5-1.8x faster than float32; without it (AVX2 only) it was
measured 7.2x slower. :func:`check_cpu_dtype` measures a short probe matmul in both
dtypes once per process and warns when the reduced precision is slower; the request is
still honoured (the user asked for it). Fine-tuning's mixed precision can ask the same.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ["DtypeSpeed", "check_cpu_dtype", "cpu_capability", "cpu_dtype_speed", "cpu_features"]

logger = logging.getLogger(__name__)

_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_fp16", "amx_tile")
_PROBE = (512, 384, 1536)  # rows x in x out: one FFN matmul of a small encoder batch


def cpu_features() -> tuple[str, ...]:
    """The reduced-precision-relevant flags of this CPU (``/proc/cpuinfo``; empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ()
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    have = set(line.partition(":")[2].split())
    return tuple(f for f in _FLAGS if f in have)


def cpu_capability() -> str:
    """What torch's CPU kernels were built for here, e.g. ``AVX512 (avx512_bf16 amx_bf16)``:
    torch's dispatch level (:func:`torch.backends.cpu.get_cpu_capability`) and the flags of
    :func:`cpu_features` beyond it."""
    level = torch.backends.cpu.get_cpu_capability()
    extra = [f for f in cpu_features() if f not in ("avx2", "avx512f")]
    return f"{level} ({' '.join(extra)})" if extra else level


@dataclass(frozen=True)
class DtypeSpeed:
    """A probe matmul in ``dtype`` against float32 on this CPU.

    Attributes:
        dtype: ``bfloat16`` or ``float16``.
        ratio: seconds in ``dtype`` / seconds in float32 (above 1: the reduced precision is
            slower; :attr:`slower` allows 10% for timing noise).
        capability: :func:`cpu_capability`.
    """

    dtype: str
    ratio: float
    capability: str

    @property
    def slower(self) -> bool:
        return self.ratio > 1.1


def _matmul_seconds(dtype: torch.dtype, reps: int = 3) -> float:
    """Best of ``reps`` timings of one probe matmul (after a warm-up call)."""
    m, k, n = _PROBE
    g = torch.Generator().manual_seed(0)
    x = torch.randn(m, k, generator=g).to(dtype)
    w = torch.randn(n, k, generator=g).to(dtype)
    with torch.inference_mode():
        torch.nn.functional.linear(x, w)
        best = float("inf")
        for _ in range(reps):
            t0 = time.perf_counter()
            torch.nn.functional.linear(x, w)
            best = min(best, time.perf_counter() - t0)
    return best


@functools.cache
def cpu_dtype_speed(dtype: str) -> DtypeSpeed:
    """Measure (once per process: the answer is cached) ``dtype`` against float32 on a
    ``512 x 384 x 1536`` matmul, a few milliseconds to ~50 ms where ``dtype`` is slow."""
    dt = getattr(torch, dtype)
    ratio = _matmul_seconds(dt) / max(_matmul_seconds(torch.float32), 1e-9)
    return DtypeSpeed(dtype, ratio, cpu_capability())


def check_cpu_dtype(dtype: torch.dtype | str, device: torch.device | str) -> DtypeSpeed | None:
    """Warn when a reduced-precision compute ``dtype`` on the CPU is slower than float32.

    Returns:
        The measurement for bfloat16 / float16 on a CPU device, else None (nothing to check:
        float32, or an accelerator).
    """
    name = str(dtype).replace("torch.", "")
    if torch.device(device).type != "cpu" or name not in ("bfloat16", "float16"):
        return None
    speed = cpu_dtype_speed(name)
    if speed.slower:
        logger.warning(
            "%s compute on this CPU (%s) ran a probe matmul %.2fx slower than float32; "
            "honouring it as asked, but float32 is likely faster here",
            name,
            speed.capability,
            speed.ratio,
        )
    else:
        logger.info(
            "%s compute on this CPU (%s): probe matmul %.2fx the time of float32",
            name,
            speed.capability,
            speed.ratio,
        )
    return speed
