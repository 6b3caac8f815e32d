"""Honest headlines: does a selected dimension set beat the majority and random-k baselines?

One function, :func:`verdict`, decides from per-example eval predictions (selected set, full
width, majority class, ``R`` random ``k``-sets) with a **paired bootstrap** over the eval
examples: the same resample of examples scores the selected set and the baseline, and the
confidence interval is that of ``selected - baseline``. The outcome is one of

* ``beats``: the interval's lower end is above 0 against both baselines, and the score lies
  above the random-k band (mean + std over the draws): the headline names the dimensions;
* ``baseline``: the selected set is at or below a baseline (point difference <= 0, or inside
  the random band): "no dimension set beats the baselines";
* ``inconclusive``: above both, but an interval reaches 0.

Relative figures are given both as a share of the full-width score and as a share of the gap
between the majority baseline and full width (so "100% of full width" at the majority
baseline, e.g. the F1 of always-positive, reads as "0% of the gap"). :func:`probekit.pipeline`
and :mod:`probekit.report` both print :attr:`Verdict.headline`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..metrics import CLASSIFICATION_METRICS, confusion_metrics

__all__ = ["STATUSES", "Verdict", "bootstrap_scores", "judge", "probe_engine", "verdict"]

STATUSES = ("beats", "baseline", "inconclusive")


@dataclass(frozen=True)
class Verdict:
    """The verdict on one selected set (see the module docstring).

    Attributes:
        status: one of :data:`STATUSES`.
        headline: the sentence to print.
        metric: the primary metric compared.
        score, full, majority: eval scores of the selected set, full width, majority class.
        random_mean, random_std: over the random ``k``-sets (None without them).
        share_of_full: ``score / full``; share_of_gap: ``(score - majority) / (full -
            majority)`` (None when full width does not beat the majority).
        vs_majority, vs_random: ``{"diff", "ci_low", "ci_high"}`` paired bootstrap of
            ``selected - baseline`` (``vs_random``: minus the mean over the random sets).
        n_boot, seed, confidence: the bootstrap's settings.
    """

    status: str
    headline: str
    metric: str
    dims: list[int]
    score: float
    full: float
    majority: float
    random_mean: float | None
    random_std: float | None
    share_of_full: float | None
    share_of_gap: float | None
    vs_majority: dict[str, float]
    vs_random: dict[str, float] | None
    n_boot: int
    seed: int
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _weights(n: int, n_boot: int, seed: int) -> np.ndarray:
    """``[n_boot, n]`` bootstrap counts (multinomial resamples of the eval examples)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    W = np.zeros((n_boot, n))
    np.add.at(W, (np.repeat(np.arange(n_boot), n), idx.ravel()), 1.0)
    return W


