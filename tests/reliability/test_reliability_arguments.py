"""Arguments checked at the edge (issue 11, cases 4, 5 and 7)."""

from __future__ import annotations

import pytest
import torch
from reliability_helpers import refused


def _extract(cli, model, out, *extra):
    return cli("extract", "--model", model, "--out", out, "--device", "cpu", *extra)


@pytest.mark.parametrize("value", ["0", "-5", "abc", "1.5"])
def test_extract_limit_must_be_a_positive_count(cli, tiny_model_dir, tmp_path, value):
    out = tmp_path / "c.h5"
    refused(_extract(cli, tiny_model_dir, out, f"--limit={value}"), "--limit", value)
    assert not out.exists()


@pytest.mark.parametrize("value", ["0", "-5"])
def test_extract_limit_with_data_must_be_positive(cli, tiny_model_dir, files, tmp_path, value):
    r = _extract(
        cli, tiny_model_dir, tmp_path / "c.h5", "--data", files["train"], "--text-col", "text",
        "--label-col", "label", f"--limit={value}",
    )  # fmt: skip
    refused(r, "--limit", "positive")


@pytest.mark.parametrize("flag", ["--batch-size", "--window-tokens", "--max-length"])
def test_extract_counts_must_be_positive(cli, tiny_model_dir, tmp_path, flag):
    refused(_extract(cli, tiny_model_dir, tmp_path / "c.h5", flag, "0"), flag)


def test_max_length_beyond_the_models_positions_is_refused(cli, tiny_model_dir, tmp_path):
    r = _extract(cli, tiny_model_dir, tmp_path / "c.h5", "--limit", 4, "--max-length", 1000)
    refused(r, "max_length 1000", "128 positions", "--max-length 128")
    assert not (tmp_path / "c.h5.partial").exists()


def test_library_limit_must_be_positive():
    from probekit.errors import ConfigError
    from probekit.tasks import load_task

    with pytest.raises(ConfigError, match="limit must be a positive number of examples, got -5"):
        load_task("demo", "train", limit=-5)


def _probe(cli, caches, tmp_path, *extra):
    return cli(
        "probe", "--train", caches["demo_train"], "--eval", caches["demo_dev"],
        "--out", tmp_path / "r.json", "--n-random", 2, *extra,
    )  # fmt: skip


@pytest.mark.parametrize("dev", ["bogus", "cuda:x", "gpu"])
def test_probe_unknown_device(cli, caches, tmp_path, dev):
    refused(_probe(cli, caches, tmp_path, "--device", dev), "unknown device", dev)
    assert not (tmp_path / "r.json").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_probe_cuda_without_cuda(cli, caches, tmp_path):
    refused(_probe(cli, caches, tmp_path, "--device", "cuda"), "cuda", "not available")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_extract_cuda_without_cuda(cli, tiny_model_dir, tmp_path):
    refused(_extract(cli, tiny_model_dir, tmp_path / "c.h5", "--device", "cuda"), "cuda")


def test_extract_unknown_device(cli, tiny_model_dir, tmp_path):
    r = cli("extract", "--model", tiny_model_dir, "--out", tmp_path / "c.h5", "--device", "tpu")
    refused(r, "unknown device", "tpu")


def test_finetune_unknown_device(cli, tiny_model_dir, tmp_path):
    r = cli("finetune", "--model", tiny_model_dir, "--out", tmp_path / "r", "--device", "tpu")
    refused(r, "unknown device", "tpu")


@pytest.mark.parametrize(
    ("dims", "culprit"),
    [("3,3", "repeated"), ("0-4,2", "repeated"), ("99", "out of range"), ("x", "--dims")],
)
def test_probe_dims_grammar(cli, caches, tmp_path, dims, culprit):
    refused(_probe(cli, caches, tmp_path, "--dims", dims), culprit)


@pytest.mark.parametrize(("dims", "culprit"), [("3,3", "repeated"), ("99", "out of range")])
def test_finetune_dims_grammar(cli, tiny_model_dir, tmp_path, dims, culprit):
    r = cli(
        "finetune", "--model", tiny_model_dir, "--out", tmp_path / "r", "--dims", dims,
        "--limit", 8, "--eval-limit", 4, "--epochs", 1, "--device", "cpu",
    )  # fmt: skip
    refused(r, culprit)
    assert not (tmp_path / "r" / "result.json").exists()


@pytest.mark.parametrize("flag", ["--limit", "--eval-limit", "--epochs", "--batch-size"])
def test_finetune_counts_must_be_positive(cli, tiny_model_dir, tmp_path, flag):
    r = cli("finetune", "--model", tiny_model_dir, "--out", tmp_path / "r", flag, "0")
    refused(r, flag)
    assert not (tmp_path / "r").exists()


def test_probe_layer_out_of_range(cli, caches, tmp_path):
    refused(_probe(cli, caches, tmp_path, "--layer", 99), "layer 99", "out of range")


def test_probe_n_random_must_be_positive(cli, caches, tmp_path):
    refused(_probe(cli, caches, tmp_path, "--n-random", "-1"), "--n-random")


def test_a_model_path_that_does_not_exist(cli, tmp_path):
    r = cli("extract", "--model", tmp_path / "nope", "--out", tmp_path / "c.h5", "--limit", 2)
    refused(r, "no such model directory", "nope")


def test_a_model_path_that_is_a_file(cli, files, tmp_path):
    r = cli("extract", "--model", files["train"], "--out", tmp_path / "c.h5", "--limit", 2)
    refused(r, "not a model directory", "train.csv")


def test_shard_of_too_few_examples_names_the_count(cli, tiny_model_dir, tmp_path):
    r = _extract(cli, tiny_model_dir, tmp_path / "c.h5", "--limit", 3, "--shard", "3/5")
    refused(r, "of 3 examples")
