"""The one pooling definition (:mod:`probekit.pooling`): the max-norm token's tie rule and
what it does with masked, [CLS] and non-finite norms."""

from __future__ import annotations

import torch

from probekit.pooling import MAX_NORM_TIE, pool

CONTENT = torch.tensor([[False, True, True, True]])  # position 0: [CLS], not content


def _hidden(norm2: float) -> torch.Tensor:
    """``[1, 4, 3]``: [CLS] of norm 9, then content tokens of norms 2, ``norm2`` and 1."""
    return torch.tensor([[[9.0, 0, 0], [2.0, 0, 0], [0, norm2, 0], [1.0, 0, 0]]])


def test_norms_within_the_tolerance_go_to_the_earliest_token():
    """Norms within MAX_NORM_TIE of the largest are tied and the earliest content token wins
    (float32 rounding cannot choose between them); a clearly larger norm still wins."""
    for bump, want in ((1e-7, 1), (-1e-7, 1), (10 * MAX_NORM_TIE, 2)):
        h = _hidden(2.0 * (1 + bump))
        vec, pos = pool(h, CONTENT, "max_norm")
        assert pos.tolist() == [want] and torch.equal(vec[0], h[0, want])
    h = torch.ones(2, 5, 3, 4)  # [batch, seq, layers, H]: every norm equal
    h[1, 3, 1] *= 1 + 1e-6
    _, pos = pool(h, torch.ones(2, 5, dtype=torch.bool), "max_norm")
    assert pos.tolist() == [[0, 0, 0], [0, 0, 0]]


def test_cls_competes_only_when_asked_and_masked_tokens_never():
    h = _hidden(2.0)
    assert pool(h, CONTENT, "max_norm")[1].tolist() == [1]  # [CLS]'s 9 is not content
    assert pool(h, CONTENT, "max_norm", include_cls=True)[1].tolist() == [0]
    masked = torch.tensor([[False, False, True, True]])
    assert pool(h, masked, "max_norm")[1].tolist() == [2]


def test_a_non_finite_norm_is_chosen_not_hidden():
    """A NaN or infinite content token wins (as argmax would), so that a broken forward pass
    shows in the pooled vector instead of a finite one from a token not allowed ([CLS])."""
    for bad in (float("nan"), float("inf")):
        h = _hidden(bad)
        vec, pos = pool(h, CONTENT, "max_norm")
        assert pos.tolist() == [2] and not torch.isfinite(vec).all()
    h = _hidden(2.0)
    h[0, 0, 0] = float("nan")  # a NaN outside the content is masked out
    assert pool(h, CONTENT, "max_norm")[1].tolist() == [1]
