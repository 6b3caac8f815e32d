"""Multi-head fine-tuning: disjoint dims per task, one encoder."""

from __future__ import annotations

import pytest
import torch

from probekit.errors import ConfigError
from probekit.finetune import assign_dims, evaluate, load_finetuned, multihead_finetune
from probekit.tasks import load_task


def test_assign_dims():
    d = assign_dims(["a", "b", "c"], 32, dims={"a": "3,17"}, dims_per_task=3, seed=1)
    assert d["a"] == (3, 17) and len(d["b"]) == len(d["c"]) == 3
    assert len(set(d["a"]) | set(d["b"]) | set(d["c"])) == 8
    with pytest.raises(ConfigError, match="dim 17 is selected by both 'a' and 'b'"):
        assign_dims(["a", "b"], 32, dims={"a": "3,17", "b": "17"})
    with pytest.raises(ConfigError, match="no dims for task"):
        assign_dims(["a", "b"], 32, dims={"a": "3"})


@pytest.mark.parametrize("mode", ["alternate", "mixed"])
def test_multihead_each_head_sees_only_its_dims(ft_cfg, tmp_path, glue_fixture, mode):
    cfg = ft_cfg(limit=32, eval_limit=16)
    r = multihead_finetune(
        cfg,
        ["demo", "rte"],
        device="cpu",
        out_dir=tmp_path / mode,
        dims={"demo": "3,17"},
        dims_per_task=2,
        mode=mode,
        glue_dir=glue_fixture,
        progress=False,
    )
    assert set(r.metrics) == {"demo", "rte"} and r.record["mode"] == mode
    assert r.record["kind"] == "multihead"
    dims = {t: tuple(d) for t, d in r.record["dims"].items()}
    assert dims["demo"] == (3, 17) and not set(dims["demo"]) & set(dims["rte"])
    assert r.record["epochs"][0]["train_examples"] == 64
    loaded, heads = load_finetuned(r.out_dir, device="cpu")
    x = torch.randn(4, 32)
    for t, h in heads.items():
        assert torch.nonzero(h.mask).flatten().tolist() == list(dims[t])
        other = [d for d in range(32) if d not in dims[t]]
        x2 = x.clone()
        x2[:, other] += torch.randn(4, len(other)) * 10
        assert torch.equal(h(x), h(x2))
    rte_dev = load_task("rte", "dev", glue_dir=glue_fixture, limit=16)
    assert evaluate(loaded, heads, {"rte": rte_dev}, max_length=32)["rte"] == pytest.approx(
        r.metrics["rte"]
    )
