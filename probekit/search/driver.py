"""The set-up every search shares: sources checked, labels loaded, checkpoint opened, clock
started; and the header and files of its result."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..probes import convergence_rule, majority_baseline
from ..provenance import versions
from .checkpoint import Checkpoint
from .config import SearchConfig
from .problem import Problem, ProblemData
from .result import RESULT_KIND, RESULT_SCHEMA, RESULT_SCHEMA_VERSION, SearchResult
from .sources import (
    FeatureSource,
    check_pairing,
    control_types,
    describe_source,
    load_labels,
    source_identity,
)

logger = logging.getLogger(__name__)

__all__ = ["Driver", "layer_list", "metric_cells"]


class Driver:
    """One search in progress.

    Args:
        verb: the search's name.
        train, eval: the sources (checked to pair, see :func:`check_pairing`).
        options: the search's own options, recorded in ``config`` and in the checkpoint key.
        config: the shared settings (``metrics`` default to the task's).
    """

    def __init__(
        self,
        verb: str,
        train: FeatureSource,
        eval: FeatureSource,
        options: Mapping[str, Any],
        config: SearchConfig,
    ):
        self.t0 = time.perf_counter()
        self.verb = verb
        check_pairing(train, eval)
        self.train, self.eval = train, eval
        self.config = config.for_task(train.task)
        self.regression = bool(train.task.regression)
        self.y_train = load_labels(train, self.regression, "train")
        self.y_eval = load_labels(eval, self.regression, "eval", train=train)  # by label name
        self.record = dict(options, **self.config.record())
        key = {
            "verb": verb,
            "config": self.record,
            "train": source_identity(train),
            "eval": source_identity(eval),
            "schema": RESULT_SCHEMA_VERSION,
            "solver": convergence_rule(),
        }
        self.ckpt = Checkpoint(self.config.out_dir, verb, key)

    @property
    def primary(self) -> str:
        return self.config.primary

    def X(self, src: FeatureSource, layer: int, pool: str) -> np.ndarray:
        """``[n_examples, hidden]`` features of one layer and pool of ``src``, in the dtype the
        source stores (a cache: float16). Not upcast: every consumer (the engine, stumps,
        rankings, moments) reads row chunks and upcasts each, so a search holds the layer once
        at its stored size (``benchmarks/bench_memory.py``)."""
        return np.asarray(src.features(layer, pool))

    def data(self, layer: int, pool: str) -> ProblemData:
        """The arrays of one (layer, pool), for a worker."""
        return ProblemData(
            self.X(self.train, layer, pool),
            self.y_train,
            self.X(self.eval, layer, pool),
            self.y_eval,
            self.regression,
            self.config,
        )

    def problem(self, layer: int, pool: str) -> Problem:
        """The main :class:`Problem` of one (layer, pool) (its ``C`` block goes into the
        result, see :meth:`finish`)."""
        return self.main_problem(self.data(layer, pool))

    def main_problem(self, data: ProblemData) -> Problem:
        """The main :class:`Problem` on ``data``, kept: :meth:`finish` records its ``C``."""
        self._main = data.problem()
        return self._main

    def control_types(self) -> tuple[list, list] | None:
        """The control-task input types of train and eval (:func:`control_types`), read once;
        None unless both sources hold token fields."""
        if not hasattr(self, "_types"):
            tr, ev = control_types(self.train), control_types(self.eval)
            self._types = None if tr is None or ev is None else (tr, ev)
        return self._types

    def majority(self) -> dict[str, float]:
        """Eval scores of the majority class (or the training mean)."""
        return majority_baseline(
            self.y_train, self.y_eval, self.config.metrics, regression=self.regression
        )

    def header(self) -> dict[str, Any]:
        c = self.config
        return {
            "kind": RESULT_KIND,
            "schema": RESULT_SCHEMA,
            "schema_version": RESULT_SCHEMA_VERSION,
            "verb": self.verb,
            "task": self.train.task.name,
            "metric_names": list(c.metrics or ()),
            "primary_metric": c.primary,
            "seed": c.seed,
            "config": self.record,
            "train": describe_source(self.train),
            "eval": describe_source(self.eval),
            "versions": versions(),
            "protocol": (
                f"selection on a {c.val_fraction:g} validation split of train (seeded); reported "
                "metrics from probes refitted on all of train, scored on eval"
            ),
        }

    def finish(
        self,
        data: dict[str, Any],
        rows: list[dict[str, Any]],
        arrays: dict[str, np.ndarray] | None = None,
    ) -> SearchResult:
        """The :class:`SearchResult` (header + ``data``), saved when ``out_dir`` is set; ``C``:
        the block of the main problem (:meth:`Problem.C_record`) unless ``data`` has one."""
        out = self.header()
        if getattr(self, "_main", None) is not None:
            out.setdefault("C", self._main.C_record())
        out.update(data)
        out["elapsed_s"] = time.perf_counter() - self.t0
        out["checkpoint"] = None if self.ckpt.dir is None else str(self.ckpt.dir)
        res = SearchResult(self.verb, out, rows, arrays or {})
        if self.config.out_dir is not None:
            res.save(self.config.out_dir)
        logger.info("%s done in %.2fs", self.verb, out["elapsed_s"])
        return res


def layer_list(src: FeatureSource, layers: Sequence[int] | None) -> list[int]:
    """Layer indices (default: all), negatives resolved; repeats refused."""
    if layers is None:
        return list(range(src.n_layers))
    out = [src.layer_index(l) for l in layers]
    if len(set(out)) != len(out):
        raise ConfigError(f"layers: repeated layers in {list(layers)}")
    return out


def metric_cells(prefix: str, d: Mapping[str, float]) -> dict[str, float]:
    """``{prefix + metric: value}``: CSV cells of one metrics dict."""
    return {f"{prefix}{m}": v for m, v in d.items()}
