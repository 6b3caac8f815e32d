"""Scoring fitted probes on the evaluation data, in the same pass as the fit.

Three paths, each avoiding what it can of the ``[B, m]`` predictions:

* binary probes with every eval label known in training: (log-loss, true positives,
  predicted positives) summed on the device (:mod:`.kernels`); the confusion matrix, and so
  every classification metric, follows from them;
* ridge probes: Pearson correlation and MSE follow exactly from eval moments, without
  forming predictions (formed only for other metrics, e.g. Spearman);
* anything else (multinomial, or eval labels the training data never showed): predictions
  and per-example log-loss. An eval label absent from training counts as an error in every
  metric and is left out of the mean eval loss (the probe has no probability for it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..metrics import batch_metrics, confusion_metrics
from .kernels import binary_eval, call_kernel, eager_eval, fused_worth, shared_eval
from .solvers import ChunkFit, SharedColumns, gram, row_dot, row_sums

__all__ = ["EvalSet", "RidgeEvalMoments", "eval_set", "score_chunk"]

_F32 = torch.float32
_F64 = torch.float64


@dataclass
class RidgeEvalMoments:
    """Eval moments of the standardised columns (float64): means ``mu [Du]``, covariance
    ``C [Du, Du]``, covariance with the target ``ce [Du]``; the target's mean and variance."""

    mu: np.ndarray
    C: np.ndarray
    ce: np.ndarray
    y_mean: float
    y_var: float


@dataclass
class EvalSet:
    """The evaluation data of one run, shared by all chunks.

    Attributes:
        Xe: ``[Du, m]`` standardised eval columns (float32, on the device).
        y: ``[m]`` eval labels or targets.
        metrics: metric names to compute.
        classes: ``[K]`` training classes (None for regression).
        labels: ``[m]`` class index of each eval label (0 where unknown; classification).
        known: ``[m]`` bool, the label is one of ``classes`` (classification).
        confusion: binary probes with every label known: score from confusion counts.
        labels_f: ``[m]`` float32 labels in {0, 1} (confusion path).
        n_pos: number of positive eval labels (confusion path).
        moments: ridge eval moments (regression).
    """

    Xe: torch.Tensor
    y: np.ndarray
    metrics: tuple[str, ...]
    classes: np.ndarray | None
    labels: torch.Tensor | None = None
    known: np.ndarray | None = None
    confusion: bool = False
    labels_f: torch.Tensor | None = None
    n_pos: int = 0
    moments: RidgeEvalMoments | None = None

    @property
    def m(self) -> int:
        return len(self.y)


def eval_set(
    Xe: torch.Tensor, y: np.ndarray, metrics: tuple[str, ...], classes: np.ndarray | None
) -> EvalSet:
    """:class:`EvalSet` for ``Xe [Du, m]`` and ``y [m]``; ``classes`` None for regression."""
    ev = EvalSet(Xe=Xe, y=y, metrics=metrics, classes=classes)
    if classes is None:
        ev.moments = _ridge_moments(Xe, y)
        return ev
    K = len(classes)
    idx = np.searchsorted(classes, y)
    ev.known = (idx < K) & (classes[np.minimum(idx, K - 1)] == y)
    ev.labels = torch.as_tensor(np.where(ev.known, idx, 0), device=Xe.device)
    ev.confusion = K == 2 and bool(ev.known.all())
    if ev.confusion:  # no [B, m] leaves the device
        ev.labels_f = ev.labels.to(_F32)
        ev.n_pos = int(idx.sum())
    return ev


def _ridge_moments(Xe: torch.Tensor, y: np.ndarray) -> RidgeEvalMoments:
    m = Xe.shape[1]
    ye = torch.as_tensor(y, dtype=_F64, device=Xe.device)
    mu = row_sums(Xe) / m
    yc = ye - ye.mean()
    ce = row_dot(Xe, yc) / m
    C = gram(Xe) / m - torch.outer(mu, mu)
    return RidgeEvalMoments(
        mu=mu.cpu().numpy(),
        C=C.cpu().numpy(),
        ce=ce.cpu().numpy(),
        y_mean=float(ye.mean()),
        y_var=float((yc * yc).mean()),
    )


