"""pairs: all pairs of one layer, the score matrix, chunked checkpoints."""

from __future__ import annotations

import numpy as np
from search_data import PLANTED, common_fields, planted, planted_dims

from probekit import search as S
from probekit.probes import ProbeEngine, newton
from probekit.search import ArraySource


def _count_pair_chunks(monkeypatch, sizes: set[int]) -> dict[str, int]:
    """Count engine calls that score a chunk of pairs (``dims [B, 2]`` with B in ``sizes``)."""
    calls = {"n": 0}
    orig = ProbeEngine.fit_score_prepared  # what the scan calls, on the problem's prepared data

    def counting(self, prepared, dims, **kw):
        d = np.asarray(dims)
        if d.ndim == 2 and d.shape[1] == 2 and d.shape[0] in sizes:
            calls["n"] += 1
        return orig(self, prepared, dims, **kw)

    monkeypatch.setattr(ProbeEngine, "fit_score_prepared", counting)
    return calls


def test_pairs_planted(tmp_path):
    Xt, yt = planted(300, D=256, L=1)
    Xd, yd = planted(300, D=256, L=1, seed=1)
    res = S.pairs(ArraySource(Xt, yt), ArraySource(Xd, yd), out_dir=tmp_path, top=5)
    d = res.data
    common_fields(d)
    assert d["selected"] == list(PLANTED)
    assert d["n_pairs"] == 256 * 255 // 2
    M = np.load(tmp_path / "pairs_matrix.npy")
    assert M.shape == (256, 256)
    assert np.isnan(np.diag(M)).all()
    np.testing.assert_array_equal(M, M.T)
    assert np.nanargmax(M) in (17 * 256 + 203, 203 * 256 + 17)
    assert d["metrics"]["accuracy"] > 0.85
    assert len(d["top"]) == 5 and d["top"][0]["dim_a"] == 17


def test_resume_pairs_chunks(monkeypatch, tmp_path):
    Xt, yt = planted(200, D=40, L=1)
    Xd, yd = planted(100, D=40, L=1, seed=1)
    tr, dv = ArraySource(Xt, yt), ArraySource(Xd, yd)
    calls = _count_pair_chunks(monkeypatch, {100, 80})
    a = S.pairs(tr, dv, chunk=100, out_dir=tmp_path)
    assert calls["n"] == 8  # 780 pairs in chunks of 100 (7 x 100 + 80), all computed
    chunks = sorted((tmp_path / ".probekit-ckpt").glob("pairs-*/pairs-*.npy"))
    assert len(chunks) == 8
    for c in chunks[::2]:
        c.unlink()
    calls["n"] = 0
    b = S.pairs(tr, dv, chunk=100, out_dir=tmp_path)
    assert calls["n"] == 4  # only the four deleted chunks are recomputed
    assert a["selected"] == b["selected"] == list(planted_dims(40))
    np.testing.assert_array_equal(np.load(tmp_path / "pairs_matrix.npy"), a.arrays["pairs_matrix"])
    calls["n"] = 0
    S.pairs(tr, dv, chunk=100, out_dir=tmp_path)
    assert calls["n"] == 0  # everything checkpointed: nothing recomputed
    monkeypatch.setattr(newton, "QUADRATIC", 2.0)
    S.pairs(tr, dv, chunk=100, out_dir=tmp_path)
    assert calls["n"] == 8  # units fitted under another stopping rule are not reused
