"""Standardised training (and evaluation) columns, prepared once for many engine calls.

Every :meth:`ProbeEngine.fit_score` call standardises the columns it uses and computes the
LDA moments of its start. A search that scores one data set in many calls (the units of
an all-pairs scan, the steps of a greedy search) repeats that work each time: at 10,000
examples and 384 or 768 dimensions it is as much as the fits themselves.
:meth:`ProbeEngine.prepare` does it once and returns a :class:`Prepared`;
:meth:`ProbeEngine.fit_score_prepared` scores any probes on it. ``fit_score`` itself goes
through the same path (it prepares the used columns, then calls the same code), so the two
cannot drift.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import ConfigError
from .scoring import EvalSet, eval_set
from .solvers import LdaStats, RidgeSetup, lda_stats, ridge_setup
from .standardize import standardization_stats, standardized_columns

__all__ = ["Prepared", "same_device"]


@dataclass
class Prepared:
    """The standardised columns ``cols`` of one training set (and evaluation set).

    Attributes:
        cols: ``[Du]`` the columns of the original ``X [n, D]`` held, ascending.
        n_dims: ``D``, the width of the original features.
        mean, scale: ``[D]`` float64 training standardisation (0 / 1 outside ``cols``).
        Xt: ``[Du, n]`` float32 standardised training columns on the device.
        Xe: ``[Du, m]`` float32 standardised evaluation columns, or None.
        y_train: ``[n]`` training labels (float64 targets for regression).
        y_eval: ``[m]`` or None.
        classes: ``[K]`` training classes (None for regression).
        yi: ``[n]`` class index of each training example (None for regression).
        regression: prepared for ridge probes.
    """

    cols: np.ndarray
    n_dims: int
    mean: np.ndarray
    scale: np.ndarray
    Xt: torch.Tensor
    Xe: torch.Tensor | None
    y_train: np.ndarray
    y_eval: np.ndarray | None
    classes: np.ndarray | None
    yi: np.ndarray | None
    regression: bool
    _lda: dict = field(default_factory=dict, repr=False)
    _eval: dict = field(default_factory=dict, repr=False)
    _ridge: RidgeSetup | None = field(default=None, repr=False)

    def __reduce__(self):
        """Pickled as NumPy arrays, without the caches: joblib's process backends then
        memory-map the columns (written once, shared by every unit) instead of copying a
        tensor into each unit; the caches are rebuilt where needed."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name in ("_lda", "_eval", "_ridge"):
            fields.pop(name)
        device = str(self.Xt.device)
        for name in ("Xt", "Xe"):
            if fields[name] is not None:
                fields[name] = fields[name].cpu().numpy()
        return (_rebuild, (fields, device))

    @classmethod
    def build(
        cls,
        X_train: np.ndarray,
        y_train: np.ndarray,
        X_eval: np.ndarray | None,
        y_eval: np.ndarray | None,
        classes: np.ndarray | None,
        yi: np.ndarray | None,
        *,
        cols: np.ndarray,
        device: torch.device,
        regression: bool,
    ) -> Prepared:
        """Standardise the columns ``cols [Du]`` of validated ``X_train [n, D]`` (and
        ``X_eval [m, D]``) with the training statistics of those columns, on ``device``."""
        mean, scale = _column_stats(X_train, cols)
        Xt = standardized_columns(X_train, cols, mean, scale, device)
        Xe = None if X_eval is None else standardized_columns(X_eval, cols, mean, scale, device)
        return cls(
            cols=cols, n_dims=X_train.shape[1], mean=mean, scale=scale, Xt=Xt, Xe=Xe,
            y_train=y_train, y_eval=y_eval, classes=classes, yi=yi, regression=regression,
        )  # fmt: skip

    @property
    def n_classes(self) -> int:
        return 1 if self.classes is None else len(self.classes)

    @property
    def nbytes(self) -> int:
        """Bytes of the standardised columns held on the device."""
        return (self.Xt.numel() + (0 if self.Xe is None else self.Xe.numel())) * 4

    def rows(self, dims: np.ndarray) -> np.ndarray:
        """``dims [B, k]`` (columns of the original features) as rows of :attr:`Xt`.

        Raises:
            ConfigError: a column this preparation does not hold.
        """
        if len(self.cols) == self.n_dims:
            return dims
        pos = np.searchsorted(self.cols, dims)
        ok = (pos < len(self.cols)) & (self.cols[np.minimum(pos, len(self.cols) - 1)] == dims)
        if not ok.all():
            missing = np.unique(dims[~ok])[:10].tolist()
            raise ConfigError(f"dims: columns {missing} were not prepared")
        return pos

    def lda(self, covariance: bool | str, yi_t: torch.Tensor) -> LdaStats:
        """The LDA moments of the binary start (computed once per kind of covariance)."""
        key = "full" if covariance is True else covariance
        if key not in self._lda:
            if covariance == "diag" and "full" in self._lda:
                return self._lda["full"]
            self._lda[key] = lda_stats(self.Xt, yi_t, covariance=covariance)
        return self._lda[key]

    def ridge(self, lam) -> RidgeSetup:
        """The ridge state at penalties ``lam`` (the Gram matrix computed once)."""
        if self._ridge is None:
            self._ridge = ridge_setup(self.Xt, self.y_train, 1.0)
        return dataclasses.replace(self._ridge, lam=lam)

    def eval_set(self, metrics: tuple[str, ...]) -> EvalSet:
        """The evaluation set for ``metrics`` (computed once per metrics tuple)."""
        if self.Xe is None:
            raise ConfigError("these prepared data hold no evaluation set")
        if metrics not in self._eval:
            self._eval[metrics] = eval_set(self.Xe, self.y_eval, metrics, self.classes)
        return self._eval[metrics]


def _rebuild(fields: dict, device: str) -> Prepared:
    """:class:`Prepared` from its pickled fields (see ``Prepared.__reduce__``)."""
    with warnings.catch_warnings():  # memory-mapped columns are read-only; never written
        warnings.simplefilter("ignore", UserWarning)
        for name in ("Xt", "Xe"):
            if fields[name] is not None:
                fields[name] = torch.as_tensor(fields[name], device=device)
    return Prepared(**fields)


def _column_stats(X: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and scale ``[D]`` of ``X [n, D]``, computed on the used ``cols`` only (the
    others: mean 0, scale 1)."""
    D = X.shape[1]
    if len(cols) == D:
        return standardization_stats(X)
    mean_c, scale_c = standardization_stats(X, cols=cols)
    mean, scale = np.zeros(D), np.ones(D)
    mean[cols] = mean_c
    scale[cols] = scale_c
    return mean, scale


def same_device(a: torch.device, b: torch.device) -> bool:
    """``a`` and ``b`` name the same device (``cuda`` and ``cuda:0`` do when 0 is current;
    a tensor reports its index, a device written without one has none)."""
    if a.type != b.type:
        return False
    if a.index is None or b.index is None:
        cur = torch.cuda.current_device() if a.type == "cuda" else 0
        return (a.index if a.index is not None else cur) == (
            b.index if b.index is not None else cur
        )
    return a.index == b.index
