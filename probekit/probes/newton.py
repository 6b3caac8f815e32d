"""The one damped-Newton scaffold that every logistic probe is fitted with.

``B`` probes are solved at once; each keeps its own point, step and merit, and leaves the
active set when it converges. A variant (binary, multinomial) fills in only what differs
(:class:`NewtonProblem`): the merit at a batch of points, which merit counts as worse, and
the Newton step at the points that were accepted. The scaffold does the rest, once:

* **step halving**: a point whose merit is worse than at the last accepted point is
  replaced by the midpoint of the last step; a step that has shrunk below ``tol * 1e-3``
  ends the line search at the last accepted point;
* **convergence**: the point after the accepted step ``s`` (its largest absolute entry) is
  within ``tol`` of the optimum, relative to the parameter size when that exceeds 1: ``s``
  itself is below ``tol``, or Newton's quadratic convergence puts the next step below it,
  ``QUADRATIC * p * s**2 <= tol`` for ``p`` parameters per logit (:data:`QUADRATIC`); or the
  step is already small (< 1e-4) and no longer shrinking quadratically, which means
  float32 rounding of the sums over examples is the floor (about 1e-6 relative); further
  steps would be noise. The last step is always applied.

The bookkeeping (a few numbers per probe) is float64 NumPy on purpose: it is
single-threaded, whereas torch parallelises some element-wise ops on a few thousand
elements and then pays a thread wake-up per op, which dominates on a busy CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

__all__ = ["QUADRATIC", "NewtonProblem", "NewtonState", "convergence_rule", "damped_newton"]

#: Newton's quadratic convergence as the convergence test takes it: after an accepted step
#: ``s`` (largest absolute entry) of a probe with ``p`` parameters per logit (``k + 1``), the
#: next step is taken to be at most ``QUADRATIC * p * s**2``. ``p``, because a step of ``s``
#: in each of ``p`` coordinates moves the logits by up to ``p`` times as much, and the Hessian
#: changes with the logits; ``QUADRATIC`` is a safety factor on that prediction, which the
#: test applies from the first pass on, before any contraction has been seen.
#:
#: Measured (``tol = 1e-3``, against fits to 1e-9; benchmarks/README.md, "Newton's quadratic
#: stop with a safety factor"): with ``QUADRATIC = 1`` no fit on MiniLM CoLA, SST-2 dev, a
#: three-way task or a 768-dimension random BERT ended more than ``tol`` away, but on
#: heavy-tailed features (1% of the entries scaled by 30-80) 1.3% of the fits did, up to
#: 2.3x ``tol``. At 2 the worst was 1.15x; at 4 it was 0.49x, over pairs, triples, 8 dims and
#: all 32, binary and three-way, C = 0.01, 0.2 and 10, with 2.47 passes per pair against
#: 2.31 at 1 and 3.10 for a step below ``tol`` alone. On the random-BERT 768 layer, 4 takes
#: 1.39 passes per pair (1.23 at 1, 2.01 for a step below ``tol``); for pairs it ends a fit
#: at a step up to 0.009 instead of 0.001.
QUADRATIC = 4.0


def convergence_rule() -> dict[str, float | str]:
    """What decides that a fit has converged, besides ``tol`` (for checkpoint keys, so units
    fitted under another rule are not mixed into a resumed search)."""
    return {"rule": "step below tol, or predicted next step below tol", "quadratic": QUADRATIC}


class NewtonProblem(Protocol):
    """What a Newton variant provides; ``Ba`` is the number of active probes."""

    def merit(self, theta: np.ndarray, act: np.ndarray) -> np.ndarray:
        """Merit ``[Ba]`` at the points ``theta [Ba, ...]`` of the probes ``act [Ba]`` (indices
        into the chunk); remembers what :meth:`step` needs at these points."""
        ...

    def rejected(self, merit: np.ndarray, merit_prev: np.ndarray) -> np.ndarray:
        """``[Ba]`` bool: the new point is worse than the last accepted one."""
        ...

    def step(self, good: np.ndarray) -> np.ndarray:
        """Newton steps ``[Bg, ...]`` at the points of the last :meth:`merit` call selected
        by ``good [Ba]`` (bool)."""
        ...

    def retain(self, keep: np.ndarray) -> None:
        """The active set shrank to the probes selected by ``keep [Ba]`` (bool)."""
        ...


@dataclass
class NewtonState:
    """Per-probe state of damped Newton on a chunk of ``B`` probes (float64 NumPy).

    Attributes:
        theta: ``[B, ...]`` current points (the answer once :func:`damped_newton` returns).
        prev: ``[B, ...]`` last accepted points.
        step: ``[B, ...]`` the step from ``prev`` to ``theta``.
        merit_prev: ``[B]`` merit at ``prev``.
        snorm: ``[B]`` size of the last accepted step (inf before the first).
        n_iter: ``[B]`` int64 passes used.
        done: ``[B]`` bool converged (or line search exhausted at the last accepted point).
    """

    theta: np.ndarray
    prev: np.ndarray
    step: np.ndarray
    merit_prev: np.ndarray
    snorm: np.ndarray
    n_iter: np.ndarray
    done: np.ndarray

    @classmethod
    def start(cls, theta: np.ndarray, prev: np.ndarray, merit_prev: np.ndarray) -> NewtonState:
        """A first trial point ``theta``, checked against ``prev`` whose merit is known."""
        B = len(theta)
        return cls(
            theta=theta,
            prev=prev,
            step=theta - prev,
            merit_prev=merit_prev,
            snorm=np.full(B, np.inf),
            n_iter=np.zeros(B, dtype=np.int64),
            done=np.zeros(B, dtype=bool),
        )


def _converged(
    step: np.ndarray, size: np.ndarray, snorm: np.ndarray, idx: np.ndarray, tol: float, p: int
) -> np.ndarray:
    """The convergence test of the module docstring on steps ``[Bg]`` and parameter sizes
    ``[Bg]`` of the probes ``idx`` with ``p`` parameters per logit; records the steps in
    ``snorm``."""
    scale = size.clip(min=1.0)
    stalled = (step <= 1e-4 * scale) & (step >= 0.25 * snorm[idx])
    snorm[idx] = step
    bound = tol * scale
    return (step <= bound) | (QUADRATIC * p * step * step <= bound) | stalled


def damped_newton(
    problem: NewtonProblem, state: NewtonState, *, max_iter: int, tol: float
) -> NewtonState:
    """Run at most ``max_iter`` passes of damped Newton on every probe of ``state`` (updated
    in place and returned)."""
    axes = tuple(range(1, state.theta.ndim))
    act = np.arange(len(state.theta))
    for _ in range(max_iter):
        th = state.theta[act]
        merit = problem.merit(th, act)
        state.n_iter[act] += 1
        worse = problem.rejected(merit, state.merit_prev[act])
        if worse.any():  # rejected points: halve the step from the last accepted point
            ia = act[worse]
            state.step[ia] *= 0.5
            state.theta[ia] = state.prev[ia] + state.step[ia]
            tiny = np.abs(state.step[ia]).max(axis=axes) < tol * 1e-3
            if tiny.any():  # line search exhausted: keep the last accepted point
                state.theta[ia[tiny]] = state.prev[ia[tiny]]
                state.done[ia[tiny]] = True
        good = ~worse
        if good.any():
            ig = act[good]
            thg = th[good]
            st = problem.step(good)
            state.prev[ig] = thg
            state.merit_prev[ig] = merit[good]
            state.step[ig] = st
            state.theta[ig] = thg + st
            size = np.abs(thg).max(axis=axes)
            snew = np.abs(st).max(axis=axes)
            conv = _converged(snew, size, state.snorm, ig, tol, state.theta.shape[-1])
            state.done[ig[conv]] = True
        keep = ~state.done[act]
        if not keep.any():
            break
        if not keep.all():
            act = act[keep]
            problem.retain(keep)
    return state
