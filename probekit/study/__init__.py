"""``probekit study``: the paper's five experiments in one command (Fukuhata & Kano 2025).

A study fine-tunes the encoder through every condition of the paper (token-wise,
dimension-wise, layer-wise, freezing, cross-task) and two beyond it (do cached probes predict
fine-tuning? a multi-head model), with seeds, next to what cached probes on the pre-trained
encoder say, and ends with a verdict per claim.

Where things are:

* :mod:`.config`: :class:`StudyConfig`, :class:`Budget` (:data:`BUDGETS`: smoke, small, full),
  :class:`Recipe` (the one fine-tuning recipe of every condition).
* :mod:`.data`: the random training and eval subsets every probe and run shares.
* :mod:`.probing`: the probe stage (pre-trained caches, probe-ranked dims) and probe scores.
* :mod:`.plan`: :class:`Run` (one fine-tuning run, id = hash of its settings), :class:`Entry`
  (which table cell a run's score fills), :class:`Plan`.
* :mod:`.experiments`: one builder per experiment; the paper's effective dimensions.
* :mod:`.runner`: executing runs (skip finished, resume interrupted; serial, joblib, dask, ray).
* :mod:`.orchestrate`: :func:`study` end to end, :func:`plan_study` (``--dry-run``).
* :mod:`.results`, :mod:`.verdicts`, :mod:`.report`: from the saved files to numbers,
  verdicts (:class:`Thresholds`) and ``report.md``.

The study directory: ``study.json``, ``plan.json``, ``baselines.json``,
``probes/TASK/probe.json`` (+ caches), ``runs/RUN_ID/`` (the run's files and
``scores.json``), ``report/`` (``report.md``, PNGs, ``results.csv``).
"""

from __future__ import annotations

from .config import BUDGETS, EXPERIMENTS, Budget, Recipe, StudyConfig, parse_cross
from .orchestrate import PlanSummary, plan_study, study
from .plan import Entry, Plan, Run
from .report import render_report, write_study_report
from .results import (
    Condition,
    ProbePoint,
    Stats,
    StudyResults,
    conditions,
    load_study,
    probe_points,
    rows,
    spearman,
    write_results_csv,
)
from .verdicts import CLAIMS, Thresholds, Verdict, at_majority, judge

__all__ = [
    "BUDGETS",
    "CLAIMS",
    "EXPERIMENTS",
    "Budget",
    "Condition",
    "Entry",
    "Plan",
    "PlanSummary",
    "ProbePoint",
    "Recipe",
    "Run",
    "Stats",
    "StudyConfig",
    "StudyResults",
    "Thresholds",
    "Verdict",
    "at_majority",
    "conditions",
    "judge",
    "load_study",
    "parse_cross",
    "plan_study",
    "probe_points",
    "render_report",
    "rows",
    "spearman",
    "study",
    "write_results_csv",
    "write_study_report",
]
