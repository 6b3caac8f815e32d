"""What a search reads: a :class:`FeatureSource` (an ``ActivationCache`` or an
:class:`ArraySource`), its identity, the pairing check of train and eval, its labels."""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import CacheMismatchError, ConfigError, DataError
from ..probes import input_types
from ..provenance import CACHE_IDENTITY_FIELDS, PAIRING_FIELDS, check_same
from ..tasks import TaskSpec

__all__ = [
    "ArraySource",
    "FeatureSource",
    "check_finite",
    "check_pairing",
    "control_types",
    "describe_source",
    "label_map",
    "load_labels",
    "source_identity",
]


@runtime_checkable
class FeatureSource(Protocol):
    """Pooled sentence vectors of every layer, with labels and provenance.

    :class:`probekit.cache.ActivationCache` (a file) and :class:`ArraySource` (arrays in
    memory) both satisfy it; ``n_layers`` counts hidden states (embeddings + blocks).
    """

    @property
    def n_examples(self) -> int: ...
    @property
    def n_layers(self) -> int: ...
    @property
    def hidden_size(self) -> int: ...
    @property
    def pools(self) -> tuple[str, ...]: ...
    @property
    def task(self) -> TaskSpec: ...
    @property
    def labels(self) -> np.ndarray: ...
    @property
    def meta(self) -> dict[str, Any]: ...

    def layer_index(self, layer: int) -> int: ...

    def features(
        self,
        layer: int = -1,
        pool: str = "cls",
        dims: Sequence[int] | np.ndarray | None = None,
        dtype: Any = None,
    ) -> np.ndarray: ...


def _default_task(labels: np.ndarray, regression: bool) -> TaskSpec:
    if regression:
        return TaskSpec("custom", "custom", ("text",), (), True, ("pearson", "spearman"))
    k = int(labels.max()) + 1 if labels.size else 2
    names = tuple(str(i) for i in range(max(k, 2)))
    return TaskSpec("custom", "custom", ("text",), names, False, ("accuracy",))


class ArraySource:
    """Pooled features held in memory: a :class:`FeatureSource`.

    Args:
        features: ``[n_examples, n_layers, hidden]`` (taken as the ``cls`` pool), or a
            mapping ``{pool: [n_examples, n_layers, hidden]}``; a 2-d ``[n_examples, hidden]``
            array is one layer.
        labels: ``[n_examples]`` class indices (int) or regression targets (float).
        task: a :class:`~probekit.tasks.TaskSpec`; by default a generic task with accuracy
            (classification) or Pearson/Spearman (``regression=True``).
        regression: whether ``labels`` are real-valued targets (default: from ``task``).
        name: a label for the source in results.
    """

    def __init__(
        self,
        features: np.ndarray | Mapping[str, np.ndarray],
        labels: np.ndarray,
        *,
        task: TaskSpec | None = None,
        regression: bool | None = None,
        name: str = "arrays",
    ):
        feats = dict(features) if isinstance(features, Mapping) else {"cls": features}
        out = {}
        for p, a in feats.items():
            a = np.asarray(a)
            if a.ndim == 2:
                a = a[:, None, :]
            if a.ndim != 3:
                raise DataError(
                    f"ArraySource: pool {p!r} must be [n_examples, n_layers, hidden], got {a.shape}"
                )
            out[p] = a
        shapes = {a.shape for a in out.values()}
        if len(shapes) != 1:
            raise DataError(f"ArraySource: pools differ in shape: {sorted(shapes)}")
        self._features = out
        self._labels = np.asarray(labels)
        n, _, _ = next(iter(shapes))
        if self._labels.shape != (n,):
            raise DataError(f"ArraySource: labels must be [{n}], got {self._labels.shape}")
        self._task = task or _default_task(self._labels, bool(regression))
        self.name = name
        self.path = None

    @property
    def _shape(self) -> tuple[int, int, int]:
        return next(iter(self._features.values())).shape

    @property
    def n_examples(self) -> int:
        return self._shape[0]

    @property
    def n_layers(self) -> int:
        return self._shape[1]

    @property
    def hidden_size(self) -> int:
        return self._shape[2]

    @property
    def pools(self) -> tuple[str, ...]:
        return tuple(self._features)

    @property
    def task(self) -> TaskSpec:
        return self._task

    @property
    def labels(self) -> np.ndarray:
        return self._labels.copy()

    @property
    def meta(self) -> dict[str, Any]:
        h = hashlib.sha1()
        for p in sorted(self._features):
            a = np.ascontiguousarray(self._features[p])
            h.update(p.encode())
            h.update(str(a.shape).encode() + str(a.dtype).encode())
            h.update(a.tobytes())
        h.update(np.ascontiguousarray(self._labels).tobytes())
        return {
            "source": self.name,
            "data_hash": h.hexdigest(),
            "task": self._task.name,
            "n_examples": self.n_examples,
            "n_layers": self.n_layers,
            "hidden_size": self.hidden_size,
        }

    def layer_index(self, layer: int) -> int:
        L = self.n_layers
        li = int(layer) + L if int(layer) < 0 else int(layer)
        if not 0 <= li < L:
            raise ConfigError(f"layer {layer} is out of range ({L} layers: 0..{L - 1} or -{L}..-1)")
        return li

    def features(
        self,
        layer: int = -1,
        pool: str = "cls",
        dims: Sequence[int] | np.ndarray | None = None,
        dtype: Any = None,
    ) -> np.ndarray:
        """``[n_examples, n_dims]`` of one layer and pool."""
        if pool not in self._features:
            raise ConfigError(f"pool {pool!r} is not available; available: {', '.join(self.pools)}")
        X = self._features[pool][:, self.layer_index(layer), :]
        if dims is not None:
            X = X[:, np.asarray(dims, dtype=np.int64)]
        return X if dtype is None else X.astype(dtype, copy=False)


