"""Heads: the dims grammar they use, the fixed mask, pooling, their settings and their file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from probekit.errors import ConfigError
from probekit.finetune import HeadConfig, SelectedDimHead, load_heads, parse_dims, pool_tokens
from probekit.finetune.heads import save_heads
from probekit.finetune.network import head_loss
from probekit.tasks import get_task


def test_parse_dims():
    """``parse_dims`` of heads is :func:`probekit.dims.head_dims`: one grammar everywhere."""
    from probekit.dims import head_dims

    assert parse_dims is head_dims
    assert parse_dims("3,17", 32) == (3, 17)
    assert parse_dims("17, 3", 32) == (3, 17)
    assert parse_dims("0-2,5", 32) == (0, 1, 2, 5)
    assert parse_dims([-1], 32) == (31,)
    assert parse_dims("all", 32) is None and parse_dims(None, 32) is None
    assert parse_dims(list(range(32)), 32) is None
    with pytest.raises(ConfigError, match=r"\[40\] out of range for 32 dimensions"):
        parse_dims("3,40", 32)
    with pytest.raises(ConfigError, match="'x' is not an integer"):
        parse_dims("3,x", 32)
    with pytest.raises(ConfigError, match="empty"):
        parse_dims("", 32)
    with pytest.raises(ConfigError, match=r"dimension\(s\) \[3\] repeated"):  # refused now
        parse_dims("17, 3,3", 32)


@pytest.mark.parametrize("head_layers", [1, 2])
def test_masked_head_ignores_unselected_dims(head_layers):
    torch.manual_seed(0)
    head = SelectedDimHead(
        HeadConfig(input_size=32, num_labels=3, dims=(3, 17), head_layers=head_layers, hidden=8)
    )
    assert not any(n == "mask" for n, _ in head.named_parameters())  # a buffer, not trained
    assert head.mask.sum().item() == 2
    x = torch.randn(5, 32, requires_grad=True)
    y = head(x)
    other = torch.ones(32, dtype=torch.bool)
    other[[3, 17]] = False
    x2 = x.detach().clone()
    x2[:, other] = torch.randn(5, int(other.sum())) * 100
    assert torch.equal(head(x2), y.detach())
    x3 = x.detach().clone()
    x3[:, 17] += 1.0
    assert not torch.allclose(head(x3), y.detach())
    y.sum().backward()  # gradient reaches only the selected dims of the input
    assert (
        torch.count_nonzero(x.grad[:, other]) == 0 and torch.count_nonzero(x.grad[:, [3, 17]]) > 0
    )
    c = head.parameter_counts()
    assert c["selected_dims"] == 2
    assert c["effective"] == (2 * 3 + 3 if head_layers == 1 else 2 * 8 + 8 + 8 * 3 + 3)
    assert c["nominal"] == (32 * 3 + 3 if head_layers == 1 else 32 * 8 + 8 + 8 * 3 + 3)


def test_pool_tokens():
    h = torch.tensor([[[1.0, 0], [0, 5], [3, 0], [9, 9], [0, 0]]])  # [1, 5, 2]
    attn = torch.tensor([[1, 1, 1, 1, 0]])
    special = torch.tensor([[1, 0, 0, 1, 1]])  # CLS, a, b, SEP, pad
    assert pool_tokens(h, attn, special, "cls").tolist() == [[1.0, 0.0]]
    assert pool_tokens(h, attn, special, "max_norm").tolist() == [
        [0.0, 5.0]
    ]  # SEP (norm 12.7) excluded
    h2 = h.clone()
    h2[0, 0] = torch.tensor([10.0, 0])
    assert pool_tokens(h2, attn, special, "max_norm", include_cls=True).tolist() == [[10.0, 0.0]]
    assert pool_tokens(h2, attn, special, "max_norm").tolist() == [[0.0, 5.0]]
    assert pool_tokens(h, attn, special, "mean").tolist() == [[1.5, 2.5]]
    assert pool_tokens(h, attn, special, "max").tolist() == [[3.0, 5.0]]
    # an example with no content token uses all of its real tokens
    only_special = torch.tensor([[1, 1, 1, 1, 1]])
    assert pool_tokens(h, attn, only_special, "max_norm").tolist() == [[9.0, 9.0]]
    with pytest.raises(ConfigError, match="pool 'first'"):
        pool_tokens(h, attn, special, "first")


def test_head_config_template_bind_and_validation():
    template = HeadConfig(dims="0-2", layer=-1, pool="mean")
    assert not template.bound and template.dims == "0-2"
    with pytest.raises(ConfigError, match="needs input_size and num_labels"):
        SelectedDimHead(template)
    bound = template.bind(get_task("stsb"), 32, 3)
    assert bound.bound and bound.dims == (0, 1, 2) and bound.layer == 2
    assert bound.regression and bound.num_labels == 1 and bound.task == "stsb"
    assert template.bind(get_task("sst2"), 32, 3, dims="all").dims is None
    with pytest.raises(ConfigError, match="layer 3 is out of range"):
        HeadConfig(layer=3).bind(get_task("sst2"), 32, 3)
    with pytest.raises(ConfigError, match="pool 'first'"):
        HeadConfig(pool="first")
    with pytest.raises(ConfigError, match="head_layers must be 1 or 2"):
        HeadConfig(head_layers=3)
    with pytest.raises(ConfigError, match="head dropout"):
        HeadConfig(dropout=1.0)


def test_head_config_old_names_still_work():
    with pytest.warns(DeprecationWarning, match="'token' is deprecated"):
        old = HeadConfig(input_size=32, num_labels=2, token="max", n_layers=2, is_regression=True)
    assert (old.pool, old.head_layers, old.regression) == ("max", 2, True)
    with pytest.warns(DeprecationWarning, match="'is_regression' is deprecated"):
        assert old.is_regression
    with pytest.raises(ConfigError, match="disagree"):
        HeadConfig(pool="cls", token="mean")
    rec = old.to_dict()  # new keys, and the old ones for probekit 0.1 readers
    assert rec["pool"] == rec["token"] == "max" and rec["head_layers"] == rec["n_layers"] == 2
    assert HeadConfig.from_dict(rec) == old
    v01 = {k: v for k, v in rec.items() if k not in ("pool", "head_layers", "regression")}
    assert HeadConfig.from_dict(v01) == old  # a record of probekit 0.1
    assert set(old.legacy_dict()) == set(v01)


def test_heads_file_round_trip(tmp_path):
    torch.manual_seed(0)
    heads = {"a": SelectedDimHead(HeadConfig(input_size=32, num_labels=3, dims=(1, 4)))}
    save_heads(heads, tmp_path / "heads.pt")
    back = load_heads(tmp_path / "heads.pt")
    assert back["a"].config == heads["a"].config and not back["a"].training
    x = torch.randn(2, 32)
    assert torch.equal(back["a"](x), heads["a"].eval()(x))
    with pytest.raises(ConfigError, match="no heads file"):
        load_heads(tmp_path / "missing.pt")


def _regression_head(**kw) -> SelectedDimHead:
    torch.manual_seed(0)
    return SelectedDimHead(HeadConfig(input_size=32, num_labels=1, regression=True, **kw))


def test_regression_head_predicts_in_the_targets_units():
    head = _regression_head(dims=(1, 4))
    x = torch.randn(5, 32)
    raw = head(x)
    mean, std = head.standardize_targets(np.array([1.0, 2.0, 3.0, 4.0]))
    assert (mean, std) == pytest.approx((2.5, np.sqrt(1.25)))
    torch.testing.assert_close(head(x), raw * std + mean)
    # constant targets: std 1, the head starts at their value
    assert head.standardize_targets(np.full(3, 2.2)) == pytest.approx((2.2, 1.0))
    with pytest.raises(ConfigError, match="no training labels"):
        head.standardize_targets(np.array([]))
    classifier = SelectedDimHead(HeadConfig(input_size=32, num_labels=2))
    with pytest.raises(ConfigError, match="is not a regression head"):
        classifier.standardize_targets(np.ones(2))
    assert "target_mean" not in classifier.state_dict()


def test_regression_loss_is_in_standardised_units():
    head = _regression_head()
    y = torch.tensor([1.0, 2.0, 3.0, 4.0]) * 10 + 100
    head.standardize_targets(y.numpy())
    at_mean = torch.full((4, 1), float(y.mean()))
    assert float(head_loss(head, at_mean, y)) == pytest.approx(1.0)  # the mean's loss is 1
    assert float(head_loss(head, y[:, None], y)) == 0.0


def test_regression_heads_file_round_trip_and_old_files(tmp_path):
    head = _regression_head(dims=(1, 4))
    head.standardize_targets(np.array([0.5, 4.5]))
    save_heads({"stsb": head}, tmp_path / "heads.pt")
    back = load_heads(tmp_path / "heads.pt")["stsb"]
    assert (float(back.target_mean), float(back.target_std)) == (2.5, 2.0)
    x = torch.randn(3, 32)
    torch.testing.assert_close(back(x), head.eval()(x))
    # a probekit 0.1 file: no target buffers, trained on raw targets -> mean 0, std 1
    blob = torch.load(tmp_path / "heads.pt", weights_only=True)
    state = blob["heads"]["stsb"]["state_dict"]
    for k in ("target_mean", "target_std"):
        del state[k]
    torch.save(blob, tmp_path / "old.pt")
    old = load_heads(tmp_path / "old.pt")["stsb"]
    assert (float(old.target_mean), float(old.target_std)) == (0.0, 1.0)
    torch.testing.assert_close(old(x), head.out(x * head.mask))
