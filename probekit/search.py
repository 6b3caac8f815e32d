"""Dimension search over an activation cache.

Which few dimensions, of which layer and which token, carry a task, and how sure can we be?
Six searches, each a function here and a CLI verb (``probekit search VERB``):

* :func:`singles`: every dimension of every layer, scored by the exactly best threshold (a
  stump, :mod:`probekit.stumps`) and by a one-dimension probe; ranked.
* :func:`pairs`: all ``C(D, 2)`` pairs of one layer; the top pairs and the full score matrix.
* :func:`greedy`: forward selection up to ``k`` dimensions, or until the validation score is
  within a fraction of the full-dimension score; each step scores all candidates as one batch.
* :func:`eliminate`: the remove-one procedure of Fukuhata & Kano (2025): from a starting set
  (random dimensions, a given list, or all of them) remove one dimension at a time, recording
  the drop every removal would cause; then score all pairs among the survivors.
* :func:`layers`: per layer, the full-dimension score, the best pair and the greedy-k score.
* :func:`tokens`: ``cls`` vs ``mean`` vs ``max_norm`` pooling, at full width and at k dims.

**Protocol.** Selection (which dimension, which pair) only ever looks at a validation split
carved from the training cache (:func:`probekit.probes.train_val_split`); candidates are
ranked by the task's primary metric on it, ties broken by the validation loss
(``criterion="metric"``), or by the validation loss (``criterion="loss"``: smoother, less
prone to fitting the noise of a small validation split). Reported
scores (``metrics``) come from a probe refitted on the whole training cache and scored on the
evaluation cache (dev). Every result carries the full-dimension score, a random-dimension
baseline of the same size (``n_random`` draws: mean, spread, all scores), the majority
baseline, the seed, the configuration, library versions and the wall time. ``repeats > 1``
reruns the selection over other validation splits (``resample="split"``) or bootstrap
resamples of the fitting part (``resample="bootstrap"``) and reports how often each
dimension is chosen and the Jaccard overlap of the chosen sets.

**Resumable.** With ``out_dir`` given, every unit of work (a greedy step, a chunk of pairs,
a layer, a pool, a repeat) is checkpointed atomically under
``out_dir/.probekit-ckpt/<verb>-<key>/``, where the key hashes the configuration and the
identities of the input caches (model and data hashes). Running the same search again
continues where it stopped; other arguments or other inputs start afresh.

**Scale out.** Fan-out over layers, pools, repeats and chunks of pairs inside a search, and
over whole searches (tasks, models, seeds: :func:`run_many`), uses :class:`joblib.Parallel`
without naming a backend, so the caller chooses it:
``with joblib.parallel_config(backend="dask"): greedy(...)`` runs on a Dask cluster.

**Data.** Searches take *sources*: an :class:`~probekit.cache.ActivationCache` or, for
arrays in memory, an :class:`ArraySource`. Probes are fitted by
:class:`~probekit.probes.ProbeEngine` (batched Newton); this module has no solver of its own.

Outputs (:meth:`SearchResult.save`): ``<verb>.json`` and ``<verb>.csv`` in ``out_dir``
(``pairs_matrix.npy`` for :func:`pairs`), read by :mod:`probekit.report`.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import logging
import math
import os
import platform
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from joblib import Parallel, delayed

from .errors import CacheMismatchError, ConfigError, DataError
from .probes import ProbeEngine, majority_baseline, random_dims_baseline, train_val_split
from .stumps import fit_stumps, predict_stumps
from .tasks import TaskSpec

logger = logging.getLogger(__name__)

__all__ = [
    "VERBS",
    "ArraySource",
    "Checkpoint",
    "SearchResult",
    "eliminate",
    "greedy",
    "jaccard",
    "layers",
    "pairs",
    "run_many",
    "run_search",
    "singles",
    "source_identity",
    "stability",
    "tokens",
]

VERBS = ("singles", "pairs", "greedy", "eliminate", "layers", "tokens")
RESULT_SCHEMA = "probekit-search"
RESULT_SCHEMA_VERSION = 1


# ============================================================================ sources


class ArraySource:
    """Pooled features held in memory, with the reading API of an ``ActivationCache``.

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
        n, L, H = next(iter(shapes))
        if self._labels.shape != (n,):
            raise DataError(f"ArraySource: labels must be [{n}], got {self._labels.shape}")
        if task is None:
            reg = bool(regression) if regression is not None else False
            if reg:
                task = TaskSpec("custom", "custom", ("text",), (), True, ("pearson", "spearman"))
            else:
                k = int(self._labels.max()) + 1 if self._labels.size else 2
                task = TaskSpec(
                    "custom",
                    "custom",
                    ("text",),
                    tuple(str(i) for i in range(max(k, 2))),
                    False,
                    ("accuracy",),
                )
        self._task = task
        self.name = name
        self.path = None

    @property
    def n_examples(self) -> int:
        return next(iter(self._features.values())).shape[0]

    @property
    def n_layers(self) -> int:
        return next(iter(self._features.values())).shape[1]

    @property
    def hidden_size(self) -> int:
        return next(iter(self._features.values())).shape[2]

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

    def features(self, layer: int = -1, pool: str = "cls", dims=None, dtype=None) -> np.ndarray:
        """``[n_examples, n_dims]`` of one layer and pool."""
        if pool not in self._features:
            raise ConfigError(f"pool {pool!r} is not available; available: {', '.join(self.pools)}")
        X = self._features[pool][:, self.layer_index(layer), :]
        if dims is not None:
            X = X[:, np.asarray(dims, dtype=np.int64)]
        return X if dtype is None else X.astype(dtype, copy=False)


_IDENTITY_KEYS = (
    "model_hash",
    "data_hash",
    "full_data_hash",
    "task",
    "split",
    "tokenizer",
    "max_length",
    "storage_dtype",
    "shard",
    "source",
)


def source_identity(src: Any) -> dict[str, Any]:
    """What identifies a source for checkpoints and results: model/data hashes, task, split,
    shape (not its creation time or path)."""
    meta = src.meta
    ident = {k: meta[k] for k in _IDENTITY_KEYS if k in meta}
    ident.update(
        n_examples=int(src.n_examples), n_layers=int(src.n_layers), hidden_size=int(src.hidden_size)
    )
    return ident


def _describe_source(src: Any) -> dict[str, Any]:
    d = source_identity(src)
    path = getattr(src, "path", None)
    if path is not None:
        d["path"] = str(path)
    return d


def _check_sources(train: Any, dev: Any) -> None:
    for attr in ("hidden_size", "n_layers"):
        a, b = getattr(train, attr), getattr(dev, attr)
        if a != b:
            raise CacheMismatchError(
                f"train and eval sources differ in {attr}: {a} vs {b} "
                f"({getattr(train, 'path', 'train')} vs {getattr(dev, 'path', 'eval')})"
            )
    mt, md = train.meta, dev.meta
    if mt.get("model_hash") and md.get("model_hash") and mt["model_hash"] != md["model_hash"]:
        raise CacheMismatchError(
            f"train and eval caches come from different models "
            f"({mt.get('model')} {mt['model_hash'][:12]} vs {md.get('model')} {md['model_hash'][:12]})"
        )
    if train.task.name != dev.task.name:
        raise CacheMismatchError(
            f"train and eval caches are of different tasks: {train.task.name} vs {dev.task.name}"
        )
    if train.task.regression != dev.task.regression:
        raise CacheMismatchError("train and eval sources disagree on regression vs classification")


def _labels_of(src: Any, regression: bool, what: str) -> np.ndarray:
    y = src.labels
    if regression:
        y = y.astype(np.float64)
        if not np.isfinite(y).all():
            raise DataError(
                f"{what} ({getattr(src, 'path', None) or 'arrays'}): regression targets contain NaN"
            )
    else:
        y = y.astype(np.int64)
        if (y < 0).any():
            raise DataError(
                f"{what} ({getattr(src, 'path', None) or 'arrays'}): {int((y < 0).sum())} examples "
                "are unlabelled (-1); searches need labelled train and eval data"
            )
    return y


# ============================================================================ checkpoints


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _jsonable(o: Any) -> Any:
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, np.ndarray):
        return _jsonable(o.tolist())
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating, float)):
        v = float(o)
        return v if math.isfinite(v) else None
    if isinstance(o, (np.bool_,)):
        return bool(o)
    if isinstance(o, Path):
        return str(o)
    return o


