"""The study report and results.csv rebuilt from hand-made study directories."""

from __future__ import annotations

import csv

import pytest
from study_fixtures import StudyBuilder

from probekit.errors import DataError
from probekit.study.report import write_study_report
from probekit.study.results import conditions, load_study, rows, write_results_csv

PLOTS = ("tokens.png", "dims_k.png", "layers.png", "freeze.png", "cross.png",
         "probe_vs_finetune.png")  # fmt: skip


def full_study(root, pending: bool = False):
    """Every experiment on cola and sst2, 3 seeds (one pending run when ``pending``)."""
    b = StudyBuilder(root)
    for t, base in (("cola", 0.40), ("sst2", 0.88)):
        b.reference(t, [base, base + 0.01, None if pending and t == "sst2" else base + 0.02])
        for pool, d in (("max_norm", -0.01), ("mean", 0.0)):
            b.cond("token", t, pool, "full", [base + d] * 3, pool=pool)
        for k in (1, 2, 3):
            b.cond("dims", t, f"probe_k{k}", "probe", [base - 0.1 / k] * 3, dims=list(range(k)))
        b.cond("dims", t, "probe_pair", "probe", [base - 0.05] * 3, dims=[0, 1])
        for i in range(4):
            rid = b.cond("dims", t, "random_pair", f"r{i}", [base - 0.2 + 0.03 * i],
                         dims=[i, i + 5])[0]  # fmt: skip
            b.probe_scores(rid, pre=0.1 + 0.02 * i, post=0.2 + 0.02 * i)
        for layer in range(7):
            b.cond("layers", t, "probe_pair", str(layer), [base - 0.3 + 0.05 * layer] * 2,
                   dims=[0, 1], layer=layer)  # fmt: skip
        b.cond("freeze", t, "frozen_2layer", "full", [base - 0.2] * 3, freeze="encoder",
               head_layers=2)  # fmt: skip
        b.cond("freeze", t, "frozen_2dim", "probe", [base - 0.3] * 3, freeze="encoder",
               head_layers=2, dims=[0, 1])  # fmt: skip
        b.cond("beyond", t, "multihead", "multihead", [base - 0.06] * 3, dims=[0, 1])
        b.cond("beyond", t, "multihead_single", "multihead", [base - 0.05] * 3, dims=[0, 1])
    for mode in ("same", "disjoint"):
        g = f"cola:sst2:{mode}"
        b.cond("cross", "cola", "A_single", g, [0.40, 0.41, 0.42], dims=[0, 1])
        b.cond("cross", "cola", "A_after_B", g, [0.39, 0.40, 0.41], dims=[0, 1])
        b.cond("cross", "sst2", "B_single", g, [0.88, 0.89, 0.90], dims=[2, 3])
        b.cond("cross", "sst2", "B_after_A", g, [0.88, 0.89, 0.89], dims=[2, 3])
    return b.write()


def test_conditions_relative_to_the_same_seeds(tmp_path):
    st = load_study(full_study(tmp_path))
    cells = {(c.experiment, c.task, c.condition, c.group): c for c in conditions(st)}
    c = cells[("dims", "sst2", "random_pair", "r1")]  # one seed (0): reference = seed 0 only
    assert c.stats.seeds == (0,) and c.reference.scores == (0.88,)
    assert c.pct_full == pytest.approx(100 * 0.71 / 0.88)
    assert c.gap_share == pytest.approx((0.71 - 0.51) / (0.88 - 0.51))
    f = cells[("freeze", "cola", "frozen_2layer", "full")]
    assert f.stats.mean == pytest.approx(0.2) and f.stats.std == pytest.approx(0.0)
    assert f.reference.mean == pytest.approx(0.41)
    tok = cells[("token", "cola", "cls", "full")]
    assert tok.stats.std == pytest.approx(0.01)  # ddof=1
    assert (tok.stats.min, tok.stats.max) == (0.40, pytest.approx(0.42))


def test_results_csv_one_row_per_entry(tmp_path):
    root = full_study(tmp_path, pending=True)
    st = load_study(root)
    rs = rows(st)
    assert len(rs) == len(st.entries)
    path = write_results_csv(st, tmp_path / "r.csv")
    with open(path, newline="") as fh:
        got = list(csv.DictReader(fh))
    assert len(got) == len(st.entries)
    assert list(got[0])[:6] == ["experiment", "task", "condition", "group", "seed", "run_id"]
    assert {"mcc", "accuracy", "score", "elapsed_s", "complete"} <= set(got[0])
    first = got[0]  # sorted: token before dims, cola before sst2, cls first
    assert (first["experiment"], first["task"], first["condition"]) == ("token", "cola", "cls")
    assert first["score"] == "0.4" and first["mcc"] == "0.4" and first["accuracy"] == "0.2"
    pend = [r for r in got if r["complete"] == "False"]
    assert len(pend) == 3 and all(r["score"] == "" for r in pend)  # token, dims, freeze entries
    layers = [r["group"] for r in got if r["experiment"] == "layers" and r["task"] == "cola"]
    assert layers == [str(x) for x in range(7) for _ in range(2)]


def test_report_is_deterministic_and_complete(tmp_path):
    root = full_study(tmp_path)
    md = write_study_report(root)
    text = md.read_text()
    csv1 = (root / "report" / "results.csv").read_bytes()
    assert write_study_report(root).read_text() == text
    assert (root / "report" / "results.csv").read_bytes() == csv1
    assert text.startswith("# probekit study report")
    assert text.index("## Claims") < text.index("Thresholds (ours") < text.index("## Token-wise")
    for needle in ("2-3 dimensions suffice", "`suffice_share` = 0.95", "## Layer-wise",
                   "## Cross-task", "### Cached probes vs fine-tuning", "## Runs (wall time",
                   "| torch_threads | 1 |", "0 pending; study complete"):  # fmt: skip
        assert needle in text, needle
    claims = text.split("## Claims")[1].split("Thresholds")[0]
    assert claims.count("**holds**") + claims.count("**does not hold**") == 7
    for name in PLOTS:
        p = root / "report" / name
        assert p.is_file() and p.stat().st_size > 1000, name
        assert f"]({name})" in text


def test_report_with_pending_runs(tmp_path):
    root = full_study(tmp_path, pending=True)
    text = write_study_report(root).read_text()
    assert "1 pending; study not complete" in text
    assert "inconclusive** | runs pending (1 of" in text
    assert "| pending |" in text


def test_not_a_study_directory(tmp_path):
    with pytest.raises(DataError, match="not a probekit study directory"):
        load_study(tmp_path)