def score_chunk(
    ev: EvalSet,
    fit: ChunkFit,
    d: torch.Tensor,
    *,
    ybar: float = 0.0,
    shared: SharedColumns | None = None,
    use_compile: bool = False,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Scores ``{metric: [Bc]}`` and mean eval loss ``[Bc]`` (log-loss, or MSE for ridge) of
    the probes ``fit`` on the columns ``d [Bc, k]``; ``ybar`` is ridge's training mean."""
    if ev.moments is not None:
        return _score_ridge(ev, fit, d, ybar)
    if ev.confusion:
        return _score_binary_counts(ev, fit, d, shared, use_compile)
    return _score_predictions(ev, fit, d)


def _score_binary_counts(ev, fit, d, shared, use_compile):
    ye_f = ev.labels_f
    theta = torch.cat([fit.W[:, 0], fit.b], 1).to(_F32)
    if shared is not None:
        out = shared_eval(shared.Se1, ev.Xe[d[:, -1]], theta, ye_f)
    elif use_compile and fused_worth(binary_eval, ev.Xe, d):
        out = call_kernel(binary_eval, True, ev.Xe, d, theta, ye_f)
    else:
        out = eager_eval(ev.Xe, d, theta, ye_f)
    out = out.to(_F64).cpu().numpy()
    m, n_pos = ev.m, ev.n_pos
    tp, pp = np.rint(out[:, 1]), np.rint(out[:, 2])
    cm = np.stack([np.stack([m - n_pos - (pp - tp), pp - tp], 1), np.stack([n_pos - tp, tp], 1)], 1)
    scores = confusion_metrics(ev.metrics, cm, ev.classes) if ev.metrics else {}
    return scores, out[:, 0] / m


def _score_ridge(ev, fit, d, ybar):
    mo = ev.moments
    wn = fit.W[:, 0].cpu().numpy()
    dn = d.cpu().numpy()
    var_p = np.einsum("bi,bij,bj->b", wn, mo.C[dn[:, :, None], dn[:, None, :]], wn)
    cov = (wn * mo.ce[dn]).sum(1)
    mean_p = (wn * mo.mu[dn]).sum(1) + ybar
    loss = np.maximum(var_p + mo.y_var - 2 * cov, 0) + (mean_p - mo.y_mean) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        r = cov / np.sqrt(var_p * mo.y_var)
    # constant predictions (all weights 0) or truth: undefined, as scipy
    if mo.y_var > 0:
        r[~(var_p > 1e-24 * mo.y_var)] = np.nan
    else:
        r[:] = np.nan
    r = np.clip(r, -1.0, 1.0)
    scores = {}
    if "pearson" in ev.metrics:
        scores["pearson"] = r
    need_pred = [mn for mn in ev.metrics if mn != "pearson"]
    if need_pred:
        Z = torch.einsum("bk,bkn->bn", fit.W[:, 0].to(_F32), ev.Xe[d]) + fit.b.to(_F32)
        scores.update(batch_metrics(need_pred, ev.y, Z.to(_F64).cpu().numpy()))
    return scores, loss


#: probe x eval-example elements per block of :func:`_score_predictions`, whose ~10 ``[B, m]``
#: temporaries take ~44 bytes an element (2^22: ~180 MiB), so that a chunk as large as the
#: fused or pair kernels take (8,192 probes) stays within the engine's budget here too
PRED_BLOCK_ELEMS = 2**22


def _score_predictions(ev, fit, d):
    """Scores and mean eval loss from predictions, in blocks of probes."""
    W, b = fit.W.to(_F32), fit.b.to(_F32)
    B, Kf = W.shape[0], W.shape[1]
    step = max(1, PRED_BLOCK_ELEMS // max(1, Kf * ev.m))
    parts = [
        _predicted_block(ev, W[s : s + step], b[s : s + step], d[s : s + step])
        for s in range(0, max(B, 1), step)
    ]
    scores = {k: np.concatenate([p[0][k] for p in parts]) for k in parts[0][0]}
    return scores, np.concatenate([p[1] for p in parts])


def _predicted_block(ev, W, b, d):
    Z = torch.einsum("bck,bkn->bcn", W, ev.Xe[d]) + b[:, :, None]  # [Bb, K', m]
    if len(ev.classes) == 2:
        z = Z[:, 0]
        ll = torch.nn.functional.softplus(z) - z * ev.labels.to(_F32)
        pi = (z > 0).long()
    else:
        picked = Z.gather(1, ev.labels.expand(Z.shape[0], -1)[:, None, :])[:, 0]
        ll = torch.logsumexp(Z, dim=1) - picked
        pi = Z.argmax(dim=1)
    kn = torch.as_tensor(ev.known, device=Z.device)
    loss = (ll[:, kn].sum(1).to(_F64) / max(int(ev.known.sum()), 1)).cpu().numpy()
    pred = ev.classes[pi.cpu().numpy()]
    scores = batch_metrics(ev.metrics, ev.y, pred) if ev.metrics else {}
    return scores, loss