class Checkpoint:
    """Atomic per-unit checkpoints of one search, keyed by a hash of its arguments and inputs.

    ``Checkpoint(None, ...)`` is a no-op (nothing saved, nothing loaded). Picklable (paths
    only), so joblib workers write their own units.
    """

    def __init__(self, out_dir: str | Path | None, verb: str, key: Mapping[str, Any]):
        self.key = _hash(key)
        self.dir = (
            None
            if out_dir is None
            else Path(out_dir) / ".probekit-ckpt" / f"{verb}-{self.key[:16]}"
        )
        if self.dir is not None:
            self.dir.mkdir(parents=True, exist_ok=True)
            kp = self.dir / "key.json"
            if not kp.exists():
                _atomic_write_text(
                    kp, json.dumps(_jsonable(dict(key)), indent=1, sort_keys=True, default=str)
                )

    def _p(self, unit: str, ext: str) -> Path:
        return self.dir / f"{unit}.{ext}"

    def load(self, unit: str) -> Any:
        """The saved object of ``unit``, or None."""
        if self.dir is None:
            return None
        p = self._p(unit, "json")
        if not p.exists():
            return None
        try:
            return json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            logger.warning("ignoring unreadable checkpoint %s", p)
            return None

    def save(self, unit: str, obj: Any) -> None:
        if self.dir is not None:
            _atomic_write_text(self._p(unit, "json"), json.dumps(_jsonable(obj)))

    def load_array(self, unit: str) -> np.ndarray | None:
        if self.dir is None:
            return None
        p = self._p(unit, "npy")
        if not p.exists():
            return None
        try:
            return np.load(p)
        except (OSError, ValueError):
            return None

    def save_array(self, unit: str, arr: np.ndarray) -> None:
        if self.dir is None:
            return
        p = self._p(unit, "npy")
        tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp.npy")
        np.save(tmp, arr)
        os.replace(tmp, p)


# ============================================================================ the probing problem


@dataclass
class _Settings:
    """Probe and protocol settings shared by all searches (plain values; picklable)."""

    regression: bool
    metrics: tuple[str, ...]
    C: float = 1.0
    device: str = "cpu"
    memory_budget: int = 2 * 2**30
    val_fraction: float = 0.2
    n_random: int = 20
    seed: int = 0
    criterion: str = "metric"

    @property
    def primary(self) -> str:
        return self.metrics[0]

    def engine(self) -> ProbeEngine:
        return ProbeEngine(
            regression=self.regression,
            C=self.C,
            device=self.device,
            memory_budget=self.memory_budget,
        )