def _shape_of(src: FeatureSource) -> dict[str, int]:
    return {
        "n_examples": int(src.n_examples),
        "n_layers": int(src.n_layers),
        "hidden_size": int(src.hidden_size),
    }


def source_identity(src: FeatureSource) -> dict[str, Any]:
    """What identifies a source for checkpoints and results: the cache identity fields of
    :mod:`probekit.provenance` that it has (model and data hashes, task, split, ...), its
    shape, and its ``source`` label; not its creation time or path."""
    meta = src.meta
    ident = {k: meta[k] for k in (*CACHE_IDENTITY_FIELDS, "source") if k in meta}
    ident.update(_shape_of(src))
    return ident


def describe_source(src: FeatureSource) -> dict[str, Any]:
    """:func:`source_identity` plus the path, when the source is a file."""
    d = source_identity(src)
    path = getattr(src, "path", None)
    if path is not None:
        d["path"] = str(path)
    return d


def _name(src: FeatureSource, role: str) -> str:
    path = getattr(src, "path", None)
    return f"{role} source {path}" if path is not None else f"{role} source"


def check_pairing(train: FeatureSource, eval: FeatureSource) -> None:
    """Refuse a train and an eval source that cannot be probed together.

    They must agree on :data:`probekit.provenance.PAIRING_FIELDS` (model, tokenizer, shape,
    max_length, task) and on regression vs classification.

    Raises:
        CacheMismatchError: naming both sources and every field that differs.
    """

    def pairing(src: FeatureSource) -> dict[str, Any]:
        return dict(src.meta, **_shape_of(src), task=src.task.name)

    check_same(
        pairing(train),
        pairing(eval),
        PAIRING_FIELDS,
        what_a=_name(train, "train"),
        what_b=_name(eval, "eval"),
    )
    if train.task.regression != eval.task.regression:
        raise CacheMismatchError("train and eval sources disagree on regression vs classification")
    if not train.task.regression:
        label_map(train, eval)


