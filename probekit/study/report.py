"""The study's report, rebuilt from the saved files of a study directory alone.

:func:`write_study_report` writes ``OUT/report/report.md`` (the claims table, the
thresholds, one table per experiment with its plots, then the config, versions, machine and
the wall time of every run), ``OUT/report/results.csv`` and the PNG plots. The same files
give byte-identical ``report.md`` and ``results.csv`` (no clock, everything sorted).
"""

from __future__ import annotations

import json
import logging
from dataclasses import fields
from pathlib import Path
from typing import Any

from .._io import atomic_write_text
from ..report.format import fmt, table
from . import plots
from .results import (
    EXPERIMENTS,
    Condition,
    Stats,
    StudyResults,
    conditions,
    load_study,
    natural,
    probe_correlation,
    write_results_csv,
)
from .verdicts import Thresholds, Verdict, judge

logger = logging.getLogger(__name__)

__all__ = ["render_report", "write_study_report"]

_TITLES = {
    "token": "Token-wise (1): [CLS] vs max_norm vs mean, full width",
    "dims": "Dimension-wise (2): random pairs, the paper's triples, probe-chosen dims",
    "layers": "Layer-wise (3): a 2-dimension [CLS] head at every layer",
    "freeze": "Freezing (4): frozen encoder vs full fine-tuning",
    "cross": "Cross-task (5): A, then B with a new head",
    "beyond": "Beyond the paper (6): multi-head model",
}
_THRESHOLD_TEXT = {
    "suffice_share": "k dims suffice: k-dim mean >= this share of the full-width mean",
    "equiv_points": "equivalent: |difference| <= this many points (0.01) ...",
    "equiv_se": "... or within this many standard errors of the difference (then inconclusive)",
    "forget_points": "forgets little: A loses at most this many points after B",
    "majority_points": "at the majority baseline: mean <= majority + this many points ...",
    "majority_se": "... or this many standard errors of the mean (never 'holds' there)",
    "corr_min": "probes predict fine-tuning: Spearman rho >= this ...",
    "corr_alpha": "... with p-value below this",
    "corr_min_pairs": "fewer fine-tuned heads with probe scores than this: inconclusive",
}
_PLOTS = {
    "token": ("tokens.png", lambda r, c, p: plots.plot_tokens(c, p)),
    "dims": ("dims_k.png", plots.plot_dims),
    "layers": ("layers.png", lambda r, c, p: plots.plot_layers(c, p)),
    "freeze": ("freeze.png", lambda r, c, p: plots.plot_freeze(c, p)),
    "cross": ("cross.png", lambda r, c, p: plots.plot_cross(c, p)),
}


def _ms(st: Stats | None) -> str:
    return "-" if st is None or not st.n else f"{st.mean:.4f} ± {st.std:.4f}"


def _claims(verdicts: list[Verdict]) -> str:
    rows = [[v.claim, v.paper, v.numbers, f"**{v.verdict}**", v.reason] for v in verdicts]
    return table(["claim", "paper's statement", "our numbers", "verdict", "why"], rows)


def _thresholds(th: Thresholds) -> str:
    lines = ["Thresholds (ours; the paper gives none; options of `probekit study`):", ""]
    for f in fields(th):
        lines.append(f"- `{f.name}` = {getattr(th, f.name)}: {_THRESHOLD_TEXT[f.name]}")
    return "\n".join(lines)


def _random_pairs(results: StudyResults, cells: list[Condition], task: str) -> tuple[str, str]:
    ft = Stats.pooled(
        [
            c.stats
            for c in cells
            if (c.experiment, c.task, c.condition) == ("dims", task, "random_pair")
        ]
    )
    rp = (results.probes.get(task) or {}).get("random_pair") or {}
    probe = "-" if "mean" not in rp else f"{fmt(rp['mean'])} ± {fmt(rp.get('std'))}"
    return _ms(ft), probe


def _experiment_table(results: StudyResults, cells: list[Condition], exp: str) -> str:
    head = ["task", "condition", "group", "k", "layer", "mean ± sd", "seeds", "min - max",
            "% of full", "gap share", "majority", "random pairs (fine-tuned)",
            "random pair (probe)", "runs done / entries"]  # fmt: skip
    rows = []
    rand = {t: _random_pairs(results, cells, t) for t in sorted({c.task for c in cells})}
    for c in cells:
        if c.experiment != exp:
            continue
        st = c.stats
        rows.append([
            c.task, c.condition, c.group, "full" if c.k is None else c.k, c.layer, _ms(st),
            " ".join(str(s) for s in st.seeds) or "-",
            "-" if not st.n else f"{st.min:.4f} - {st.max:.4f}",
            None if c.pct_full is None else f"{c.pct_full:.1f}%",
            c.gap_share, c.majority, *rand[c.task], f"{c.n_entries - c.n_pending} / {c.n_entries}",
        ])  # fmt: skip
    return table(head, rows)


def _correlation(results: StudyResults) -> str:
    rows = []
    for t in sorted({e["task"] for e in results.entries}):
        c = probe_correlation(results, t)
        if c is not None:
            rows.append([t, len(c.points), c.rho, c.p, c.rho_post, c.p_post])
    if not rows:
        return "No fine-tuned head carries cached-probe scores."
    head = ["task", "heads", "rho (pre-trained probe)", "p", "rho (fine-tuned probe)", "p"]
    return table(head, rows)