class _Problem:
    """One (layer, pool) of a train/dev pair with its validation split.

    ``select(dims)`` fits on the fitting part and scores on validation (for choosing);
    ``report(dims)`` fits on the whole training set and scores on dev (for reporting).
    """

    def __init__(
        self,
        X_train: np.ndarray,
        y_train: np.ndarray,
        X_dev: np.ndarray,
        y_dev: np.ndarray,
        st: _Settings,
        *,
        split_seed: int | None = None,
        bootstrap_seed: int | None = None,
    ):
        self.X_train, self.y_train, self.X_dev, self.y_dev, self.st = (
            X_train,
            y_train,
            X_dev,
            y_dev,
            st,
        )
        self.D = X_train.shape[1]
        seed = st.seed if split_seed is None else split_seed
        idx_fit, idx_val = train_val_split(y_train, val_fraction=st.val_fraction, seed=seed)
        if bootstrap_seed is not None:
            rng = np.random.default_rng(bootstrap_seed)
            idx_fit = np.sort(rng.choice(idx_fit, size=len(idx_fit), replace=True))
        self.idx_fit, self.idx_val = idx_fit, idx_val
        self.X_fit, self.y_fit = X_train[idx_fit], y_train[idx_fit]
        self.X_val, self.y_val = X_train[idx_val], y_train[idx_val]
        self.engine = st.engine()

    def select(self, dims: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Validation ``(primary metric [B], loss [B])`` of probes on ``dims [B, k]``."""
        sc = self.engine.fit_score(
            self.X_fit,
            self.y_fit,
            self.X_val,
            self.y_val,
            np.asarray(dims),
            metrics=(self.st.primary,),
        )
        return sc[self.st.primary], sc["loss"]

    def report(self, dims: np.ndarray) -> dict[str, np.ndarray]:
        """Dev ``{metric: [B]}`` of probes on ``dims [B, k]`` refitted on all training data."""
        sc = self.engine.fit_score(
            self.X_train,
            self.y_train,
            self.X_dev,
            self.y_dev,
            np.asarray(dims),
            metrics=self.st.metrics,
        )
        return {m: sc[m] for m in self.st.metrics}

    def report_one(self, dims: Sequence[int]) -> dict[str, float]:
        return {
            m: float(v[0])
            for m, v in self.report(np.asarray(dims, dtype=np.int64)[None, :]).items()
        }

    def full(self) -> dict[str, float]:
        return self.report_one(np.arange(self.D))

    def full_val(self) -> float:
        s, _ = self.select(np.arange(self.D)[None, :])
        return float(s[0])

    def random(self, k: int, seed: int | None = None) -> dict[str, Any]:
        out = random_dims_baseline(
            self.engine,
            self.X_train,
            self.y_train,
            self.X_dev,
            self.y_dev,
            k,
            n_draws=self.st.n_random,
            seed=self.st.seed if seed is None else seed,
            metrics=self.st.metrics,
        )
        return out

    def majority(self) -> dict[str, float]:
        return majority_baseline(
            self.y_train, self.y_dev, self.st.metrics, regression=self.st.regression
        )


def _order(score: np.ndarray, loss: np.ndarray, criterion: str = "metric") -> np.ndarray:
    """Indices best-first. ``metric``: highest score (NaN last), then lowest loss, then lowest
    index; ``loss``: lowest loss first, then highest score, then lowest index."""
    s = np.where(np.isfinite(score), score, -np.inf)
    l = np.where(np.isfinite(loss), loss, np.inf)
    if criterion == "loss":
        return np.lexsort((np.arange(len(s)), -s, l))
    return np.lexsort((np.arange(len(s)), l, -s))


def jaccard(a: Iterable[int], b: Iterable[int]) -> float:
    """``|a & b| / |a | b|`` (1.0 for two empty sets)."""
    a, b = set(a), set(b)
    return 1.0 if not a and not b else len(a & b) / len(a | b)


def stability(sets: Sequence[Sequence[int]]) -> dict[str, Any]:
    """How stable a selection is over repeats.

    Args:
        sets: the chosen dimension sets, one per repeat.

    Returns:
        ``{"n_repeats", "frequency": {dim: fraction of repeats choosing it} (most frequent
        first), "jaccard_mean", "jaccard_min", "jaccard": [R][R] matrix, "sets"}``.
    """
    R = len(sets)
    counts: dict[int, int] = {}
    for s in sets:
        for d in set(s):
            counts[int(d)] = counts.get(int(d), 0) + 1
    freq = {d: c / R for d, c in sorted(counts.items(), key=lambda t: (-t[1], t[0]))}
    J = np.ones((R, R))
    for i, j in itertools.combinations(range(R), 2):
        J[i, j] = J[j, i] = jaccard(sets[i], sets[j])
    off = J[~np.eye(R, dtype=bool)]
    return {
        "n_repeats": R,
        "frequency": freq,
        "jaccard_mean": float(off.mean()) if off.size else 1.0,
        "jaccard_min": float(off.min()) if off.size else 1.0,
        "jaccard": J.tolist(),
        "sets": [[int(d) for d in s] for s in sets],
    }


# ============================================================================ results


@dataclass
class SearchResult:
    """The outcome of one search.

    Attributes:
        verb: which search (``singles``, ``pairs``, ``greedy``, ``eliminate``, ``layers``, ``tokens``).
        data: everything for ``<verb>.json`` (``selected``, ``metrics``, ``full_metrics``,
            ``random_baseline``, ``elapsed_s``, ``config``, ...).
        rows: the table for ``<verb>.csv`` (one dict per row).
        arrays: extra arrays saved as ``<name>.npy`` (e.g. ``pairs_matrix``).
    """

    verb: str
    data: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    @property
    def selected(self) -> list[int]:
        return list(self.data.get("selected", []))

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``<verb>.json``, ``<verb>.csv`` and the arrays into ``out_dir``; returns the paths."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name, arr in self.arrays.items():
            p = out / f"{name}.npy"
            tmp = out / f".{name}.{os.getpid()}.tmp.npy"
            np.save(tmp, arr)
            os.replace(tmp, p)
            paths[name] = p
        p = out / f"{self.verb}.json"
        _atomic_write_text(p, json.dumps(_jsonable(self.data), indent=1))
        paths["json"] = p
        p = out / f"{self.verb}.csv"
        if self.rows:
            cols: list[str] = []
            for r in self.rows:
                cols += [c for c in r if c not in cols]
            tmp = out / f".{self.verb}.{os.getpid()}.tmp.csv"
            with open(tmp, "w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=cols)
                w.writeheader()
                for r in self.rows:
                    w.writerow({k: _csv_value(v) for k, v in r.items()})
            os.replace(tmp, p)
            paths["csv"] = p
        return paths


def _csv_value(v: Any) -> Any:
    if isinstance(v, (list, tuple, np.ndarray)):
        return " ".join(str(int(x)) if isinstance(x, (int, np.integer)) else str(x) for x in v)
    if isinstance(v, (float, np.floating)):
        return "" if not math.isfinite(float(v)) else f"{float(v):.6g}"
    return v


def _versions() -> dict[str, str]:
    import joblib
    import sklearn
    import torch

    from . import __version__

    return {
        "probekit": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "scikit-learn": sklearn.__version__,
        "joblib": joblib.__version__,
    }


# ============================================================================ common driver


def _settings(
    train: Any,
    metrics: Sequence[str] | None,
    *,
    C: float,
    device: str,
    memory_budget: int,
    val_fraction: float,
    n_random: int,
    seed: int,
    criterion: str = "metric",
) -> _Settings:
    task = train.task
    mets = tuple(metrics) if metrics else tuple(task.metrics)
    if n_random < 1:
        raise ConfigError(f"n_random must be >= 1 (random baseline draws), got {n_random}")
    if not 0 < val_fraction < 1:
        raise ConfigError(f"val_fraction must lie in (0, 1), got {val_fraction}")
    if criterion not in ("metric", "loss"):
        raise ConfigError(
            f"criterion must be 'metric' (the task's primary metric on validation, loss breaks ties) "
            f"or 'loss' (validation log-loss / MSE), got {criterion!r}"
        )
    return _Settings(
        criterion=criterion,
        regression=bool(task.regression),
        metrics=mets,
        C=float(C),
        device=str(device),
        memory_budget=int(memory_budget),
        val_fraction=float(val_fraction),
        n_random=int(n_random),
        seed=int(seed),
    )


class _Run:
    """Shared set-up of a search: sources checked, labels loaded, checkpoint opened, clock started."""

    def __init__(
        self,
        verb: str,
        train: Any,
        dev: Any,
        config: dict[str, Any],
        *,
        out_dir,
        metrics,
        C,
        device,
        memory_budget,
        val_fraction,
        n_random,
        seed,
        criterion="metric",
    ):
        self.t0 = time.perf_counter()
        self.verb = verb
        _check_sources(train, dev)
        self.train, self.dev = train, dev
        self.st = _settings(
            train,
            metrics,
            C=C,
            device=device,
            memory_budget=memory_budget,
            val_fraction=val_fraction,
            n_random=n_random,
            seed=seed,
            criterion=criterion,
        )
        self.y_train = _labels_of(train, self.st.regression, "train")
        self.y_dev = _labels_of(dev, self.st.regression, "eval")
        self.config = dict(
            config,
            metrics=list(self.st.metrics),
            C=self.st.C,
            val_fraction=self.st.val_fraction,
            n_random=self.st.n_random,
            seed=self.st.seed,
            criterion=self.st.criterion,
        )
        key = {
            "verb": verb,
            "config": self.config,
            "train": source_identity(train),
            "eval": source_identity(dev),
            "schema": RESULT_SCHEMA_VERSION,
        }
        self.ckpt = Checkpoint(out_dir, verb, key)
        self.out_dir = out_dir

    def X(self, src: Any, layer: int, pool: str) -> np.ndarray:
        return np.asarray(src.features(layer, pool, dtype=np.float32))

    def problem(self, layer: int, pool: str, **kw) -> _Problem:
        return _Problem(
            self.X(self.train, layer, pool),
            self.y_train,
            self.X(self.dev, layer, pool),
            self.y_dev,
            self.st,
            **kw,
        )

    def header(self) -> dict[str, Any]:
        return {
            "schema": RESULT_SCHEMA,
            "schema_version": RESULT_SCHEMA_VERSION,
            "verb": self.verb,
            "task": self.train.task.name,
            "metric_names": list(self.st.metrics),
            "primary_metric": self.st.primary,
            "seed": self.st.seed,
            "config": self.config,
            "train": _describe_source(self.train),
            "eval": _describe_source(self.dev),
            "versions": _versions(),
            "protocol": (
                f"selection on a {self.st.val_fraction:g} validation split of train (seeded); reported "
                "metrics from probes refitted on all of train, scored on eval"
            ),
        }

    def finish(
        self,
        data: dict[str, Any],
        rows: list[dict[str, Any]],
        arrays: dict[str, np.ndarray] | None = None,
    ) -> SearchResult:
        out = self.header()
        out.update(data)
        out["elapsed_s"] = time.perf_counter() - self.t0
        out["checkpoint"] = None if self.ckpt.dir is None else str(self.ckpt.dir)
        res = SearchResult(self.verb, out, rows, arrays or {})
        if self.out_dir is not None:
            res.save(self.out_dir)
        logger.info("%s done in %.2fs", self.verb, out["elapsed_s"])
        return res


def _parallel(n_jobs: int | None) -> Parallel:
    return Parallel(n_jobs=n_jobs)


def _layers_arg(src: Any, layers: Sequence[int] | None) -> list[int]:
    if layers is None:
        return list(range(src.n_layers))
    out = [src.layer_index(l) for l in layers]
    if len(set(out)) != len(out):
        raise ConfigError(f"layers: repeated layers in {list(layers)}")
    return out


def _dim_list(v: Any) -> list[int]:
    return [int(x) for x in v]


def _metrics_row(prefix: str, d: Mapping[str, float]) -> dict[str, float]:
    return {f"{prefix}{m}": v for m, v in d.items()}


# ============================================================================ singles


def _best_greedy(per: Sequence[Mapping[str, Any]], metric: str) -> Mapping[str, Any]:
    """The unit (layer or pool) whose greedy-k set scores best on dev; missing scores rank last."""
    return max(
        per,
        key=lambda r: (
            r["greedy_metrics"][metric] if r["greedy_metrics"][metric] is not None else -np.inf
        ),
    )


def _greedy_cells(r: Mapping[str, Any], k: int) -> dict[str, Any]:
    """CSV cells of a unit's greedy-k result and its random-k baseline."""
    cells: dict[str, Any] = {"greedy_selected": r["greedy_selected"]}
    cells.update(_metrics_row(f"greedy{k}_", r["greedy_metrics"]))
    cells.update(_metrics_row(f"random{k}_mean_", r["random_baseline"]["mean"]))
    cells.update(_metrics_row(f"random{k}_std_", r["random_baseline"]["std"]))
    return cells


def _singles_layer(
    X_train, y_train, X_dev, y_dev, st: _Settings, layer: int, probe: bool, ckpt: Checkpoint
) -> dict[str, Any]:
    done = ckpt.load(f"layer-{layer}")
    if done is not None:
        return done
    t0 = time.perf_counter()
    pb = _Problem(X_train, y_train, X_dev, y_dev, st)
    D = pb.D
    n_classes = None if st.regression else int(max(y_train.max(), y_dev.max()) + 1)
    # stumps: thresholds chosen on the fitting part (ranked on validation), refitted on all train for dev
    from .metrics import batch_metrics

    sf = fit_stumps(
        pb.X_fit, pb.y_fit, regression=st.regression, metric=st.primary, n_classes=n_classes
    )
    stump_val = batch_metrics((st.primary,), pb.y_val, predict_stumps(sf, pb.X_val))[st.primary]
    sa = fit_stumps(
        X_train, y_train, regression=st.regression, metric=st.primary, n_classes=n_classes
    )
    stump_dev = batch_metrics(st.metrics, y_dev, predict_stumps(sa, X_dev))
    out: dict[str, Any] = {
        "layer": layer,
        "stump_threshold": sa.threshold,
        "stump_train": sa.train_score,
        "stump_val": stump_val,
        "stump_dev": stump_dev,
        "stump_s": time.perf_counter() - t0,
    }
    if probe:
        dims = np.arange(D)[:, None]
        pv, pl = pb.select(dims)
        out["probe_val"] = pv
        out["probe_val_loss"] = pl
        out["probe_dev"] = pb.report(dims)
    out["full_metrics"] = pb.full()
    out["random_baseline"] = pb.random(1)
    out["elapsed_s"] = time.perf_counter() - t0
    out = _jsonable(out)
    ckpt.save(f"layer-{layer}", out)
    return out


def singles(
    train: Any,
    dev: Any,
    *,
    layers: Sequence[int] | None = None,
    pool: str = "cls",
    probe: bool = True,
    top: int = 20,
    metrics: Sequence[str] | None = None,
    C: float = 1.0,
    device: str = "cpu",
    memory_budget: int = 2 * 2**30,
    val_fraction: float = 0.2,
    n_random: int = 20,
    seed: int = 0,
    criterion: str = "metric",
    n_jobs: int | None = None,
    out_dir: str | Path | None = None,
    progress: bool = False,
) -> SearchResult:
    """Every dimension of every layer on its own: an exact-threshold stump and a 1-d probe.

    Args:
        train, dev: sources (``ActivationCache`` or :class:`ArraySource`); selection uses a
            validation split of ``train``, reported scores are on ``dev``.
        layers: layer indices (default: all, embeddings included).
        pool: ``cls``, ``mean`` or ``max_norm``.
        probe: also fit a one-dimension probe per dimension (else stumps only).
        top: rows in the ranked ``top`` list of the JSON (the CSV has every dimension).
        metrics: metric names (default: the task's; the first is the selection metric).
        n_jobs: joblib workers over layers (None: joblib's default or ``parallel_config``).

    Returns:
        ``SearchResult`` whose ``data`` has ``top`` (ranked by the validation score of the
        probe, or of the stump with ``probe=False``), ``best_per_layer``, ``selected`` (the
        best dimension), ``layer``, ``metrics``, ``full_metrics`` and ``random_baseline``
        (of the best dimension's layer), ``per_layer`` baselines; rows: one per (layer, dim).
    """
    cfg = dict(layers=None if layers is None else list(layers), pool=pool, probe=probe, top=top)
    run = _Run(
        "singles",
        train,
        dev,
        cfg,
        out_dir=out_dir,
        metrics=metrics,
        C=C,
        device=device,
        memory_budget=memory_budget,
        val_fraction=val_fraction,
        n_random=n_random,
        seed=seed,
        criterion=criterion,
    )
    st = run.st
    lays = _layers_arg(train, layers)
    jobs = (
        delayed(_singles_layer)(
            run.X(train, l, pool),
            run.y_train,
            run.X(dev, l, pool),
            run.y_dev,
            st,
            l,
            probe,
            run.ckpt,
        )
        for l in lays
    )
    res = list(_progress(_parallel(n_jobs)(jobs), len(lays), progress, "layers"))
    rows = []
    key = "probe_val" if probe else "stump_val"
    for r in res:
        D = len(r["stump_val"])
        for d in range(D):
            row = {
                "layer": r["layer"],
                "dim": d,
                "stump_threshold": r["stump_threshold"][d],
                f"stump_val_{st.primary}": r["stump_val"][d],
            }
            row.update({f"stump_dev_{m}": r["stump_dev"][m][d] for m in st.metrics})
            if probe:
                row[f"probe_val_{st.primary}"] = r["probe_val"][d]
                row["probe_val_loss"] = r["probe_val_loss"][d]
                row.update({f"probe_dev_{m}": r["probe_dev"][m][d] for m in st.metrics})
            rows.append(row)
    score = np.array([np.nan if v is None else v for r in res for v in r[key]], dtype=np.float64)
    loss = (
        np.array(
            [np.nan if v is None else v for r in res for v in r["probe_val_loss"]], dtype=np.float64
        )
        if probe
        else -np.array(
            [np.nan if v is None else v for r in res for v in r["stump_train"]], dtype=np.float64
        )
    )
    order = _order(score, loss, st.criterion if probe else "metric")
    for rank, i in enumerate(order):
        rows[i]["rank"] = rank + 1
    stump_score = np.array(
        [np.nan if v is None else v for r in res for v in r["stump_val"]], dtype=np.float64
    )
    for rank, i in enumerate(_order(stump_score, np.zeros_like(stump_score))):
        rows[i]["rank_stump"] = rank + 1
    top_rows = [rows[i] for i in order[:top]]
    best_per_layer = []
    for r in res:
        lrows = [row for row in rows if row["layer"] == r["layer"]]
        b = min(lrows, key=lambda row: row["rank"])
        best_per_layer.append(
            {
                "layer": r["layer"],
                "dim": b["dim"],
                "rank": b["rank"],
                "val": b[f"{'probe' if probe else 'stump'}_val_{st.primary}"],
                "dev": {m: b[f"{'probe' if probe else 'stump'}_dev_{m}"] for m in st.metrics},
                "full_metrics": r["full_metrics"],
                "random_baseline": r["random_baseline"],
                "stump_s": r["stump_s"],
            }
        )
    best = rows[order[0]]
    bl = next(r for r in res if r["layer"] == best["layer"])
    pref = "probe" if probe else "stump"
    data = {
        "layers": lays,
        "pool": pool,
        "layer": best["layer"],
        "selected": [best["dim"]],
        "metrics": {m: best[f"{pref}_dev_{m}"] for m in st.metrics},
        "full_metrics": bl["full_metrics"],
        "random_baseline": bl["random_baseline"],
        "majority_baseline": majority_baseline(
            run.y_train, run.y_dev, st.metrics, regression=st.regression
        ),
        "ranked_by": f"{pref}_val_{st.primary}",
        "top": top_rows,
        "best_per_layer": best_per_layer,
        "stump_seconds": float(sum(r["stump_s"] for r in res)),
    }
    return run.finish(data, rows)


def _progress(it: Iterable, total: int, progress: bool, desc: str) -> Iterable:
    if not progress:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, total=total, desc=desc)