def label_map(train: FeatureSource, eval: FeatureSource) -> np.ndarray | None:
    """Where each of ``eval``'s label names sits in ``train``'s label set (``[n_eval_labels]``
    int64), or None when the two sets are the same list.

    Label sets are compared by name: an eval set that is a subset of the train set (a file
    holding only "pos") is aligned onto it; a train set that is a subset of the eval set is
    accepted when the eval examples only use the train's labels.

    Raises:
        CacheMismatchError: naming both sources and both label lists, when eval examples
            carry labels the train set lacks.
    """
    tn, en = tuple(train.task.label_names), tuple(eval.task.label_names)
    if tn == en or not tn or not en:
        return None
    pos = {n: i for i, n in enumerate(tn)}
    missing = [n for n in en if n not in pos]
    if missing:
        y = np.asarray(eval.labels).astype(np.int64)
        used = {en[i] for i in np.unique(y[(y >= 0) & (y < len(en))]).tolist()}
        if used & set(missing):
            raise CacheMismatchError(
                f"{_name(train, 'train')} and {_name(eval, 'eval')} have different label sets: "
                f"{list(tn)} vs {list(en)} (eval labels {sorted(used & set(missing))} are not "
                "in the train set); extract both with the same --task or the same labels"
            )
    return np.asarray([pos.get(n, -1) for n in en], dtype=np.int64)


def load_labels(
    src: FeatureSource,
    regression: bool,
    role: str,
    *,
    train: FeatureSource | None = None,
) -> np.ndarray:
    """``[n_examples]`` float64 targets or int64 classes of ``src``; refuses NaN targets,
    unlabelled (-1) examples and class indices outside the label set, naming ``role``
    (train / eval) and the file. With ``train`` (for an eval source), classes are given as
    indices into ``train``'s label set (:func:`label_map`)."""
    y = src.labels
    where = f"{role} ({getattr(src, 'path', None) or 'arrays'})"
    if not regression:
        y = _checked_classes(src, y, where)
        if train is not None:
            m = label_map(train, src)
            if m is not None:
                y = m[y]
        return y
    y = y.astype(np.float64)
    if not np.isfinite(y).all():
        raise DataError(f"{where}: regression targets contain NaN")
    return y


def _checked_classes(src: FeatureSource, y: np.ndarray, where: str) -> np.ndarray:
    y = np.asarray(y)
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise DataError(f"{where}: class labels contain NaN")
    y = y.astype(np.int64)
    if (y < 0).any():
        raise DataError(
            f"{where}: {int((y < 0).sum())} examples are unlabelled (-1); searches need "
            "labelled train and eval data"
        )
    k = len(src.task.label_names)
    if k and (y >= k).any():
        bad = sorted(set(y[y >= k].tolist()))
        raise DataError(
            f"{where}: label indices {bad[:5]} are outside the label set "
            f"{list(src.task.label_names)} (0..{k - 1}); the cache is corrupt or was edited"
        )
    return y


def check_finite(X: np.ndarray, src: FeatureSource, role: str, what: str = "") -> None:
    """Refuse features ``[n_examples, n_dims]`` holding NaN or inf, naming the file and rows."""
    ok = np.isfinite(X).all(axis=tuple(range(1, X.ndim))) if X.ndim > 1 else np.isfinite(X)
    if not ok.all():
        rows = np.flatnonzero(~ok)
        raise DataError(
            f"{role} ({getattr(src, 'path', None) or 'arrays'}): {rows.size} examples have "
            f"non-finite (NaN/inf) features{' in ' + what if what else ''}, first rows "
            f"{rows[:5].tolist()}; re-extract the cache"
        )


def control_types(src: FeatureSource) -> list[Hashable] | None:
    """Hewitt & Liang control-task input types of every example of ``src`` (the first content
    token, :func:`probekit.probes.input_types`), or None when ``src`` holds no token fields
    (a cache extracted with ``--no-tokens``, or arrays)."""
    if not getattr(src, "has_tokens", False):
        return None
    return input_types(
        src.token_field("input_ids"), src.offsets, src.token_field("special_tokens_mask")
    )