def _section(results: StudyResults, cells: list[Condition], exp: str, outd: Path,
             files: list[Path]) -> str:  # fmt: skip
    parts = [f"## {_TITLES[exp]}", "", _experiment_table(results, cells, exp)]
    if exp in _PLOTS:
        name, draw = _PLOTS[exp]
        if draw(results, cells, outd / name) is not None:
            files.append(outd / name)
            parts += ["", f"![{exp}]({name})"]
    if exp == "beyond":
        parts += ["", "### Cached probes vs fine-tuning (6a)", "", _correlation(results)]
        if plots.plot_probe_scatter(results, outd / "probe_vs_finetune.png") is not None:
            files.append(outd / "probe_vs_finetune.png")
            parts += ["", "![probe vs fine-tuned](probe_vs_finetune.png)"]
    return "\n".join(parts)


def _baselines(results: StudyResults) -> str:
    rows = []
    for t in sorted(set(results.baselines) | set(results.probes)):
        b, p = results.baselines.get(t) or {}, results.probes.get(t) or {}
        rp = p.get("random_pair") or {}
        rows.append([
            t, results.metric(t), results.majority(t), p.get("full"),
            "-" if "mean" not in rp else f"{fmt(rp['mean'])} ± {fmt(rp.get('std'))}",
            p.get("best_pair"), p.get("best_pair_score"), p.get("layer"), b.get("n_train"),
            b.get("n_eval"),
        ])  # fmt: skip
    head = ["task", "metric", "majority", "probe full width", "probe random pair",
            "probe best pair", "its score", "layer", "n_train", "n_eval"]  # fmt: skip
    return table(head, rows)


def _kv(d: dict[str, Any]) -> str:
    return table(["key", "value"], [[k, json.dumps(d[k], sort_keys=True)] for k in sorted(d)])


def _runs(results: StudyResults) -> str:
    rows = []
    for rid in sorted(results.runs, key=natural):
        r, s = results.runs[rid], results.scores.get(rid) or {}
        rows.append([
            rid, r.get("kind"), r.get("task"), r.get("seed"),
            "full" if r.get("dims") is None else " ".join(map(str, r["dims"])), r.get("layer"),
            r.get("pool"), r.get("freeze"), r.get("head_layers"), s.get("elapsed_s"),
            s.get("train_seconds"), "done" if rid in results.scores else "pending",
        ])  # fmt: skip
    head = ["run", "kind", "task", "seed", "dims", "layer", "pool", "freeze", "head_layers",
            "elapsed_s", "train_seconds", "status"]  # fmt: skip
    return table(head, rows)


def render_report(results: StudyResults, outd: Path) -> tuple[str, list[Path]]:
    """The report's Markdown and the plots it drew into ``outd``."""
    th = Thresholds.from_dict(results.thresholds)
    cells = conditions(results)
    st = results.study
    n_done, n_all = len(results.scores), len(results.runs)
    state = "complete" if st.get("complete") and not results.pending else "not complete"
    head = [
        "# probekit study report",
        "",
        f"Model `{(st.get('config') or {}).get('model', '-')}`, tasks "
        f"{', '.join(st.get('tasks') or sorted(results.baselines))}; {n_done} of {n_all} runs "
        f"done ({len(results.pending)} pending; study {state}). Scores: the task's GLUE metric "
        "on the eval split, mean ± sample sd over seeds; % of full is against the full-width "
        "[CLS] head of the same seeds; gap share = (x - majority) / (full - majority).",
        "",
        "## Claims",
        "",
        _claims(judge(results, th)),
        "",
        _thresholds(th),
        "",
        "## Baselines",
        "",
        _baselines(results),
    ]
    files: list[Path] = []
    exps = sorted({e["experiment"] for e in results.entries},
                  key=lambda e: (EXPERIMENTS.index(e) if e in EXPERIMENTS else 99, e))  # fmt: skip
    body = [_section(results, cells, e, outd, files) for e in exps if e in _TITLES]
    tail = [
        "## Config",
        "",
        "```json",
        json.dumps(
            {"config": st.get("config"), "budget": st.get("budget")}, indent=2, sort_keys=True
        ),
        "```",
        "",
        "## Versions",
        "",
        _kv(st.get("versions") or {}),
        "",
        "## Machine",
        "",
        _kv({**(st.get("machine") or {}), "study elapsed_s": st.get("elapsed_s")}),
        "",
        "## Runs (wall time of every run)",
        "",
        _runs(results),
    ]
    return "\n".join(head) + "\n\n" + "\n\n".join([*body, "\n".join(tail)]) + "\n", files


def write_study_report(out_dir: str | Path) -> Path:
    """Rebuild ``OUT/report/`` (report.md, results.csv, plots) from the study's saved files;
    returns the path of ``report.md``.

    Raises:
        DataError: ``out_dir`` is not a study directory.
    """
    results = load_study(out_dir)
    outd = Path(out_dir) / "report"
    outd.mkdir(parents=True, exist_ok=True)
    md, files = render_report(results, outd)
    path = outd / "report.md"
    atomic_write_text(path, md)
    write_results_csv(results, outd / "results.csv")
    logger.info("study report: %s (%d plots)", path, len(files))
    return path
