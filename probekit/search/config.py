"""The settings every search shares, in one frozen dataclass validated in one place."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..probes import AUTO, ProbeEngine, c_grid, parse_C
from ..tasks import TaskSpec

__all__ = ["CRITERIA", "SearchConfig", "resolve_call"]

#: how candidates are ranked on the validation split
CRITERIA = ("metric", "loss")


@dataclass(frozen=True)
class SearchConfig:
    """Probe, protocol and execution settings shared by all searches (picklable).

    Attributes:
        metrics: metric names, the first being the selection metric (None: the task's).
        C: inverse L2 strength of the probes (``lam = 1/C``), or ``"auto"`` (default): chosen
            on the validation split from ``C_grid`` once per (layer, pool, k) by
            :class:`probekit.search.Problem` (see :meth:`Problem.C_for`).
        C_grid: the grid of ``C="auto"`` (None: ``probekit.probes.DEFAULT_C_GRID``,
            ``np.logspace(-4, 2, 10)``).
        device: torch device of the probe engine (``cpu``, ``cuda``, ``cuda:N``).
        memory_budget: bytes the engine may use per batch of probes.
        val_fraction: the validation part of train that selection looks at, in (0, 1).
        n_random: random-dimension draws of every baseline (>= 1).
        seed: seeds the validation split, random baselines and random starts.
        criterion: ``metric`` (primary metric on validation, loss breaks ties) or ``loss``
            (validation log-loss / MSE: smoother on small validation splits).
        n_jobs: joblib workers of the fan-out inside a search (None: joblib's default or the
            active ``joblib.parallel_config``).
        out_dir: where results and checkpoints go (None: nothing written, nothing resumed).
        progress: progress bars.
    """

    metrics: tuple[str, ...] | None = None
    C: float | str = AUTO
    C_grid: tuple[float, ...] | None = None
    device: str = "cpu"
    memory_budget: int = 2 * 2**30
    val_fraction: float = 0.2
    n_random: int = 20
    seed: int = 0
    criterion: str = "metric"
    n_jobs: int | None = None
    out_dir: str | Path | None = None
    progress: bool = False

    def __post_init__(self) -> None:
        if self.n_random < 1:
            raise ConfigError(f"n_random must be >= 1 (random baseline draws), got {self.n_random}")
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"val_fraction must lie in (0, 1), got {self.val_fraction}")
        if self.criterion not in CRITERIA:
            raise ConfigError(
                "criterion must be 'metric' (the task's primary metric on validation, loss "
                "breaks ties) or 'loss' (validation log-loss / MSE), "
                f"got {self.criterion!r}"
            )
        mets = None
        if self.metrics:
            mets = (self.metrics,) if isinstance(self.metrics, str) else tuple(self.metrics)
        for name, value in (
            ("metrics", mets),
            ("C", parse_C(self.C)),
            ("C_grid", None if self.C_grid is None else c_grid(self.C_grid)),
            ("device", str(self.device)),
            ("memory_budget", int(self.memory_budget)),
            ("val_fraction", float(self.val_fraction)),
            ("n_random", int(self.n_random)),
            ("seed", int(self.seed)),
            ("progress", bool(self.progress)),
        ):
            object.__setattr__(self, name, value)

    def for_task(self, task: TaskSpec) -> SearchConfig:
        """This config with ``metrics`` filled in from ``task`` when not given."""
        return self if self.metrics else dataclasses.replace(self, metrics=tuple(task.metrics))

    @property
    def primary(self) -> str:
        """The selection metric (``metrics[0]``); needs ``metrics`` set (see :meth:`for_task`)."""
        if not self.metrics:
            raise ConfigError("SearchConfig.metrics is not set; call for_task(task) first")
        return self.metrics[0]

    @property
    def auto_C(self) -> bool:
        """``C`` is chosen on validation (``C="auto"``)."""
        return self.C == AUTO

    def engine(
        self, regression: bool, C: float | None = None, compile: bool | None = None
    ) -> ProbeEngine:
        """The probe engine these settings describe, at ``C`` (default ``self.C``; needed
        when that is ``"auto"``: the choice is per (layer, pool, k), see
        :meth:`probekit.search.Problem.engine_for`). ``compile``: as
        :class:`~probekit.probes.ProbeEngine`'s (None: decided per call by its size; a search
        that splits one big scan into units passes True when the whole scan is worth it)."""
        if C is None:
            if self.auto_C:
                raise ConfigError(
                    "SearchConfig.C is 'auto': pass the chosen C (Problem.engine_for(k) "
                    "chooses it on the validation split)"
                )
            C = float(self.C)
        return ProbeEngine(
            regression=regression,
            C=C,
            device=self.device,
            memory_budget=self.memory_budget,
            compile=compile,
        )

    def record(self) -> dict[str, Any]:
        """The settings that change results, as written into every result's ``config`` (and
        into checkpoint keys: ``C_grid`` appears only with ``C="auto"``, so the keys of
        searches with a fixed ``C`` are what they were)."""
        rec: dict[str, Any] = {
            "metrics": list(self.metrics or ()),
            "C": self.C,
            "val_fraction": self.val_fraction,
            "n_random": self.n_random,
            "seed": self.seed,
            "criterion": self.criterion,
        }
        if self.auto_C:
            rec["C_grid"] = list(c_grid(self.C_grid))
        return rec


_FIELDS = frozenset(f.name for f in dataclasses.fields(SearchConfig))


def resolve_call(
    where: str,
    eval: Any,
    config: SearchConfig | None,
    legacy: Mapping[str, Any],
) -> tuple[Any, SearchConfig]:
    """The eval source and the config of a search call, mapping deprecated keywords.

    ``dev=`` (the old name of ``eval``) and the settings that used to be keyword arguments of
    every search (``seed=``, ``out_dir=``, ...) still work for one release, with a
    :class:`DeprecationWarning`; anything else is a ``TypeError`` as for any function.
    """
    legacy = dict(legacy)
    if "dev" in legacy:
        if eval is not None:
            raise TypeError(f"{where}() got both eval and its deprecated alias dev")
        warnings.warn(
            f"{where}(dev=...) is deprecated; pass the evaluation source as eval",
            DeprecationWarning,
            stacklevel=3,
        )
        eval = legacy.pop("dev")
    if eval is None:
        raise TypeError(f"{where}() missing the evaluation source (eval)")
    unknown = sorted(set(legacy) - _FIELDS)
    if unknown:
        raise TypeError(f"{where}() got unexpected keyword argument(s) {', '.join(unknown)}")
    cfg = config if config is not None else SearchConfig()
    if legacy:
        warnings.warn(
            f"{where}({', '.join(f'{k}=' for k in sorted(legacy))}) is deprecated; pass "
            "config=SearchConfig(...) instead",
            DeprecationWarning,
            stacklevel=3,
        )
        if "metrics" in legacy and isinstance(legacy["metrics"], Sequence):
            legacy["metrics"] = tuple(legacy["metrics"]) or None
        cfg = dataclasses.replace(cfg, **legacy)
    return eval, cfg
