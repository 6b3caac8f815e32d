"""Linear probes: a scikit-learn estimator and a batched PyTorch engine.

One objective per probe kind, the same in every code path:

* **classification**: L2-regularised logistic regression exactly as scikit-learn's
  ``LogisticRegression(C=C)``: ``C * sum_i logloss_i + 0.5 * ||W||^2``, intercept not
  penalised; a single weight vector (sigmoid) for two classes, multinomial (softmax, one
  weight vector per class, all penalised) for more;
* **regression**: ridge, ``sum_i (y_i - f_i)^2 + alpha * ||w||^2`` with ``alpha = 1 / C``
  (the squared-loss analogue of the logistic objective above; ``Ridge(alpha=1/C)``),
  intercept not penalised.

Features are standardised with the mean and (population) standard deviation of the
training data only, as ``sklearn.preprocessing.StandardScaler`` does; a constant feature
keeps scale 1.

The package, from the bottom up:

* :mod:`.standardize`: input checks and standardisation statistics;
* :mod:`.kernels`: the sums over examples (fused explicit sums for small k, batched matrix
  products otherwise, shared-column GEMMs for greedy steps), the ``torch.compile`` wrapper
  and the eager dispatch; :mod:`.pair_kernels`: eager sums of pair probes on the CPU, grouped
  by shared first column; :mod:`.tiling`: cache-sized tiles for eager kernels, run on
  worker threads of one torch thread each;
* :mod:`.newton`: the one damped-Newton scaffold (step halving, convergence test);
* :mod:`.solvers`: binary and multinomial logistic Newton on that scaffold, ridge in closed
  form, the LDA start, and the per-run state they share (typed dataclasses);
* :mod:`.scoring`: scoring on eval in the same pass;
* :mod:`.inputs`: the checks of every engine call (features, labels, dims, C, metrics);
* :mod:`.native`: C kernels on the CPU, built once per machine: pairs, and the wide logistic
  truncated Newton whose source is :mod:`.native_newton`;
* :mod:`.engine`: :class:`ProbeEngine` (validate, standardise, plan chunks, dispatch);
  :mod:`.prepared`: :class:`Prepared`, standardised columns shared by many calls;
  :mod:`.results`: what it returns (:class:`ProbeScores` with :class:`FitStats`,
  :class:`ProbeFit`);
* :mod:`.splits`: the seeded validation split of train (:func:`train_val_split`);
* :mod:`.cselect`: ``C="auto"``: :func:`select_C` fits a grid of ``C`` in one batch on the
  validation split and chooses by the primary metric (:class:`CSelection`);
* :mod:`.baselines`: baselines, control tasks (Hewitt & Liang, 2019) and
  :func:`evaluate_probe`, the whole record of one fixed-dims probe;
* :mod:`.estimator`: :class:`LinearProbe`, a scikit-learn estimator whose
  ``backend="sklearn"`` uses scikit-learn and ``backend="torch"`` the engine;
* :mod:`.rankings`: the peers' dimension rankings (mean-diff, f-stat, l1, lca, Gaussian MI)
  from one pass of class moments;
* :mod:`.newton_cg`: a matrix-free truncated Newton (batched Hessian-vector products over a
  whole ``C`` grid) that :func:`select_C` uses to choose ``C`` for wide logistic probes;
* :mod:`.mdl`: Voita & Titov's online codelength of a dimension set, on the engine;
* :mod:`.ablation`: a set's score without it and after LEACE erasure of it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ..dims import parse_dims
from .ablation import SetEraser, ablate, fit_set_eraser
from .baselines import (
    control_task_baseline,
    control_task_labels,
    evaluate_probe,
    input_types,
    majority_baseline,
    random_dims_baseline,
    selectivity,
    train_val_split,
)
from .cselect import AUTO, DEFAULT_C_GRID, CSelection, c_grid, parse_C, refit_wide, select_C
from .engine import ProbeEngine
from .kernels import SMALL_K
from .mdl import MDL_FRACTIONS, MDLResult, online_codelength
from .newton import convergence_rule
from .prepared import Prepared
from .rankings import RANKING_METHODS, Ranking, class_moments, rank_dimensions
from .results import FitStats, ProbeFit, ProbeScores
from .standardize import standardization_stats

if TYPE_CHECKING:
    from .estimator import LinearProbe, sklearn_select_C

#: names imported on first use: the scikit-learn estimator costs about 1.2 s of import
#: (scipy.stats, pandas) that a search, which never uses it, should not pay
_LAZY = {"LinearProbe": "estimator", "sklearn_select_C": "estimator"}

__all__ = [
    "AUTO",
    "DEFAULT_C_GRID",
    "MDL_FRACTIONS",
    "RANKING_METHODS",
    "SMALL_K",
    "CSelection",
    "FitStats",
    "LinearProbe",
    "MDLResult",
    "Prepared",
    "ProbeEngine",
    "ProbeFit",
    "ProbeScores",
    "Ranking",
    "SetEraser",
    "ablate",
    "c_grid",
    "class_moments",
    "control_task_baseline",
    "control_task_labels",
    "convergence_rule",
    "evaluate_probe",
    "fit_set_eraser",
    "input_types",
    "majority_baseline",
    "online_codelength",
    "parse_C",
    "parse_dims",
    "random_dims_baseline",
    "rank_dimensions",
    "refit_wide",
    "select_C",
    "selectivity",
    "sklearn_select_C",
    "standardization_stats",
    "train_val_split",
]


def __getattr__(name: str) -> Any:
    """``probekit.probes.NAME`` for the lazily imported names (:data:`_LAZY`)."""
    home = _LAZY.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
