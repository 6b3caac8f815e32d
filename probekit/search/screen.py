"""The score-test screen of greedy selection.

Not a solver: given the probe already fitted (by :class:`~probekit.probes.ProbeEngine`) on
the selected dimensions, the Rao score statistic of adding one more dimension is a gradient
and a Fisher information evaluated at that fit, for all candidates at once with a few matrix
products. ``greedy(..., screen=M)`` uses it to shortlist M candidates per step, which the
engine then fits exactly.
"""

from __future__ import annotations

import numpy as np

from .problem import Problem

__all__ = ["Screen"]


class Screen:
    """Score-test statistics for adding each dimension to a probe on ``selected`` (fit part).

    For candidate ``j`` with standardised column ``z_j``, residual ``r = y - p`` and weights
    ``w`` of the fitted probe (``p(1-p)`` for logistic, 1 for ridge), the statistic is
    ``(z_j' r)^2 / (z_j' W z_j + lam - h_j' H^-1 h_j)``, where ``H`` is the penalised Fisher
    information of the fitted parameters (selected dims and intercept) and ``h_j = Z_S1' W z_j``;
    ``lam = 1/C`` as in the engine's objective. Multi-class probes sum the statistic over the
    classes' one-vs-rest blocks (a shortlist heuristic; the exact fits decide).
    """

    def __init__(self, pb: Problem):
        self.pb = pb
        X = pb.X_fit
        mu = X.mean(0, dtype=np.float64)
        sd = X.std(0, dtype=np.float64)
        sd[sd < 1e-12] = 1.0
        # float32 is plenty for a shortlist statistic and halves the cost of the products below
        self.Z = ((X - mu.astype(np.float32)) / sd.astype(np.float32)).astype(np.float32)
        self.Z2 = self.Z**2  # [n_fit, D]
        self.lam = 1.0 / pb.config.C
        y = pb.y_fit
        if pb.regression:
            self.Y = (y - y.mean())[:, None]
        else:
            classes = np.unique(y)
            Y = (y[:, None] == classes[None, :]).astype(np.float64)
            self.Y = Y[:, 1:] if len(classes) == 2 else Y  # [n, K'] targets of the K' blocks

    def _fitted(self, selected: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """``(P [n, K'], W [n, K'])``: predictions and Fisher weights of the probe so far."""
        pb, n = self.pb, self.Z.shape[0]
        Zd = None
        if selected:
            fit = pb.engine.fit(pb.X_fit, pb.y_fit, np.asarray(selected, dtype=np.int64)[None, :])
            Zd = np.asarray(fit.decision_function(pb.X_fit, device=pb.engine.device))[0]
        if pb.regression:
            P = (Zd - pb.y_fit.mean())[:, None] if Zd is not None else np.zeros((n, 1))
            return P, np.ones((n, 1))
        if Zd is None:
            P = np.broadcast_to(self.Y.mean(0), (n, self.Y.shape[1])).copy()
        elif Zd.ndim == 1:
            P = (1.0 / (1.0 + np.exp(-Zd)))[:, None]
        else:
            E = np.exp(Zd - Zd.max(1, keepdims=True))
            P = E / E.sum(1, keepdims=True)
        return P, P * (1 - P)

    def stats(self, selected: list[int], cand: np.ndarray) -> np.ndarray:
        """``[len(cand)]`` score statistics (larger = more promising)."""
        n = self.Z.shape[0]
        P, Wt = self._fitted(selected)
        R = (self.Y - P).astype(np.float32)  # [n, K']
        S1 = np.concatenate([self.Z[:, selected].astype(np.float64), np.ones((n, 1))], axis=1)
        pen = np.full(S1.shape[1], self.lam)
        pen[-1] = 0.0  # the intercept is not penalised
        U = (self.Z.T @ R).astype(np.float64)  # [D, K'] scores at the current fit
        Ijj = (self.Z2.T @ Wt.astype(np.float32)).astype(np.float64) + self.lam  # [D, K']
        out = np.zeros(self.Z.shape[1])
        for c in range(R.shape[1]):
            WS = S1 * Wt[:, c : c + 1]
            H = S1.T @ WS + np.diag(pen) + 1e-9 * np.eye(S1.shape[1])
            h = (self.Z.T @ WS.astype(np.float32)).astype(np.float64)  # [D, s+1]
            cond = Ijj[:, c] - np.einsum("ds,ds->d", h, np.linalg.solve(H, h.T).T)
            out += U[:, c] ** 2 / np.maximum(cond, 1e-12)
        return out[np.asarray(cand, dtype=np.int64)]