def _weighted_pearson(W: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    s = W.sum(1)
    ma, mb = W @ a / s, W @ b / s
    cab = W @ (a * b) / s - ma * mb
    caa = W @ (a * a) / s - ma**2
    cbb = W @ (b * b) / s - mb**2
    with np.errstate(invalid="ignore", divide="ignore"):
        r = cab / np.sqrt(caa * cbb)
    return np.nan_to_num(r, nan=0.0)


def bootstrap_scores(metric: str, y: np.ndarray, pred: np.ndarray, W: np.ndarray) -> np.ndarray:
    """``[B, n_boot]`` scores of predictions ``pred [B, n]`` on each resample ``W [n_boot, n]``
    (weights = how often each example is drawn). Spearman ranks once on the whole sample."""
    pred = np.atleast_2d(pred)
    if metric in CLASSIFICATION_METRICS:
        labels = np.union1d(np.unique(y), np.unique(pred))
        K = len(labels)
        yt = np.searchsorted(labels, y)
        out = []
        for p in pred:
            cell = yt * K + np.searchsorted(labels, p)
            onehot = np.zeros((len(y), K * K))
            onehot[np.arange(len(y)), cell] = 1.0
            cm = (W @ onehot).reshape(-1, K, K)
            out.append(confusion_metrics((metric,), cm, labels)[metric])
        return np.stack(out)
    if metric == "spearman":
        from scipy.stats import rankdata

        y = rankdata(y)
        pred = rankdata(pred, axis=1)
    y = y.astype(np.float64)
    return np.stack([_weighted_pearson(W, p.astype(np.float64), y) for p in pred])


def _ci(d: np.ndarray, point: float, confidence: float) -> dict[str, float]:
    lo, hi = np.quantile(d, [(1 - confidence) / 2, (1 + confidence) / 2])
    return {"diff": float(point), "ci_low": float(lo), "ci_high": float(hi)}


def _point(metric: str, y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    return bootstrap_scores(metric, y, pred, np.ones((1, len(y))))[:, 0]


def verdict(
    y_eval: np.ndarray,
    selected_pred: np.ndarray,
    *,
    full_pred: np.ndarray,
    majority_pred: np.ndarray,
    random_pred: np.ndarray | None = None,
    metric: str = "accuracy",
    dims: Sequence[int] = (),
    task: str = "the task",
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Verdict:
    """Compare a selected set with the majority and random-k baselines (paired bootstrap).

    Args:
        y_eval: ``[n_eval]`` true labels (or targets).
        selected_pred: ``[n_eval]`` predictions of the probe on the selected set.
        full_pred: ``[n_eval]`` predictions of the full-width probe.
        majority_pred: ``[n_eval]`` the constant prediction (majority class, training mean).
        random_pred: ``[R, n_eval]`` predictions of probes on ``R`` random ``k``-sets.
        metric: the task's primary metric.
        dims: the selected dimensions (named in the headline only when they win).
        n_boot: bootstrap resamples (seeded with ``seed``).
    """
    y = np.asarray(y_eval)
    n = len(y)
    if n < 2 or n_boot < 10 or not 0 < confidence < 1:
        raise ConfigError(
            f"verdict: need >= 2 eval examples, n_boot >= 10, 0 < confidence < 1; "
            f"got {n}, {n_boot}, {confidence}"
        )
    preds = [np.asarray(selected_pred), np.asarray(full_pred), np.asarray(majority_pred)]
    if any(p.shape != y.shape for p in preds):
        raise ConfigError(f"verdict: predictions must have the shape of y_eval {y.shape}")
    W = _weights(n, n_boot, seed)
    boot = bootstrap_scores(metric, y, np.stack(preds), W)  # [3, n_boot]
    score, full, maj = (float(v) for v in _point(metric, y, np.stack(preds)))
    vs_maj = _ci(boot[0] - boot[2], score - maj, confidence)
    rmean = rstd = vs_rand = None
    if random_pred is not None and len(random_pred):
        R = np.atleast_2d(np.asarray(random_pred))
        rpoint = _point(metric, y, R)
        rmean, rstd = float(rpoint.mean()), float(rpoint.std())
        rboot = bootstrap_scores(metric, y, R, W).mean(0)
        vs_rand = _ci(boot[0] - rboot, score - rmean, confidence)
    share_full = score / full if full != 0 else None
    share_gap = (score - maj) / (full - maj) if full > maj else None
    status = _status(score, vs_maj, vs_rand, rmean, rstd)
    v: dict[str, Any] = dict(
        status=status,
        metric=metric,
        dims=[int(d) for d in dims],
        score=score,
        full=full,
        majority=maj,
        random_mean=rmean,
        random_std=rstd,
        share_of_full=share_full,
        share_of_gap=share_gap,
        vs_majority=vs_maj,
        vs_random=vs_rand,
        n_boot=int(n_boot),
        seed=int(seed),
        confidence=float(confidence),
    )
    return Verdict(headline=_headline(v, task), **v)


def probe_engine(pb: Any, k: int) -> Any:
    """The engine of ``pb`` for probes of ``k`` dimensions (its ``C`` for that ``k`` where the
    problem chooses ``C`` per ``k``)."""
    return pb.engine_for(k) if hasattr(pb, "engine_for") else pb.engine


def _predict(pb: Any, dims: np.ndarray) -> np.ndarray:
    """``[B, n_eval]`` predictions of probes on ``dims [B, k]`` refitted on all of train."""
    eng = probe_engine(pb, dims.shape[1])
    return eng.fit(pb.X_train, pb.y_train, dims).predict(pb.X_eval, device=eng.device)


def judge(
    pb: Any,
    selected: Sequence[int],
    *,
    task: str,
    random_dims: Sequence[Sequence[int]] | None = None,
    n_boot: int = 1000,
) -> Verdict:
    """:func:`verdict` of ``selected`` on a :class:`~probekit.search.Problem`: its probes
    refitted on all of train and predicting eval (full width, the random sets ``random_dims
    [R, k]`` of its random-k baseline, the majority class or the training mean)."""
    sel = np.asarray(selected, dtype=np.int64)
    full_pred = getattr(pb, "full_predictions", None)  # a Problem's one full-width fit
    full = full_pred() if full_pred else _predict(pb, np.arange(pb.n_dims)[None, :])[0]
    preds = [_predict(pb, sel[None, :])[0], full]
    rpred = None if not random_dims else _predict(pb, np.asarray(random_dims, dtype=np.int64))
    if pb.regression:
        maj = np.full(len(pb.y_eval), float(np.mean(pb.y_train)))
    else:
        vals, counts = np.unique(pb.y_train, return_counts=True)
        maj = np.full(len(pb.y_eval), vals[np.argmax(counts)])
    return verdict(
        pb.y_eval,
        preds[0],
        full_pred=preds[1],
        majority_pred=maj,
        random_pred=rpred,
        metric=pb.primary,
        dims=sel.tolist(),
        task=task,
        n_boot=n_boot,
        seed=pb.config.seed,
    )


def _status(score, vs_maj, vs_rand, rmean, rstd) -> str:
    diffs = [vs_maj] + ([vs_rand] if vs_rand is not None else [])
    if any(d["diff"] <= 0 for d in diffs) or (rmean is not None and score <= rmean + rstd):
        return "baseline"
    if any(d["ci_low"] <= 0 for d in diffs):
        return "inconclusive"
    return "beats"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def _headline(v: dict[str, Any], task: str) -> str:
    m, k = v["metric"], len(v["dims"])
    maj = v["vs_majority"]
    conf = f"{100 * v['confidence']:.0f}% CI"
    parts = [
        f"{m} {v['score']:.4f}",
        f"majority {v['majority']:.4f} (diff {maj['diff']:+.4f}, {conf} "
        f"[{maj['ci_low']:+.4f}, {maj['ci_high']:+.4f}])",
    ]
    if v["vs_random"] is not None:
        r = v["vs_random"]
        parts.append(
            f"random-{k} {v['random_mean']:.4f} +- {v['random_std']:.4f} (diff {r['diff']:+.4f}, "
            f"{conf} [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}])"
        )
    parts.append(
        f"full width {v['full']:.4f}: {_pct(v['share_of_full'])} of full width, "
        f"{_pct(v['share_of_gap'])} of the majority-to-full gap"
    )
    detail = "; ".join(parts)
    if v["status"] == "beats":
        return f"=> {k} dimensions carry {task}: {v['dims']} ({detail})"
    if v["status"] == "baseline":
        return f"=> no dimension set beats the baselines on {task} ({detail})"
    return (
        f"=> inconclusive on {task}: {k} dimensions {v['dims']} do not clearly beat "
        f"the baselines ({detail})"
    )
