"""probekit report: Markdown/CSV tables and PNG plots from search results."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from probekit import search as S
from probekit.errors import DataError
from probekit.report import is_search_result, load_results, write_report
from probekit.search import ArraySource


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory):
    rng = np.random.default_rng(0)

    def make(n, seed):
        r = np.random.default_rng(seed)
        X = r.standard_normal((n, 2, 24)).astype(np.float32)
        y = (X[:, -1, 3] + X[:, -1, 11] + 0.3 * r.standard_normal(n) > 0).astype(np.int64)
        return {"cls": X, "mean": X[:, :, ::-1].copy()}, y

    (ft, yt), (fd, yd) = make(300, 0), make(200, 1)
    tr, dv = ArraySource(ft, yt), ArraySource(fd, yd)
    root = tmp_path_factory.mktemp("results")
    S.singles(tr, dv, out_dir=root / "singles")
    S.pairs(tr, dv, out_dir=root / "pairs")
    S.greedy(tr, dv, k=3, repeats=2, out_dir=root / "greedy")
    S.eliminate(tr, dv, start=[1, 3, 7, 11], k=2, out_dir=root / "eliminate")
    S.layers(tr, dv, k=2, out_dir=root / "layers")
    S.tokens(tr, dv, k=2, pools=["cls", "mean"], out_dir=root / "tokens")
    del rng
    return root


def test_report_writes_tables_and_plots(results_dir, tmp_path):
    rep = write_report(results_dir, tmp_path / "rep")
    assert len(rep.results) == 6
    md = rep.markdown.read_text()
    for verb in ("singles", "pairs", "greedy", "eliminate", "layers", "tokens"):
        assert f"## {verb}:" in md
    assert "Stability over 2 repeats" in md
    pngs = sorted(p.name for p in rep.files if p.suffix == ".png")
    assert pngs == sorted(
        [
            "singles_singles_singles.png",
            "pairs_pairs_heatmap.png",
            "greedy_greedy_curve.png",
            "eliminate_eliminate_drops.png",
            "layers_layers_layers.png",
            "tokens_tokens_tokens.png",
        ]
    )
    for p in rep.files:
        assert p.exists() and p.stat().st_size > 0
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert f"]({p.name})" in md
    with open(tmp_path / "rep" / "summary.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["verb"] for r in rows} == {
        "singles",
        "pairs",
        "greedy",
        "eliminate",
        "layers",
        "tokens",
    }
    g = next(r for r in rows if r["verb"] == "greedy")
    assert float(g["dev"]) > float(g["random_mean"])


def test_report_default_out_and_rerun(results_dir):
    rep = write_report(results_dir)
    assert rep.markdown == results_dir / "report" / "report.md"
    # a second run does not read its own output nor the checkpoints
    rep2 = write_report(results_dir)
    assert len(rep2.results) == 6
    assert all(".probekit-ckpt" not in str(p) for p, _ in load_results(results_dir))


def test_report_errors(tmp_path):
    with pytest.raises(DataError, match="no probekit search results"):
        write_report(tmp_path)
    with pytest.raises(DataError, match="no such results directory"):
        write_report(tmp_path / "missing")
    (tmp_path / "other.json").write_text('{"not": "a result"}')
    with pytest.raises(DataError, match="no probekit search results"):
        write_report(tmp_path)


def test_results_are_found_by_kind_and_by_old_schema(results_dir, tmp_path):
    d = json.loads((results_dir / "greedy" / "greedy.json").read_text())
    assert d["kind"] == "search" and d["schema"] == "probekit-search"
    old = {k: v for k, v in d.items() if k != "kind"}  # written before "kind" existed
    new = {k: v for k, v in d.items() if k != "schema"}
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "greedy.json").write_text(json.dumps(old))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "greedy.json").write_text(json.dumps(new))
    (tmp_path / "probe.json").write_text(json.dumps({"kind": "probe", "metrics": {}}))
    assert [p.parent.name for p, _ in load_results(tmp_path)] == ["a", "b"]
    assert not is_search_result({"kind": "probe"}) and is_search_result({"kind": "search"})
