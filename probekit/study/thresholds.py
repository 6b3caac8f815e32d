"""The thresholds behind every verdict of a study (ours: the paper gives none)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from ..errors import ConfigError

__all__ = ["Thresholds"]


@dataclass(frozen=True)
class Thresholds:
    """The thresholds behind every verdict (ours: the paper gives none).

    The *tolerance* of a comparison is ``max(equiv_points, equiv_se * SE)`` points, SE the
    standard error of the difference of the two means (``sqrt(s1²/n1 + s2²/n2)``).

    Attributes:
        suffice_share: "k dimensions suffice" when the k-dimension mean is at least this
            share of the full-width mean (0.95 = 95%).
        equiv_points: two conditions are "equivalent" when their means differ by at most
            the tolerance; this is its floor, in points.
        equiv_se: the tolerance's standard-error multiple.
        forget_points: "forgets little" when task A loses at most this many points after
            training on B.
        majority_points: a condition is "at the majority baseline" when its mean is at most
            ``max(majority_points, majority_se * SE)`` points above the majority score (SE
            of its mean); such a condition never supports "holds".
        majority_se: the standard-error multiple of that band.
        corr_min: the probe-predicts-fine-tuning claim holds when Spearman's rho between
            probe scores and fine-tuned scores is at least this (and significant).
        corr_alpha: the p-value below which rho counts as significant.
        corr_min_pairs: fewer (probe, fine-tuned) pairs than this are inconclusive.
    """

    suffice_share: float = 0.95
    equiv_points: float = 2.0
    equiv_se: float = 2.0
    forget_points: float = 2.0
    majority_points: float = 2.0
    majority_se: float = 2.0
    corr_min: float = 0.5
    corr_alpha: float = 0.05
    corr_min_pairs: int = 4

    def __post_init__(self) -> None:
        if not 0.0 < self.suffice_share <= 1.0:
            raise ConfigError(f"suffice_share must be in (0, 1], got {self.suffice_share!r}")
        for name in ("equiv_points", "equiv_se", "forget_points", "majority_points", "majority_se"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not v >= 0:
                raise ConfigError(f"{name} must be a non-negative number, got {v!r}")
        if not -1.0 <= self.corr_min <= 1.0:
            raise ConfigError(f"corr_min must be in [-1, 1], got {self.corr_min!r}")
        if not 0.0 < self.corr_alpha < 1.0:
            raise ConfigError(f"corr_alpha must be in (0, 1), got {self.corr_alpha!r}")
        if not isinstance(self.corr_min_pairs, int) or self.corr_min_pairs < 3:
            n = self.corr_min_pairs
            raise ConfigError(f"corr_min_pairs must be an integer >= 3, got {n!r}")

    def to_dict(self) -> dict[str, Any]:
        """The ``thresholds`` record of ``study.json``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Thresholds:
        """Read a :meth:`to_dict` record (missing keys take the defaults; unknown keys refused)."""
        d = dict(d or {})
        known = {f.name for f in fields(cls)}
        extra = sorted(set(d) - known)
        if extra:
            raise ConfigError(f"unknown threshold(s) {extra}; known: {sorted(known)}")
        return cls(**d)