# ============================================================================ pairs


def _pair_chunk(
    X_fit, y_fit, X_val, y_val, st: _Settings, pairs_idx: np.ndarray, ckpt: Checkpoint, unit: str
) -> np.ndarray:
    arr = ckpt.load_array(unit)
    if arr is not None and arr.shape == (2, len(pairs_idx)):
        return arr
    sc = st.engine().fit_score(X_fit, y_fit, X_val, y_val, pairs_idx, metrics=(st.primary,))
    arr = np.stack([sc[st.primary], sc["loss"]])
    ckpt.save_array(unit, arr)
    return arr


def _all_pairs(
    pb: _Problem,
    cand: np.ndarray,
    ckpt: Checkpoint,
    prefix: str,
    n_jobs: int | None,
    chunk: int,
    progress: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validation scores of every pair of ``cand``: ``(pairs [P, 2], score [P], loss [P])``."""
    iu, ju = np.triu_indices(len(cand), k=1)
    P = np.stack([cand[iu], cand[ju]], axis=1).astype(np.int64)
    if len(P) == 0:
        return P, np.zeros(0), np.zeros(0)
    starts = list(range(0, len(P), chunk))
    jobs = (
        delayed(_pair_chunk)(
            pb.X_fit,
            pb.y_fit,
            pb.X_val,
            pb.y_val,
            pb.st,
            P[s : s + chunk],
            ckpt,
            f"{prefix}pairs-{s}-{min(len(P), s + chunk)}",
        )
        for s in starts
    )
    parts = list(_progress(_parallel(n_jobs)(jobs), len(starts), progress, "pair chunks"))
    arr = np.concatenate(parts, axis=1)
    return P, arr[0], arr[1]


def pairs(
    train: Any,
    dev: Any,
    *,
    layer: int = -1,
    pool: str = "cls",
    top: int = 20,
    candidates: int | None = None,
    chunk: int = 4096,
    metrics: Sequence[str] | None = None,
    C: float = 1.0,
    device: str = "cpu",
    memory_budget: int = 2 * 2**30,
    val_fraction: float = 0.2,
    n_random: int = 20,
    seed: int = 0,
    criterion: str = "metric",
    n_jobs: int | None = None,
    out_dir: str | Path | None = None,
    progress: bool = False,
) -> SearchResult:
    """All pairs of dimensions of one layer.

    Args:
        layer: 0 = embeddings, -1 = last.
        top: how many of the best pairs (by validation score) are refitted and scored on dev.
        candidates: restrict to the ``candidates`` best single dimensions by validation stump
            score (default: every dimension, ``C(D, 2)`` pairs).
        chunk: pairs per checkpointed unit of work (and per joblib task).

    Returns:
        ``SearchResult``: ``selected`` (the best pair), ``metrics``, ``top`` pairs with
        validation and dev scores, ``full_metrics``, ``random_baseline`` (k=2); the array
        ``pairs_matrix`` ``[D, D]`` of validation scores (NaN on the diagonal and for pairs
        not scored); rows: the top pairs.
    """
    cfg = dict(
        layer=int(train.layer_index(layer)), pool=pool, top=top, candidates=candidates, chunk=chunk
    )
    run = _Run(
        "pairs",
        train,
        dev,
        cfg,
        out_dir=out_dir,
        metrics=metrics,
        C=C,
        device=device,
        memory_budget=memory_budget,
        val_fraction=val_fraction,
        n_random=n_random,
        seed=seed,
        criterion=criterion,
    )
    st, li = run.st, cfg["layer"]
    pb = run.problem(li, pool)
    D = pb.D
    cand = _candidates(pb, candidates)
    P, score, loss = _all_pairs(pb, cand, run.ckpt, "", n_jobs, chunk, progress)
    M = np.full((D, D), np.nan, dtype=np.float32)
    M[P[:, 0], P[:, 1]] = score
    M[P[:, 1], P[:, 0]] = score
    order = _order(score, loss, st.criterion)[:top]
    best = P[order]
    dev_sc = pb.report(best)
    top_rows = []
    for r, i in enumerate(order):
        row = {
            "rank": r + 1,
            "dim_a": int(P[i, 0]),
            "dim_b": int(P[i, 1]),
            f"val_{st.primary}": float(score[i]),
            "val_loss": float(loss[i]),
        }
        row.update({f"dev_{m}": float(dev_sc[m][r]) for m in st.metrics})
        top_rows.append(row)
    data = {
        "layer": li,
        "pool": pool,
        "n_dims": D,
        "n_candidates": len(cand),
        "n_pairs": len(P),
        "selected": [int(x) for x in P[order[0]]] if len(order) else [],
        "metrics": {m: float(dev_sc[m][0]) for m in st.metrics} if len(order) else {},
        "val_score": float(score[order[0]]) if len(order) else None,
        "full_metrics": pb.full(),
        "random_baseline": pb.random(2),
        "majority_baseline": pb.majority(),
        "top": top_rows,
        "matrix": "pairs_matrix.npy",
        "matrix_split": "validation",
        "matrix_metric": st.primary,
    }
    return run.finish(data, top_rows, {"pairs_matrix": M})


def _candidates(pb: _Problem, candidates: int | Sequence[int] | None) -> np.ndarray:
    """All dimensions, an explicit list, or the ``candidates`` best by validation stump score."""
    if candidates is None:
        return np.arange(pb.D)
    if not isinstance(candidates, (int, np.integer)):
        c = np.unique(np.asarray(candidates, dtype=np.int64))
        if c.size < 1 or c.min() < 0 or c.max() >= pb.D:
            raise ConfigError(
                f"candidates: dimensions must lie in 0..{pb.D - 1}, got {list(candidates)[:10]}"
            )
        return c
    m = int(candidates)
    if m < 2:
        raise ConfigError(f"candidates must be >= 2, got {m}")
    if m >= pb.D:
        return np.arange(pb.D)
    from .metrics import batch_metrics

    sf = fit_stumps(pb.X_fit, pb.y_fit, regression=pb.st.regression, metric=pb.st.primary)
    s = batch_metrics((pb.st.primary,), pb.y_val, predict_stumps(sf, pb.X_val))[pb.st.primary]
    return np.sort(_order(s, -sf.train_score)[:m])


# ============================================================================ greedy


# ---------------------------------------------------------------------------- score-test screen
# Not a solver: given the probe already fitted (by ProbeEngine) on the selected dimensions, the
# Rao score statistic of adding one more dimension is a gradient and a Fisher information
# evaluated at that fit, for all candidates at once with a few matrix products. ``greedy(...,
# screen=M)`` uses it to shortlist M candidates per step, which the engine then fits exactly.


class _Screen:
    """Score-test statistics for adding each dimension to a probe on ``selected`` (fit part).

    For candidate ``j`` with standardised column ``z_j``, residual ``r = y - p`` and weights
    ``w`` of the fitted probe (``p(1-p)`` for logistic, 1 for ridge), the statistic is
    ``(z_j' r)^2 / (z_j' W z_j + lam - h_j' H^-1 h_j)``, where ``H`` is the penalised Fisher
    information of the fitted parameters (selected dims and intercept) and ``h_j = Z_S1' W z_j``;
    ``lam = 1/C`` as in the engine's objective. Multi-class probes sum the statistic over the
    classes' one-vs-rest blocks (a shortlist heuristic; the exact fits decide).
    """

    def __init__(self, pb: _Problem):
        self.pb = pb
        X = pb.X_fit
        mu = X.mean(0, dtype=np.float64)
        sd = X.std(0, dtype=np.float64)
        sd[sd < 1e-12] = 1.0
        # float32 is plenty for a shortlist statistic and halves the cost of the products below
        self.Z = ((X - mu.astype(np.float32)) / sd.astype(np.float32)).astype(
            np.float32
        )  # [n_fit, D]
        self.Z2 = self.Z**2
        self.lam = 1.0 / pb.st.C
        y = pb.y_fit
        if pb.st.regression:
            self.Y = (y - y.mean())[:, None]
        else:
            classes = np.unique(y)
            Y = (y[:, None] == classes[None, :]).astype(np.float64)
            self.Y = Y[:, 1:] if len(classes) == 2 else Y  # [n, K'] targets of the K' score blocks

    def stats(self, selected: list[int], cand: np.ndarray) -> np.ndarray:
        """``[len(cand)]`` score statistics (larger = more promising)."""
        pb, n = self.pb, self.Z.shape[0]
        if selected:
            fit = pb.engine.fit(pb.X_fit, pb.y_fit, np.asarray(selected, dtype=np.int64)[None, :])
            Zd = np.asarray(fit.decision_function(pb.X_fit, device=pb.engine.device))[
                0
            ]  # [n] or [n, K]
        else:
            Zd = None
        if pb.st.regression:
            P = (Zd - pb.y_fit.mean())[:, None] if Zd is not None else np.zeros((n, 1))
            Wt = np.ones((n, 1))
        else:
            K1 = self.Y.shape[1]
            if Zd is None:
                P = np.broadcast_to(self.Y.mean(0), (n, K1)).copy()
            elif Zd.ndim == 1:
                P = (1.0 / (1.0 + np.exp(-Zd)))[:, None]
            else:
                E = np.exp(Zd - Zd.max(1, keepdims=True))
                P = E / E.sum(1, keepdims=True)
            Wt = P * (1 - P)
        R = (self.Y - P).astype(np.float32)  # [n, K']
        S1 = np.concatenate(
            [self.Z[:, selected].astype(np.float64), np.ones((n, 1))], axis=1
        )  # [n, s+1]
        pen = np.full(S1.shape[1], self.lam)
        pen[-1] = 0.0  # the intercept is not penalised
        U = (self.Z.T @ R).astype(
            np.float64
        )  # [D, K'] scores at the current fit (all dims; cheap GEMMs)
        Ijj = (self.Z2.T @ Wt.astype(np.float32)).astype(np.float64) + self.lam  # [D, K']
        out = np.zeros(self.Z.shape[1])
        for c in range(R.shape[1]):
            WS = S1 * Wt[:, c : c + 1]
            H = S1.T @ WS + np.diag(pen) + 1e-9 * np.eye(S1.shape[1])
            h = (self.Z.T @ WS.astype(np.float32)).astype(np.float64)  # [D, s+1]
            cond = Ijj[:, c] - np.einsum("ds,ds->d", h, np.linalg.solve(H, h.T).T)
            out += U[:, c] ** 2 / np.maximum(cond, 1e-12)
        return out[np.asarray(cand, dtype=np.int64)]


def _greedy_select(
    pb: _Problem,
    k: int,
    within: float | None,
    full_val: float | None,
    cand: np.ndarray,
    ckpt: Checkpoint,
    unit: str,
    progress: bool = False,
    screen: int | None = None,
) -> dict[str, Any]:
    """Forward selection on validation; one batch of candidates per step; checkpoint per step.

    With ``screen=M``, each step fits only the ``M`` candidates with the largest score-test
    statistic (:class:`_Screen`) instead of all of them.
    """
    state = ckpt.load(unit) or {"selected": [], "steps": [], "done": False}
    if state["done"]:
        return state
    selected = list(state["selected"])
    steps = list(state["steps"])
    k = min(k, len(cand))
    target = None if within is None or full_val is None else full_val - within * abs(full_val)
    scr = _Screen(pb) if screen else None
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=k, initial=len(selected), desc="greedy", unit="dim")
    while len(selected) < k:
        if target is not None and steps and steps[-1]["val_score"] >= target:
            break
        t0 = time.perf_counter()
        rest = np.setdiff1d(cand, selected)
        n_rest = len(rest)
        if scr is not None and len(rest) > screen:
            st_ = scr.stats(selected, rest)
            rest = np.sort(rest[np.argsort(-st_, kind="stable")[:screen]])
        dims = np.concatenate(
            [np.tile(np.asarray(selected, dtype=np.int64), (len(rest), 1)), rest[:, None]], axis=1
        )
        s, l = pb.select(dims)
        b = int(_order(s, l, pb.st.criterion)[0])
        selected.append(int(rest[b]))
        steps.append(
            {
                "step": len(selected),
                "dim": int(rest[b]),
                "val_score": float(s[b]),
                "val_loss": float(l[b]),
                "n_candidates": int(n_rest),
                "n_fitted": len(rest),
                "seconds": time.perf_counter() - t0,
            }
        )
        ckpt.save(unit, {"selected": selected, "steps": steps, "done": False})
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    state = {
        "selected": selected,
        "steps": steps,
        "done": True,
        "stopped": "within" if len(selected) < k else "k",
    }
    ckpt.save(unit, state)
    return state


def _repeat_problem(
    X_train, y_train, X_dev, y_dev, st: _Settings, r: int, resample: str
) -> _Problem:
    if r == 0:
        return _Problem(X_train, y_train, X_dev, y_dev, st)
    if resample == "bootstrap":
        return _Problem(X_train, y_train, X_dev, y_dev, st, bootstrap_seed=st.seed + 1000003 * r)
    return _Problem(X_train, y_train, X_dev, y_dev, st, split_seed=st.seed + r)


def _greedy_repeat(
    X_train,
    y_train,
    X_dev,
    y_dev,
    st: _Settings,
    r: int,
    resample: str,
    k: int,
    within: float | None,
    candidates,
    ckpt: Checkpoint,
    progress: bool,
    screen: int | None = None,
) -> dict[str, Any]:
    pb = _repeat_problem(X_train, y_train, X_dev, y_dev, st, r, resample)
    full_val = None
    if within is not None:
        fv = ckpt.load(f"full-val-{r}")
        full_val = fv["value"] if fv is not None else pb.full_val()
        ckpt.save(f"full-val-{r}", {"value": full_val})
    cand = _candidates(pb, candidates)
    out = _greedy_select(pb, k, within, full_val, cand, ckpt, f"repeat-{r}", progress, screen)
    return dict(out, full_val=full_val)


def greedy(
    train: Any,
    dev: Any,
    *,
    layer: int = -1,
    pool: str = "cls",
    k: int = 10,
    within: float | None = None,
    candidates: int | Sequence[int] | None = None,
    screen: int | None = None,
    repeats: int = 1,
    resample: str = "split",
    metrics: Sequence[str] | None = None,
    C: float = 1.0,
    device: str = "cpu",
    memory_budget: int = 2 * 2**30,
    val_fraction: float = 0.2,
    n_random: int = 20,
    seed: int = 0,
    criterion: str = "metric",
    n_jobs: int | None = None,
    out_dir: str | Path | None = None,
    progress: bool = False,
) -> SearchResult:
    """Greedy forward selection of dimensions.

    Each step adds the dimension whose probe (together with those already chosen) scores best
    on the validation split; all candidates of a step are fitted as one batch.

    Args:
        k: at most this many dimensions.
        within: stop early once the validation score reaches ``(1 - within)`` times the
            full-dimension validation score (e.g. ``0.02``).
        candidates: restrict candidates (an int: the best by stump score; a list: those dims).
        screen: fit only the ``screen`` most promising candidates per step, ranked by the
            score-test statistic of adding them to the probe fitted so far (cheap: one pass
            over the data); the final choice among them is still by exact fits on validation.
            Default None: every candidate is fitted (exhaustive).
        repeats: rerun the selection ``repeats`` times (repeat 0 is the main result) and
            report stability.
        resample: ``split`` (another validation split per repeat) or ``bootstrap``
            (a bootstrap resample of the fitting part).

    Returns:
        ``SearchResult``: ``selected`` (in order), ``metrics`` (dev, selected set),
        ``full_metrics``, ``random_baseline`` (same size), ``curve`` (per step: the dimension
        added, validation score, dev metrics of the prefix, random baseline of that size),
        ``stability`` (with ``repeats > 1``), ``elapsed_s``.
    """
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    if within is not None and not 0 <= within < 1:
        raise ConfigError(f"within must lie in [0, 1), got {within}")
    if repeats < 1:
        raise ConfigError(f"repeats must be >= 1, got {repeats}")
    if resample not in ("split", "bootstrap"):
        raise ConfigError(f"resample must be 'split' or 'bootstrap', got {resample!r}")
    if screen is not None and screen < 1:
        raise ConfigError(f"screen must be >= 1 (candidates fitted per step), got {screen}")
    cfg = dict(
        layer=int(train.layer_index(layer)),
        pool=pool,
        k=k,
        within=within,
        candidates=candidates
        if candidates is None or isinstance(candidates, int)
        else list(candidates),
        screen=screen,
        repeats=repeats,
        resample=resample,
    )
    run = _Run(
        "greedy",
        train,
        dev,
        cfg,
        out_dir=out_dir,
        metrics=metrics,
        C=C,
        device=device,
        memory_budget=memory_budget,
        val_fraction=val_fraction,
        n_random=n_random,
        seed=seed,
        criterion=criterion,
    )
    st, li = run.st, cfg["layer"]
    X_train, X_dev = run.X(train, li, pool), run.X(dev, li, pool)
    jobs = (
        delayed(_greedy_repeat)(
            X_train,
            run.y_train,
            X_dev,
            run.y_dev,
            st,
            r,
            resample,
            k,
            within,
            candidates,
            run.ckpt,
            progress and repeats == 1,
            screen,
        )
        for r in range(repeats)
    )
    reps = list(
        _progress(
            _parallel(n_jobs if repeats > 1 else 1)(jobs),
            repeats,
            progress and repeats > 1,
            "repeats",
        )
    )
    main = reps[0]
    pb = _Problem(X_train, run.y_train, X_dev, run.y_dev, st)
    selected = main["selected"]
    curve = []
    for t, step in enumerate(main["steps"], start=1):
        dev_t = pb.report_one(selected[:t])
        rb = pb.random(t)
        curve.append(dict(step, dev=dev_t, random_mean=rb["mean"], random_std=rb["std"]))
    data = {
        "layer": li,
        "pool": pool,
        "k": k,
        "within": within,
        "selected": selected,
        "metrics": curve[-1]["dev"] if curve else {},
        "val_score": main["steps"][-1]["val_score"] if curve else None,
        "full_val_score": main["full_val"],
        "stopped": main.get("stopped"),
        "full_metrics": pb.full(),
        "random_baseline": pb.random(len(selected)),
        "majority_baseline": pb.majority(),
        "curve": curve,
        "n_fit": len(pb.idx_fit),
        "n_val": len(pb.idx_val),
        "n_eval": len(run.y_dev),
    }
    if repeats > 1:
        data["stability"] = stability([r["selected"] for r in reps])
        data["stability"]["resample"] = resample
    rows = []
    for c in curve:
        row = {
            "step": c["step"],
            "dim": c["dim"],
            f"val_{st.primary}": c["val_score"],
            "val_loss": c["val_loss"],
            "selected": selected[: c["step"]],
        }
        row.update(_metrics_row("dev_", c["dev"]))
        row.update(_metrics_row("random_mean_", c["random_mean"]))
        row.update(_metrics_row("random_std_", c["random_std"]))
        rows.append(row)
    return run.finish(data, rows)


# ============================================================================ eliminate


def _eliminate_repeat(
    X_train,
    y_train,
    X_dev,
    y_dev,
    st: _Settings,
    r: int,
    resample: str,
    start: Any,
    k: int,
    tol: float | None,
    exact_max: int,
    ckpt: Checkpoint,
    progress: bool,
) -> dict[str, Any]:
    unit = f"repeat-{r}"
    state = ckpt.load(unit)
    if state is not None and state.get("done"):
        return state
    pb = _repeat_problem(X_train, y_train, X_dev, y_dev, st, r, resample)
    D = pb.D
    if state is None:
        if start == "all":
            S = list(range(D))
        elif isinstance(start, int):
            if not 1 <= start <= D:
                raise ConfigError(f"start: need 1..{D} random dimensions, got {start}")
            rng = np.random.default_rng(st.seed + r)
            S = sorted(int(x) for x in rng.choice(D, size=start, replace=False))
        else:
            S = [int(x) for x in start]
            if len(set(S)) != len(S) or min(S) < 0 or max(S) >= D:
                raise ConfigError(f"start: dimensions must be distinct and in 0..{D - 1}, got {S}")
        state = {"start": list(S), "survivors": list(S), "steps": [], "done": False}
    S = list(state["survivors"])
    steps = list(state["steps"])
    while len(S) > k:
        t0 = time.perf_counter()
        if len(S) > exact_max:
            # coarse phase for large sets: drop the dims with the smallest weights of a probe on S
            fit = pb.engine.fit(pb.X_fit, pb.y_fit, np.asarray(S)[None, :])
            w = np.sqrt((fit.coef[0] ** 2).sum(axis=0))  # [|S|] on standardised features
            m = max(1, min(len(S) - exact_max, math.ceil(0.1 * len(S))))
            out = np.argsort(w, kind="stable")[:m]
            removed = [S[i] for i in out]
            steps.append(
                {
                    "size": len(S),
                    "method": "weights",
                    "removed": removed,
                    "weights": {int(S[i]): float(w[i]) for i in out},
                    "seconds": time.perf_counter() - t0,
                }
            )
            S = [d for d in S if d not in set(removed)]
        else:
            base, base_l = pb.select(np.asarray(S)[None, :])
            loo = np.array([[d for d in S if d != x] for x in S], dtype=np.int64)
            s, l = pb.select(loo)
            drops = float(base[0]) - s
            # remove the dimension whose removal hurts least (best score without it)
            b = int(_order(s, l, pb.st.criterion)[0])
            if tol is not None and drops[b] > tol:
                steps.append(
                    {
                        "size": len(S),
                        "method": "exact",
                        "score": float(base[0]),
                        "stopped": "tol",
                        "drops": {int(S[i]): float(drops[i]) for i in range(len(S))},
                        "seconds": time.perf_counter() - t0,
                    }
                )
                break
            steps.append(
                {
                    "size": len(S),
                    "method": "exact",
                    "score": float(base[0]),
                    "loss": float(base_l[0]),
                    "drops": {int(S[i]): float(drops[i]) for i in range(len(S))},
                    "removed": [int(S[b])],
                    "score_after": float(s[b]),
                    "seconds": time.perf_counter() - t0,
                }
            )
            S = [d for d in S if d != S[b]]
        state = {"start": state["start"], "survivors": S, "steps": steps, "done": False}
        ckpt.save(unit, state)
    # the drop each survivor's removal causes, and all pairs among survivors
    base, _ = pb.select(np.asarray(S)[None, :])
    final_drops = {}
    if len(S) >= 2:
        loo = np.array([[d for d in S if d != x] for x in S], dtype=np.int64)
        s, _ = pb.select(loo)
        final_drops = {int(S[i]): float(base[0] - s[i]) for i in range(len(S))}
    ordered = sorted(S, key=lambda d: (-final_drops.get(d, 0.0), d))
    pair_scores = []
    if len(S) >= 2:
        Pp = np.array(list(itertools.combinations(sorted(S), 2)), dtype=np.int64)
        ps, pl = pb.select(Pp)
        for i in _order(ps, pl, pb.st.criterion):
            pair_scores.append(
                {
                    "dims": [int(x) for x in Pp[i]],
                    "val_score": float(ps[i]),
                    "val_loss": float(pl[i]),
                }
            )
    state = {
        "start": state["start"],
        "survivors": S,
        "selected": ordered,
        "final_score": float(base[0]),
        "final_drops": final_drops,
        "steps": steps,
        "pairs": pair_scores,
        "done": True,
    }
    state = json.loads(json.dumps(_jsonable(state)))  # the same types whether fresh or resumed
    ckpt.save(unit, state)
    return state


def eliminate(
    train: Any,
    dev: Any,
    *,
    layer: int = -1,
    pool: str = "cls",
    start: int | str | Sequence[int] = 3,
    k: int = 2,
    tol: float | None = None,
    exact_max: int = 64,
    repeats: int = 1,
    resample: str = "split",
    metrics: Sequence[str] | None = None,
    C: float = 1.0,
    device: str = "cpu",
    memory_budget: int = 2 * 2**30,
    val_fraction: float = 0.2,
    n_random: int = 20,
    seed: int = 0,
    criterion: str = "metric",
    n_jobs: int | None = None,
    out_dir: str | Path | None = None,
    progress: bool = False,
) -> SearchResult:
    """Backward elimination, the paper's remove-one procedure, then all pairs of the survivors.

    Starting from ``start`` (an int: that many random dimensions drawn with ``seed``; a list:
    those dimensions; ``"all"``: every dimension), each step scores, as one batch, the set
    without each of its members on the validation split, records the drop every removal
    causes, and removes the dimension whose removal hurts least. It stops at ``k`` survivors,
    or earlier when ``tol`` is given and every removal would cost more than ``tol``. Finally
    all pairs among the survivors are scored.

    Sets larger than ``exact_max`` (only with ``start="all"`` or long lists) are first cut down
    to ``exact_max`` by repeatedly dropping the ~10% of dimensions with the smallest weights of
    a probe fitted on the whole set (recorded as ``method: "weights"`` steps); exact remove-one
    scoring of hundreds of dimensions would refit ``|S|`` probes of ``|S|-1`` dimensions per step.

    Returns:
        ``SearchResult``: ``selected`` (survivors, most important first: largest drop when
        removed), ``metrics`` (dev), ``steps`` (with every candidate's drop), ``final_drops``,
        ``pairs`` among survivors with the best pair's dev ``pair_metrics``, ``full_metrics``,
        ``random_baseline``, ``stability`` with ``repeats > 1``.
    """
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    if exact_max < 2:
        raise ConfigError(f"exact_max must be >= 2, got {exact_max}")
    if resample not in ("split", "bootstrap"):
        raise ConfigError(f"resample must be 'split' or 'bootstrap', got {resample!r}")
    if isinstance(start, str):
        if start.strip().lower() != "all":
            try:
                start = [int(t) for t in start.replace(" ", "").split(",") if t]
            except ValueError:
                raise ConfigError(
                    f"start: expected an int, 'all' or a list like '5,17,203', got {start!r}"
                ) from None
            start = start[0] if len(start) == 1 else start
        else:
            start = "all"
    if not isinstance(start, (int, str)):
        start = [int(x) for x in start]
    cfg = dict(
        layer=int(train.layer_index(layer)),
        pool=pool,
        start=start,
        k=k,
        tol=tol,
        exact_max=exact_max,
        repeats=repeats,
        resample=resample,
    )
    run = _Run(
        "eliminate",
        train,
        dev,
        cfg,
        out_dir=out_dir,
        metrics=metrics,
        C=C,
        device=device,
        memory_budget=memory_budget,
        val_fraction=val_fraction,
        n_random=n_random,
        seed=seed,
        criterion=criterion,
    )
    st, li = run.st, cfg["layer"]
    X_train, X_dev = run.X(train, li, pool), run.X(dev, li, pool)
    if isinstance(start, int) and k >= start:
        logger.warning("eliminate: k=%d >= start=%d; nothing will be removed", k, start)
    jobs = (
        delayed(_eliminate_repeat)(
            X_train,
            run.y_train,
            X_dev,
            run.y_dev,
            st,
            r,
            resample,
            start,
            k,
            tol,
            exact_max,
            run.ckpt,
            progress,
        )
        for r in range(repeats)
    )
    reps = list(
        _progress(
            _parallel(n_jobs if repeats > 1 else 1)(jobs),
            repeats,
            progress and repeats > 1,
            "repeats",
        )
    )
    main = reps[0]
    pb = _Problem(X_train, run.y_train, X_dev, run.y_dev, st)
    selected = main["selected"]
    best_pair = main["pairs"][0]["dims"] if main["pairs"] else None
    data = {
        "layer": li,
        "pool": pool,
        "start": main["start"],
        "k": k,
        "tol": tol,
        "selected": selected,
        "metrics": pb.report_one(selected),
        "val_score": main["final_score"],
        "final_drops": main["final_drops"],
        "steps": main["steps"],
        "pairs": main["pairs"],
        "best_pair": best_pair,
        "pair_metrics": pb.report_one(best_pair) if best_pair else None,
        "full_metrics": pb.full(),
        "random_baseline": pb.random(len(selected)),
        "random_baseline_pair": pb.random(2) if best_pair and len(selected) != 2 else None,
        "majority_baseline": pb.majority(),
    }
    if repeats > 1:
        data["stability"] = stability([r["selected"] for r in reps])
        data["stability"]["resample"] = resample
        data["stability"]["best_pairs"] = [
            r["pairs"][0]["dims"] if r["pairs"] else None for r in reps
        ]
    rows = []
    for s_ in main["steps"]:
        row = {
            "size": s_["size"],
            "method": s_["method"],
            "removed": s_.get("removed", []),
            f"val_{st.primary}": s_.get("score"),
            "score_after": s_.get("score_after"),
        }
        if "drops" in s_:
            row["drops"] = ";".join(f"{d}:{v:.4f}" for d, v in s_["drops"].items())
        rows.append(row)
    rows.append(
        {
            "size": len(selected),
            "method": "final",
            "removed": [],
            f"val_{st.primary}": main["final_score"],
            "drops": ";".join(f"{d}:{v:.4f}" for d, v in main["final_drops"].items()),
        }
    )
    return run.finish(data, rows)


# ============================================================================ layers


def _layer_unit(
    X_train,
    y_train,
    X_dev,
    y_dev,
    st: _Settings,
    layer: int,
    k: int,
    pair_candidates,
    ckpt: Checkpoint,
) -> dict[str, Any]:
    done = ckpt.load(f"layer-{layer}")
    if done is not None:
        return done
    t0 = time.perf_counter()
    pb = _Problem(X_train, y_train, X_dev, y_dev, st)
    full = pb.full()
    cand = _candidates(pb, pair_candidates)
    P, s, l = _all_pairs(pb, cand, ckpt, f"layer-{layer}-", 1, 8192, False)
    b = int(_order(s, l, st.criterion)[0])
    pair = [int(x) for x in P[b]]
    g = _greedy_select(pb, k, None, None, np.arange(pb.D), ckpt, f"layer-{layer}-greedy")
    out = {
        "layer": layer,
        "full_metrics": full,
        "best_pair": pair,
        "pair_val": float(s[b]),
        "pair_metrics": pb.report_one(pair),
        "pair_candidates": len(cand),
        "greedy_selected": g["selected"],
        "greedy_val": g["steps"][-1]["val_score"],
        "greedy_metrics": pb.report_one(g["selected"]),
        "random_baseline": pb.random(k),
        "random_baseline_pair": pb.random(2),
        "elapsed_s": time.perf_counter() - t0,
    }
    out = _jsonable(out)
    ckpt.save(f"layer-{layer}", out)
    return out


def layers(
    train: Any,
    dev: Any,
    *,
    layers: Sequence[int] | None = None,
    pool: str = "cls",
    k: int = 3,
    pair_candidates: int | None = None,
    metrics: Sequence[str] | None = None,
    C: float = 1.0,
    device: str = "cpu",
    memory_budget: int = 2 * 2**30,
    val_fraction: float = 0.2,
    n_random: int = 20,
    seed: int = 0,
    criterion: str = "metric",
    n_jobs: int | None = None,
    out_dir: str | Path | None = None,
    progress: bool = False,
) -> SearchResult:
    """Layer sweep: for every layer (embeddings and each block) the full-dimension score, the
    best pair (all pairs, or pairs among the ``pair_candidates`` best single dimensions) and the
    greedy ``k``-dimension score, each with random baselines. Layers fan out over joblib.

    Returns:
        ``SearchResult``: ``per_layer`` (one entry per layer), ``selected``/``metrics`` of the
        layer with the best greedy-k dev score (its ``layer``), ``full_metrics`` and
        ``random_baseline`` of that layer; rows: one per layer.
    """
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    lays = _layers_arg(train, layers)
    cfg = dict(layers=lays, pool=pool, k=k, pair_candidates=pair_candidates)
    run = _Run(
        "layers",
        train,
        dev,
        cfg,
        out_dir=out_dir,
        metrics=metrics,
        C=C,
        device=device,
        memory_budget=memory_budget,
        val_fraction=val_fraction,
        n_random=n_random,
        seed=seed,
        criterion=criterion,
    )
    st = run.st
    jobs = (
        delayed(_layer_unit)(
            run.X(train, l, pool),
            run.y_train,
            run.X(dev, l, pool),
            run.y_dev,
            st,
            l,
            k,
            pair_candidates,
            run.ckpt,
        )
        for l in lays
    )
    per = list(_progress(_parallel(n_jobs)(jobs), len(lays), progress, "layers"))
    p = st.primary
    best = _best_greedy(per, p)
    rows = []
    for r in per:
        row = {"layer": r["layer"]}
        row.update(_metrics_row("full_", r["full_metrics"]))
        row.update({"best_pair": r["best_pair"]})
        row.update(_metrics_row("pair_", r["pair_metrics"]))
        row.update(_greedy_cells(r, k))
        rows.append(row)
    data = {
        "pool": pool,
        "k": k,
        "layers": lays,
        "per_layer": per,
        "layer": best["layer"],
        "selected": best["greedy_selected"],
        "metrics": best["greedy_metrics"],
        "full_metrics": best["full_metrics"],
        "random_baseline": best["random_baseline"],
        "majority_baseline": majority_baseline(
            run.y_train, run.y_dev, st.metrics, regression=st.regression
        ),
    }
    return run.finish(data, rows)


# ============================================================================ tokens


def _pool_unit(
    X_train, y_train, X_dev, y_dev, st: _Settings, pool: str, k: int, ckpt: Checkpoint
) -> dict[str, Any]:
    done = ckpt.load(f"pool-{pool}")
    if done is not None:
        return done
    t0 = time.perf_counter()
    pb = _Problem(X_train, y_train, X_dev, y_dev, st)
    g = _greedy_select(pb, k, None, None, np.arange(pb.D), ckpt, f"pool-{pool}-greedy")
    out = _jsonable(
        {
            "pool": pool,
            "full_metrics": pb.full(),
            "greedy_selected": g["selected"],
            "greedy_val": g["steps"][-1]["val_score"],
            "greedy_metrics": pb.report_one(g["selected"]),
            "random_baseline": pb.random(k),
            "elapsed_s": time.perf_counter() - t0,
        }
    )
    ckpt.save(f"pool-{pool}", out)
    return out


def tokens(
    train: Any,
    dev: Any,
    *,
    layer: int = -1,
    pools: Sequence[str] = ("cls", "mean", "max_norm"),
    k: int = 3,
    metrics: Sequence[str] | None = None,
    C: float = 1.0,
    device: str = "cpu",
    memory_budget: int = 2 * 2**30,
    val_fraction: float = 0.2,
    n_random: int = 20,
    seed: int = 0,
    criterion: str = "metric",
    n_jobs: int | None = None,
    out_dir: str | Path | None = None,
    progress: bool = False,
) -> SearchResult:
    """Token comparison: ``cls`` vs ``mean`` vs ``max_norm`` pooling of one layer, at full
    width and with ``k`` greedily chosen dimensions (chosen on validation, scored on dev).

    Returns:
        ``SearchResult``: ``per_pool``; ``selected``/``metrics``/``full_metrics``/
        ``random_baseline`` of the pool with the best k-dimension dev score (its ``pool``);
        rows: one per pool.
    """
    pools = list(pools)
    missing = [p for p in pools if p not in train.pools or p not in dev.pools]
    if missing:
        raise ConfigError(
            f"pools {missing} are not in both sources (train has {list(train.pools)}, "
            f"eval has {list(dev.pools)})"
        )
    cfg = dict(layer=int(train.layer_index(layer)), pools=pools, k=k)
    run = _Run(
        "tokens",
        train,
        dev,
        cfg,
        out_dir=out_dir,
        metrics=metrics,
        C=C,
        device=device,
        memory_budget=memory_budget,
        val_fraction=val_fraction,
        n_random=n_random,
        seed=seed,
        criterion=criterion,
    )
    st, li = run.st, cfg["layer"]
    jobs = (
        delayed(_pool_unit)(
            run.X(train, li, p), run.y_train, run.X(dev, li, p), run.y_dev, st, p, k, run.ckpt
        )
        for p in pools
    )
    per = list(_progress(_parallel(n_jobs)(jobs), len(pools), progress, "pools"))
    pm = st.primary
    best = _best_greedy(per, pm)
    rows = []
    for r in per:
        row = {"pool": r["pool"]}
        row.update(_metrics_row("full_", r["full_metrics"]))
        row.update(_greedy_cells(r, k))
        rows.append(row)
    data = {
        "layer": li,
        "k": k,
        "pools": pools,
        "per_pool": per,
        "pool": best["pool"],
        "selected": best["greedy_selected"],
        "metrics": best["greedy_metrics"],
        "full_metrics": best["full_metrics"],
        "random_baseline": best["random_baseline"],
        "majority_baseline": majority_baseline(
            run.y_train, run.y_dev, st.metrics, regression=st.regression
        ),
    }
    return run.finish(data, rows)


# ============================================================================ dispatch

_FUNCS: dict[str, Callable[..., SearchResult]] = {
    "singles": singles,
    "pairs": pairs,
    "greedy": greedy,
    "eliminate": eliminate,
    "layers": layers,
    "tokens": tokens,
}


def run_search(verb: str, train: Any, dev: Any, **kwargs: Any) -> SearchResult:
    """Run the search named ``verb`` (one of :data:`VERBS`) with keyword arguments."""
    if verb not in _FUNCS:
        raise ConfigError(f"unknown search {verb!r}; choose one of {', '.join(VERBS)}")
    return _FUNCS[verb](train, dev, **kwargs)


def _run_spec(spec: Mapping[str, Any]) -> SearchResult:
    spec = dict(spec)
    verb, train, dev = spec.pop("verb"), spec.pop("train"), spec.pop("eval")
    if isinstance(train, (str, Path)) or isinstance(dev, (str, Path)):
        from .cache import ActivationCache

        with ActivationCache(train) as tr, ActivationCache(dev) as dv:
            return run_search(verb, tr, dv, n_jobs=1, **spec)
    return run_search(verb, train, dev, n_jobs=1, **spec)


def run_many(specs: Sequence[Mapping[str, Any]], n_jobs: int | None = None) -> list[SearchResult]:
    """Fan several searches out over joblib: tasks, models, seeds, verbs.

    Args:
        specs: one mapping per search: ``verb``, ``train`` and ``eval`` (cache paths, opened in
            the worker, or sources), and any keyword arguments of that search (give each its
            own ``out_dir``).
        n_jobs: joblib workers (None: joblib's default or the active ``parallel_config``,
            e.g. a Dask cluster).

    Returns:
        The results, in the order of ``specs``.
    """
    for s in specs:
        missing = {"verb", "train", "eval"} - set(s)
        if missing:
            raise ConfigError(f"run_many: spec {dict(s)} lacks {sorted(missing)}")
        if s["verb"] not in _FUNCS:
            raise ConfigError(
                f"run_many: unknown search {s['verb']!r}; choose one of {', '.join(VERBS)}"
            )
    return list(_parallel(n_jobs)(delayed(_run_spec)(s) for s in specs))
