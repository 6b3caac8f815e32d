"""`probekit report DIR`: tables and plots of search results from the command line."""

from __future__ import annotations

import numpy as np
import pytest

from probekit import search as S
from probekit.search import ArraySource


@pytest.fixture(scope="module")
def greedy_dir(tmp_path_factory):
    r = np.random.default_rng(0)
    X = r.standard_normal((300, 2, 24)).astype(np.float32)
    y = (X[:, -1, 3] + X[:, -1, 11] + 0.3 * r.standard_normal(300) > 0).astype(np.int64)
    root = tmp_path_factory.mktemp("results")
    src = ArraySource(X, y)
    cfg = S.SearchConfig(out_dir=root / "greedy")
    S.greedy(src, src, k=3, repeats=2, config=cfg)
    return root


def test_report_cli(greedy_dir, tmp_path, capsys):
    from cli import main

    assert main(["report", str(greedy_dir / "greedy"), "--out", str(tmp_path / "r")]) == 0
    assert "wrote" in capsys.readouterr().out
    assert (tmp_path / "r" / "greedy_curve.png").exists()
    assert main(["report", str(tmp_path / "empty")]) == 2
