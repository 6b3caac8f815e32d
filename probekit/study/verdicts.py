"""Verdicts on the paper's claims (Fukuhata & Kano 2025) from a study's saved results.

The paper states no thresholds; these are ours (:class:`Thresholds`, options of the study).
Scores are GLUE metrics in [0, 1] (MCC in [-1, 1]); one "point" is 0.01 of a score.

Rules (one per kind of comparison; ``p`` a threshold in points, ``SE`` the standard error of
the difference of two means, ``sqrt(s1**2/n1 + s2**2/n2)``, ``tol = max(p, equiv_se * SE)``):

* *equivalent* (token-wise, higher layers): ``|diff| <= p`` holds; ``|diff| > tol`` does not
  hold; in between (within two standard errors but beyond ``p``) the seed spread is larger
  than the effect: inconclusive.
* *A beats B* (lower layers, freezing): ``diff > tol`` holds; ``|diff| <= p`` or
  ``diff < -tol`` does not hold; otherwise inconclusive.
* *not worse* (forgetting, multi-head): a loss ``<= p`` holds, ``> tol`` does not hold,
  otherwise inconclusive.
* *k dimensions suffice*: the best k-dimension mean (k = 2 or 3; the paper's triples,
  their 2-subsets, the effective pairs and the probe-chosen dims; random pairs are the
  baseline) ``>= suffice_share`` of the full-width mean holds; a shortfall within
  ``equiv_se * SE`` is inconclusive; otherwise it does not hold.
* A "holds" is turned into "inconclusive" when a condition it rests on sits at the majority
  baseline (mean at most ``max(majority_points, majority_se * SE)`` above it; for MCC the
  majority is 0), and a claim whose full-width (or single-task) reference is at the majority
  baseline is inconclusive. Any pending run a claim rests on makes it inconclusive.
* Over tasks (and pairs): every part holds -> holds; any part does not hold -> does not hold;
  otherwise inconclusive.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from .results import (
    Condition,
    Stats,
    StudyResults,
    conditions,
    natural,
    probe_correlation,
    reference_scores,
)
from .thresholds import Thresholds

__all__ = [
    "CLAIMS",
    "HOLDS",
    "INCONCLUSIVE",
    "NOT_HOLDS",
    "Thresholds",
    "Verdict",
    "claim_cross",
    "claim_dims",
    "claim_freeze",
    "claim_layers",
    "claim_multihead",
    "claim_probe_correlation",
    "claim_token",
    "judge",
]

HOLDS, NOT_HOLDS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"
_EPS = 1e-9  # scores equal to a threshold up to float rounding count as on it


#: claim id -> (claim, the paper's statement)
CLAIMS: dict[str, tuple[str, str]] = {
    "token": ("Token-wise: a head on max_norm or mean equals one on [CLS] (full width)",
              "outputs other than [CLS] carry equivalent information"),
    "dims": ("Dimension-wise: a 2-3 dimension head reaches the full-width score",
             "2-3 dimensions suffice"),
    "layers": ("Layer-wise: a 2-dimension head on lower layers scores less; on higher "
               "layers about as on the final one",
               "lower layers contribute less, higher layers about the same"),
    "freeze": ("Freezing: full fine-tuning (1-layer head) beats a frozen encoder (2-layer head)",
               "hidden layers change a lot during fine-tuning"),
    "cross": ("Cross-task: after fine-tuning on B, A (kept head) loses little and B learns "
              "as alone (best of same/disjoint dims)",
              "one model can hold several tasks"),
    "probe_correlation": ("Beyond (a): cached-probe scores of the pairs (pre-trained encoder) "
                          "rank their fine-tuned scores (Spearman rho)",
                          "- (beyond the paper)"),
    "multihead": ("Beyond (b): one encoder with one head per task on disjoint dims matches "
                  "the single-task runs",
                  "- (beyond the paper)"),
}  # fmt: skip


@dataclass(frozen=True)
class Verdict:
    """The answer to one claim.

    Attributes:
        claim_id: key of :data:`CLAIMS`.
        claim: what we test; paper: the paper's statement.
        numbers: our numbers behind the verdict, short.
        verdict: ``holds``, ``does not hold`` or ``inconclusive``.
        reason: why, in a few words.
    """

    claim_id: str
    claim: str
    paper: str
    numbers: str
    verdict: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Part = tuple[str, str, str]  # (label, verdict, reason)


def _ms(st: Stats | Condition | None) -> str:
    st = st.stats if isinstance(st, Condition) else st
    if st is None or not st.n:
        return "-"
    return f"{st.mean:.3f}±{st.std:.3f}"


def _pts(x: float) -> str:
    return f"{100 * x:+.1f} pts"


def _se(a: Stats, b: Stats) -> float:
    return math.sqrt(a.se**2 + b.se**2)


def at_majority(st: Stats, majority: float | None, th: Thresholds) -> bool:
    """Whether ``st``'s mean is within ``max(majority_points, majority_se * SE)`` of (or
    below) the majority score (False when the majority is unknown)."""
    if majority is None or not st.n:
        return False
    band = max(th.majority_points / 100, th.majority_se * st.se) + _EPS
    return st.mean <= majority + band


def _equal(a: Stats, b: Stats, th: Thresholds) -> tuple[str, str]:
    d, p = b.mean - a.mean, th.equiv_points / 100 + _EPS
    tol = max(p, th.equiv_se * _se(a, b))
    if abs(d) <= p:
        return HOLDS, f"within {th.equiv_points:g} pts"
    if abs(d) > tol:
        return NOT_HOLDS, f"differs by {_pts(d)} (> {100 * tol:.1f} pts)"
    return INCONCLUSIVE, f"seed spread larger than the effect ({_pts(d)}, 2 SE {100 * tol:.1f})"


def _better(a: Stats, b: Stats, th: Thresholds) -> tuple[str, str]:
    d, p = a.mean - b.mean, th.equiv_points / 100 + _EPS
    tol = max(p, th.equiv_se * _se(a, b))
    if d > tol:
        return HOLDS, f"ahead by {_pts(d)} (> {100 * tol:.1f} pts)"
    if abs(d) <= p or d < -tol:
        return NOT_HOLDS, f"difference {_pts(d)}"
    return INCONCLUSIVE, f"seed spread larger than the effect ({_pts(d)}, 2 SE {100 * tol:.1f})"


def _not_worse(ref: Stats, x: Stats, points: float, th: Thresholds) -> tuple[str, str]:
    loss, p = ref.mean - x.mean, points / 100 + _EPS
    if loss <= p:
        return HOLDS, f"loses {100 * loss:.1f} pts (<= {points:g})"
    tol = max(p, th.equiv_se * _se(ref, x))
    if loss > tol:
        return NOT_HOLDS, f"loses {100 * loss:.1f} pts (> {100 * tol:.1f})"
    return INCONCLUSIVE, f"seed spread larger than the effect (loses {100 * loss:.1f} pts)"


def _guard(v: tuple[str, str], th: Thresholds, maj: float | None, *sts: Stats) -> tuple[str, str]:
    """A "holds" resting on a condition at the majority baseline becomes inconclusive."""
    if v[0] == HOLDS and any(at_majority(s, maj, th) for s in sts):
        return INCONCLUSIVE, "at the majority baseline"
    return v


def _combine(parts: list[Part]) -> tuple[str, str]:
    if not parts:
        return INCONCLUSIVE, "not run"
    for verdict in (NOT_HOLDS, INCONCLUSIVE):
        bad = [f"{lab}: {r}" for lab, v, r in parts if v == verdict]
        if bad:
            return verdict, "; ".join(bad)
    return HOLDS, "; ".join(f"{lab}: {r}" for lab, _, r in parts)


def _cells(results: StudyResults, experiment: str) -> dict[tuple[str, str, str], Condition]:
    return {
        (c.task, c.condition, c.group): c for c in conditions(results) if c.experiment == experiment
    }


def _pending(results: StudyResults, experiments: tuple[str, ...]) -> int:
    return sum(
        e["run_id"] not in results.scores for e in results.entries if e["experiment"] in experiments
    )


def _verdict(
    results: StudyResults, cid: str, parts: list[Part], numbers: list[str], exps: tuple[str, ...]
) -> Verdict:
    claim, paper = CLAIMS[cid]
    n_pending = _pending(results, exps)
    if not any(e["experiment"] in exps[:1] for e in results.entries):
        v, r = INCONCLUSIVE, f"experiment {exps[0]!r} not in this study"
    elif n_pending:
        n_all = sum(e["experiment"] in exps for e in results.entries)
        v, r = INCONCLUSIVE, f"runs pending ({n_pending} of {n_all} entries)"
    else:
        v, r = _combine(parts)
    return Verdict(cid, claim, paper, "; ".join(numbers) or "-", v, r)


def _tasks(cells: dict[tuple[str, str, str], Condition]) -> list[str]:
    return sorted({t for t, _, _ in cells})


def _ref(results: StudyResults, task: str) -> Stats:
    ref = reference_scores(results, task)
    return Stats(tuple(ref[s] for s in sorted(ref)), tuple(sorted(ref)))


def claim_token(results: StudyResults, th: Thresholds) -> Verdict:
    """Heads on ``max_norm`` and ``mean`` equivalent to ``cls`` (full width), per task."""
    cells = _cells(results, "token")
    parts, numbers = [], []
    for t in _tasks(cells):
        cls, maj = cells.get((t, "cls", "full")), results.majority(t)
        if cls is None or not cls.stats.n:
            parts.append((t, INCONCLUSIVE, "no cls runs"))
            continue
        nums = [f"cls {_ms(cls)}"]
        for pool in ("max_norm", "mean"):
            c = cells.get((t, pool, "full"))
            if c is None or not c.stats.n:
                continue
            nums.append(f"{pool} {_ms(c)} ({_pts(c.stats.mean - cls.stats.mean)})")
            if at_majority(cls.stats, maj, th):
                v = (INCONCLUSIVE, "full-width cls at the majority baseline")
            else:
                v = _guard(_equal(cls.stats, c.stats, th), th, maj, c.stats)
            parts.append((f"{t} {pool}", *v))
        numbers.append(f"{t}: " + ", ".join(nums))
    return _verdict(results, "token", parts, numbers, ("token",))


_K_CONDITIONS = ("triple", "triple_minus", "effective_pair", "probe_pair", "probe_k2", "probe_k3")


def claim_dims(results: StudyResults, th: Thresholds) -> Verdict:
    """The best 2-3 dimension head reaches ``suffice_share`` of the full-width mean, per task."""
    cells = _cells(results, "dims")
    parts, numbers = [], []
    for t in _tasks(cells):
        full, maj = _ref(results, t), results.majority(t)
        cand = [
            c
            for (tt, cond, _), c in cells.items()
            if tt == t and cond in _K_CONDITIONS and c.k in (2, 3) and c.stats.n
        ]
        rand = Stats.pooled([c.stats for (tt, cond, _), c in cells.items()
                             if tt == t and cond == "random_pair"])  # fmt: skip
        if not cand or not full.n:
            parts.append((t, INCONCLUSIVE, "no k-dimension or full-width runs"))
            continue
        best = max(cand, key=lambda c: (c.stats.mean, natural(c.condition), natural(c.group)))
        b = best.stats
        inside = sum(full.min <= x <= full.max for x in b.scores)
        share = b.mean / full.mean if full.mean else math.nan
        numbers.append(
            f"{t}: best {best.condition}/{best.group} (k={best.k}) {_ms(b)} = "
            f"{100 * share:.0f}% of full {_ms(full)}, {inside}/{b.n} seeds in full's range; "
            f"random pairs {_ms(rand)}"
        )
        if at_majority(full, maj, th):
            parts.append((t, INCONCLUSIVE, "full-width reference at the majority baseline"))
            continue
        gap = th.suffice_share * full.mean - b.mean
        if gap <= _EPS:
            v = (HOLDS, f"{100 * share:.0f}% >= {100 * th.suffice_share:.0f}% of full")
        elif gap <= th.equiv_se * _se(b, full):
            v = (INCONCLUSIVE, f"seed spread larger than the effect ({100 * share:.0f}% of full)")
        else:
            v = (NOT_HOLDS, f"{100 * share:.0f}% < {100 * th.suffice_share:.0f}% of full")
        parts.append((t, *_guard(v, th, maj, b)))
    return _verdict(results, "dims", parts, numbers, ("dims", "token"))


def _layer_parts(
    t: str, cond: str, by_layer: dict[int, Condition], maj: float | None, th: Thresholds
) -> tuple[list[Part], str]:
    layers = sorted(by_layer)
    lab = f"{t} {cond}"
    if len(layers) < 3:
        return [(lab, INCONCLUSIVE, f"only {len(layers)} layer(s)")], ""
    half = len(layers) // 2
    lower = Stats.pooled([by_layer[x].stats for x in layers[:half]])
    upper = Stats.pooled([by_layer[x].stats for x in layers[half:]])
    final = by_layer[layers[-1]].stats
    nums = (
        f"{t} {cond}: layers {layers[0]}-{layers[half - 1]} {_ms(lower)}, "
        f"{layers[half]}-{layers[-1]} {_ms(upper)}, final {_ms(final)}"
    )
    if at_majority(final, maj, th) or at_majority(upper, maj, th):
        return [(lab, INCONCLUSIVE, "upper layers at the majority baseline")], nums
    parts: list[Part] = [(f"{lab} lower<upper", *_better(upper, lower, th))]
    for x in layers[half:-1]:
        v = _guard(_equal(final, by_layer[x].stats, th), th, maj, by_layer[x].stats)
        parts.append((f"{lab} layer {x}~final", *v))
    return parts, nums


def claim_layers(results: StudyResults, th: Thresholds) -> Verdict:
    """Lower half of the layers below the upper half; each upper layer equivalent to the final
    one (per task, for the probe pair and the random pair)."""
    cells = _cells(results, "layers")
    parts, numbers = [], []
    for t in _tasks(cells):
        for cond in ("probe_pair", "random_pair"):
            by_layer = {
                int(c.layer if c.layer is not None else g): c
                for (tt, cc, g), c in cells.items()
                if tt == t and cc == cond and c.stats.n
            }
            if not by_layer:
                continue
            ps, nums = _layer_parts(t, cond, by_layer, results.majority(t), th)
            parts += ps
            numbers += [nums] if nums else []
    return _verdict(results, "layers", parts, numbers, ("layers",))


def claim_freeze(results: StudyResults, th: Thresholds) -> Verdict:
    """Full fine-tuning with a 1-layer head beats the frozen encoder with a 2-layer head."""
    cells = _cells(results, "freeze")
    parts, numbers = [], []
    for t in _tasks(cells):
        maj = results.majority(t)
        full_c = cells.get((t, "full_1layer", "full"))
        full = full_c.stats if full_c is not None and full_c.stats.n else _ref(results, t)
        fr = next((c for (tt, cc, _), c in cells.items() if tt == t and cc == "frozen_2layer"),
                  None)  # fmt: skip
        f2 = next((c for (tt, cc, _), c in cells.items() if tt == t and cc == "frozen_2dim"),
                  None)  # fmt: skip
        numbers.append(
            f"{t}: full 1-layer {_ms(full)}, frozen 2-layer {_ms(fr)}, frozen 2-dim {_ms(f2)}"
        )
        if fr is None or not fr.stats.n or not full.n:
            parts.append((t, INCONCLUSIVE, "no frozen or full-width runs"))
        elif at_majority(full, maj, th):
            parts.append((t, INCONCLUSIVE, "full fine-tuning at the majority baseline"))
        else:
            parts.append((t, *_better(full, fr.stats, th)))
    return _verdict(results, "freeze", parts, numbers, ("freeze", "token"))


_RANK = {HOLDS: 0, INCONCLUSIVE: 1, NOT_HOLDS: 2}


def _cross_group(
    results: StudyResults, cells: dict, a: str, b: str, g: str, th: Thresholds
) -> tuple[tuple[str, str], str]:
    get = {c: cells.get((t, c, g)) for t, c in
           ((a, "A_single"), (a, "A_after_B"), (b, "B_single"), (b, "B_after_A"))}  # fmt: skip
    st = {k: c.stats for k, c in get.items() if c is not None and c.stats.n}
    if len(st) < 4:
        return (INCONCLUSIVE, "missing runs"), ""
    nums = (
        f"{g}: {a} {_ms(st['A_single'])} -> {_ms(st['A_after_B'])}, "
        f"{b} {_ms(st['B_single'])} -> {_ms(st['B_after_A'])}"
    )
    parts: list[Part] = []
    for task, ref, x in ((a, "A_single", "A_after_B"), (b, "B_single", "B_after_A")):
        maj = results.majority(task)
        if at_majority(st[ref], maj, th):
            parts.append((task, INCONCLUSIVE, f"{task} alone at the majority baseline"))
        else:
            v = _not_worse(st[ref], st[x], th.forget_points, th)
            parts.append((task, *_guard(v, th, maj, st[x])))
    return _combine(parts), nums


def claim_cross(results: StudyResults, th: Thresholds) -> Verdict:
    """For each ordered pair A:B, A (its kept head) loses at most ``forget_points`` after B and B
    after A at most as much against B alone; the better of the two modes (same/disjoint dims)
    counts for the pair."""
    cells = _cells(results, "cross")
    groups = sorted({g for _, _, g in cells}, key=natural)
    by_pair: dict[str, list[tuple[str, tuple[str, str]]]] = {}
    numbers = []
    for g in groups:
        bits = g.split(":")
        if len(bits) != 3:
            continue
        res, nums = _cross_group(results, cells, bits[0], bits[1], g, th)
        by_pair.setdefault(f"{bits[0]}:{bits[1]}", []).append((bits[2], res))
        numbers += [nums] if nums else []
    parts: list[Part] = []
    for pair, modes in sorted(by_pair.items()):
        mode, (v, r) = min(modes, key=lambda m: (_RANK[m[1][0]], m[0]))
        parts.append((f"{pair} ({mode})", v, r))
    return _verdict(results, "cross", parts, numbers, ("cross",))


def claim_probe_correlation(results: StudyResults, th: Thresholds) -> Verdict:
    """Per task, Spearman's rho of the pre-trained probe scores against the fine-tuned scores
    of the same pairs: holds at ``rho >= corr_min`` with ``p < corr_alpha``."""
    parts, numbers = [], []
    for t in sorted({e["task"] for e in results.entries}):
        c = probe_correlation(results, t)
        if c is None:
            continue
        pts, rho, pv, rho_post = c.points, c.rho, c.p, c.rho_post
        numbers.append(
            f"{t}: rho {rho:.2f} (p {pv:.3f}, {len(pts)} heads), fine-tuned-encoder probe rho "
            f"{rho_post:.2f}"
        )
        maj = results.majority(t)
        ft = Stats(tuple(p.finetuned for p in pts))
        if len(pts) < th.corr_min_pairs:
            parts.append((t, INCONCLUSIVE, f"{len(pts)} heads < {th.corr_min_pairs}"))
        elif maj is not None and ft.max <= maj + th.majority_points / 100:
            parts.append((t, INCONCLUSIVE, "fine-tuned scores at the majority baseline"))
        elif math.isnan(rho):
            parts.append((t, INCONCLUSIVE, "constant scores"))
        elif rho < th.corr_min:
            parts.append((t, NOT_HOLDS, f"rho {rho:.2f} < {th.corr_min:g}"))
        elif pv >= th.corr_alpha:
            parts.append((t, INCONCLUSIVE, f"rho {rho:.2f} not significant (p {pv:.3f})"))
        else:
            parts.append((t, HOLDS, f"rho {rho:.2f} >= {th.corr_min:g}, p {pv:.3f}"))
    v = _verdict(results, "probe_correlation", parts, numbers, ("beyond", "dims", "layers"))
    if not numbers and v.verdict == INCONCLUSIVE and "pending" not in v.reason:
        return Verdict(v.claim_id, v.claim, v.paper, v.numbers, v.verdict, "no probe scores")
    return v


def claim_multihead(results: StudyResults, th: Thresholds) -> Verdict:
    """Per task of the multi-head run: not worse than its single-task run by more than
    ``equiv_points``."""
    cells = _cells(results, "beyond")
    parts, numbers = [], []
    for t in _tasks(cells):
        mh = next((c for (tt, cc, _), c in cells.items() if tt == t and cc == "multihead"), None)
        one = next((c for (tt, cc, _), c in cells.items()
                    if tt == t and cc == "multihead_single"), None)  # fmt: skip
        if mh is None or one is None or not mh.stats.n or not one.stats.n:
            continue
        numbers.append(f"{t}: multi-head {_ms(mh)} vs single {_ms(one)}")
        maj = results.majority(t)
        if at_majority(one.stats, maj, th):
            parts.append((t, INCONCLUSIVE, "single-task run at the majority baseline"))
        else:
            v = _not_worse(one.stats, mh.stats, th.equiv_points, th)
            parts.append((t, *_guard(v, th, maj, mh.stats)))
    return _verdict(results, "multihead", parts, numbers, ("beyond",))


def judge(results: StudyResults, thresholds: Thresholds | None = None) -> list[Verdict]:
    """One :class:`Verdict` per claim of :data:`CLAIMS`, in that order (``thresholds``
    default: the study's own, from ``study.json``)."""
    th = thresholds if thresholds is not None else Thresholds.from_dict(results.thresholds)
    return [
        claim_token(results, th),
        claim_dims(results, th),
        claim_layers(results, th),
        claim_freeze(results, th),
        claim_cross(results, th),
        claim_probe_correlation(results, th),
        claim_multihead(results, th),
    ]
