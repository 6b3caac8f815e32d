"""probekit.probes.pair_kernels: the eager pair kernels give the fused kernels' sums for any
order and grouping of the pairs, tile by tile; the engine runs them without a compiler."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from probe_data import planted

import probekit.probes.kernels as P
import probekit.probes.pair_kernels as PK
from probekit.probes import ProbeEngine


def _data(D=12, n=700, seed=0):
    g = torch.Generator().manual_seed(seed)
    Xt = torch.randn((D, n), generator=g)
    y = (torch.rand(n, generator=g) < 0.4).to(torch.float32)
    return Xt, y, g


def _pairs_mix(D, g):
    """Every pair of a D-column layer (groups with consecutive second columns), shuffled, plus
    groups with gaps, a pair of one column with itself, duplicates and reversed pairs."""
    iu, ju = np.triu_indices(D, 1)
    allp = torch.as_tensor(np.stack([iu, ju], 1))
    extra = torch.tensor([[0, 2], [0, 5], [0, 9], [3, 3], [4, 1], [4, 1], [11, 0], [7, 2]])
    d = torch.cat([allp, extra])
    return d[torch.randperm(len(d), generator=g)]


@pytest.fixture(params=["default tiles", "tiny tiles"])
def tiles(request, monkeypatch):
    """The kernels' own tiles, or tiles of 3 probes x 64 examples (ragged at both ends) with
    groups of 2 probes enough to share a first column."""
    if request.param == "tiny tiles":
        monkeypatch.setattr(PK, "TILE_N", 64)
        monkeypatch.setattr(PK, "TILE_ELEMS", 3 * 64)
        monkeypatch.setattr(PK, "MIN_GROUP", 2)
    return request.param


def test_pair_pass_equals_the_fused_sums_for_any_order_and_grouping(tiles):
    # 40 columns: the first eight columns' groups reach MIN_GROUP at the default tiles too
    Xt, y, g = _data(D=40)
    for d in (_pairs_mix(40, g), torch.tensor([[5, 2]]), torch.tensor([[1, 2], [1, 3]])):
        theta = 0.4 * torch.randn((len(d), 3), generator=g)
        want = P.binary_pass_sums(Xt, d, theta, y).double().numpy()
        got = PK.pair_pass(Xt, d, theta, y).double().numpy()
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-4)


def test_pair_eval_equals_the_fused_eval_for_any_order_and_grouping(tiles):
    Xt, y, g = _data(D=40, seed=1)
    d = _pairs_mix(40, g)
    theta = 2.0 * torch.randn((len(d), 3), generator=g)
    want = P.binary_eval(Xt, d, theta, y).numpy()
    got = PK.pair_eval(Xt, d, theta, y).numpy()
    np.testing.assert_allclose(got[:, 0], want[:, 0], rtol=1e-5)
    np.testing.assert_array_equal(got[:, 1:], want[:, 1:])  # true and predicted positives


def test_pair_eval_log_loss_is_exact_for_confident_wrong_predictions():
    Xt = torch.tensor([[40.0, -40.0, 1.0, -2.0], [0.0, 0.0, 0.0, 0.0]])
    d = torch.tensor([[0, 1]])
    theta = torch.tensor([[1.0, 0.0, 0.0]])
    y = torch.tensor([0.0, 1.0, 1.0, 0.0])
    z = np.array([40.0, -40.0, 1.0, -2.0])
    want = (np.logaddexp(0, z) - z * y.numpy()).sum()
    got = PK.pair_eval(Xt, d, theta, y)
    np.testing.assert_allclose(got[0, 0].item(), want, rtol=1e-6)
    assert got[0, 1:].tolist() == [1.0, 2.0]  # z > 0 on two examples, one of them positive


def test_segments_group_by_first_column_and_pool_the_small_groups(monkeypatch):
    monkeypatch.setattr(PK, "MIN_GROUP", 3)
    dn = np.array([[2, 5], [0, 1], [2, 3], [0, 2], [0, 3], [2, 4], [1, 7], [0, 4], [2, 9]])
    segs = PK._segments(dn, tb=3)
    seen = np.concatenate([idx for idx, _, _ in segs])
    assert sorted(seen.tolist()) == list(range(len(dn)))  # every probe once
    for idx, shared, span in segs:
        assert len(idx) <= 3
        if shared:
            assert len(set(dn[idx, 0])) == 1
        assert span == bool((np.diff(dn[idx, 1]) == 1).all())
    shared_rows = [dn[idx].tolist() for idx, shared, _ in segs if shared]
    # first column 0: [1, 2, 3] then [4]; 2: [3, 4, 5] then [9]; the lone (1, 7) pooled
    assert shared_rows == [[[0, 1], [0, 2], [0, 3]], [[0, 4]], [[2, 3], [2, 4], [2, 5]], [[2, 9]]]
    assert [dn[idx].tolist() for idx, shared, _ in segs if not shared] == [[[1, 7]]]


def test_eager_pass_takes_the_pair_kernels_for_pairs_on_the_cpu(monkeypatch):
    calls = []
    monkeypatch.setattr(P, "pair_pass", lambda *a: calls.append("pairs") or PK.pair_pass(*a))
    Xt, y, g = _data(seed=2)
    for k in (2, 3):
        d = torch.stack([torch.randperm(12, generator=g)[:k] for _ in range(5)])
        theta = 0.3 * torch.randn((5, k + 1), generator=g)
        got = P.eager_pass(Xt, d, theta, y).numpy()
        want = P.binary_pass_sums(Xt, d, theta, y).numpy()
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-4)
    assert calls == ["pairs"]


def test_the_eager_engine_runs_the_pair_kernels_tile_by_tile(monkeypatch):
    monkeypatch.setattr(PK, "TILE_N", 128)
    monkeypatch.setattr(PK, "TILE_ELEMS", 2 * 128)  # below one probe's 300 eval examples
    widths = {"pass": [], "eval": []}

    def spy(name, fn):
        def run(x0, x1, *a):
            widths[name].append(x1.shape[1])
            return fn(x0, x1, *a)

        return run

    monkeypatch.setattr(PK, "_pass_tile", spy("pass", PK._pass_tile))
    monkeypatch.setattr(PK, "_eval_tile", spy("eval", PK._eval_tile))
    Xtr, ytr, Xev, yev = planted(n=500, m=300, D=10, seed=4)
    pairs = np.stack(np.triu_indices(10, 1), 1)
    eager = ProbeEngine(compile=False).fit_score(Xtr, ytr, Xev, yev, pairs)
    assert max(widths["pass"]) == 128 and max(widths["eval"]) == 128
    fast = ProbeEngine().fit_score(Xtr, ytr, Xev, yev, pairs)
    np.testing.assert_allclose(eager["loss"], fast["loss"], rtol=1e-4)
    # (float32 sums in another order may move one borderline example)
    np.testing.assert_allclose(eager["accuracy"], fast["accuracy"], atol=1.01 / len(yev))


def test_a_predictor_of_exactly_zero_predicts_the_negative_class():
    """z == 0 (theta = 0) is not a positive prediction, as in binary_eval and the native
    kernel: no true or predicted positives, and log-loss log 2 per example."""
    Xt, y, _ = _data(seed=5)
    d = torch.tensor([[0, 1], [2, 3]])
    theta = torch.zeros((2, 3))
    got = PK.pair_eval(Xt, d, theta, y)
    assert got[:, 1:].tolist() == [[0.0, 0.0], [0.0, 0.0]]
    np.testing.assert_allclose(got[:, 0].numpy(), Xt.shape[1] * np.log(2.0), rtol=1e-6)
    np.testing.assert_array_equal(got.numpy(), P.binary_eval(Xt, d, theta, y).numpy())


def test_scratch_buffers_grow_for_a_later_larger_tile(monkeypatch):
    """A small shared group first, then a larger one, then a pooled tail: the buffers grow
    on the way and the sums stay the fused ones."""
    monkeypatch.setattr(PK, "MIN_GROUP", 3)
    ws = PK._Scratch()
    a = ws.get(0, 2, 3)
    b = ws.get(0, 4, 5)
    assert a.shape == (2, 3) and b.shape == (4, 5) and b.is_contiguous()
    Xt, y, g = _data(D=40, n=300, seed=6)
    d = torch.tensor([[0, 1], [0, 2], [0, 3]] + [[1, j] for j in range(2, 40)] + [[5, 9], [7, 2]])
    theta = 0.4 * torch.randn((len(d), 3), generator=g)
    want = P.binary_pass_sums(Xt, d, theta, y).numpy()
    np.testing.assert_allclose(PK.pair_pass(Xt, d, theta, y).numpy(), want, rtol=2e-5, atol=2e-4)


def test_a_pass_tile_works_in_one_scratch_buffer_where_the_first_column_is_shared():
    """A shared first column's tile forms every product in its one stacked buffer (slot 0,
    ``[3, Bt, nc]``; a scratch copy for the products crowded the cache, ~20% slower on two
    threads); a gathered first column's tile adds one ``[2, Bt, nc]`` buffer. The sums stay
    the fused ones either way."""
    Xt, y, g = _data(D=12, n=256, seed=9)
    d = torch.tensor([[0, j] for j in range(1, 12)])
    theta = 0.4 * torch.randn((len(d), 3), generator=g)
    want = P.binary_pass_sums(Xt, d, theta, y).numpy()
    x1 = Xt[1:12]
    for x0, slots in ((Xt[0], {0}), (Xt[[0] * 11], {0, 1})):
        ws = PK._Scratch()
        got = PK._pass_tile(x0, x1, theta, y, ws)
        assert set(ws._flat) == slots
        assert ws._flat[0].numel() == 3 * 11 * 256
        if 1 in slots:
            assert ws._flat[1].numel() == 2 * 11 * 256
        np.testing.assert_allclose(got.numpy(), want, rtol=2e-5, atol=2e-4)


def test_consecutive_second_columns_are_views_not_gathers(monkeypatch):
    """A group whose second columns are consecutive rows reads them in place: no gather."""
    gathers = []
    select = torch.index_select

    def spy(*a, **k):
        gathers.append(a[2].tolist())
        return select(*a, **k)

    monkeypatch.setattr(torch, "index_select", spy)
    Xt, y, g = _data(D=40, n=300, seed=7)
    d = torch.tensor([[0, j] for j in range(1, 40)])  # 39 probes, one shared group
    theta = 0.4 * torch.randn((len(d), 3), generator=g)
    got = PK.pair_pass(Xt, d, theta, y)
    assert gathers == []
    d2 = torch.tensor([[0, j] for j in range(1, 40, 2)] + [[3, 1]])  # gaps, and pooled
    PK.pair_pass(Xt, d2, theta[: len(d2)], y)
    assert gathers  # now gathered
    np.testing.assert_allclose(
        got.numpy(), P.binary_pass_sums(Xt, d, theta, y).numpy(), rtol=2e-5, atol=2e-4
    )


def test_the_gradient_at_an_optimum_is_as_precise_as_its_residuals():
    """Near the optimum the gradient is small; summed from the residuals ``p - y`` tile by
    tile it stays within 5e-4 of the float64 gradient (confident, well-separated labels,
    20,000 examples). Summing ``p`` and taking the labels' sums off afterwards, however
    exactly, left the float32 rounding of the large sums of ``p x``: 1.5e-3 here."""
    from sklearn.linear_model import LogisticRegression

    g = torch.Generator().manual_seed(8)
    n = 20_000
    Xt = torch.randn((40, n), generator=g)
    z = 4.0 * Xt[0] - 3.0 * Xt[1] + 1.0
    y = (torch.rand(n, generator=g) < torch.sigmoid(z)).to(torch.float32)
    d = torch.tensor([[0, j] for j in range(1, 40)])
    theta = np.empty((len(d), 3))
    for i, (a, b) in enumerate(d.tolist()):
        lr = LogisticRegression(C=1e6, tol=1e-10, max_iter=1000)
        lr.fit(Xt[[a, b]].T.double().numpy(), y.numpy())
        theta[i] = [*lr.coef_[0], lr.intercept_[0]]
    X64, y64, th = Xt.double(), y.double(), torch.as_tensor(theta)
    x0, x1 = X64[d[:, 0]], X64[d[:, 1]]
    r = torch.sigmoid(th[:, :1] * x0 + th[:, 1:2] * x1 + th[:, 2:]) - y64
    want = torch.stack([(r * x0).sum(1), (r * x1).sum(1), r.sum(1)], 1).numpy()
    got = PK.pair_pass(Xt, d, th.float(), y)[:, :3].double().numpy()
    assert np.abs(want).max() < 0.05  # an optimum: the gradient sums cancel
    np.testing.assert_allclose(got, want, atol=5e-4)
