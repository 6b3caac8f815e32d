"""``probekit probe``: one probe on fixed dimensions of two caches, with its baselines."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def tiny_probe_caches(tmp_path_factory, tiny_model_dir):
    from probekit.extract import extract
    from probekit.models import load_encoder
    from probekit.tasks import load_task

    lm = load_encoder(str(tiny_model_dir), device="cpu")
    out = tmp_path_factory.mktemp("probe_caches")
    paths = {}
    for split, limit in (("train", 200), ("dev", 100)):
        paths[split] = out / f"demo-{split}.h5"
        extract(lm, load_task("demo", split, limit=limit), paths[split], progress=False)
    return paths


def test_cli_probe(tiny_probe_caches, tmp_path, capsys):
    from cli import main

    tr, dv = str(tiny_probe_caches["train"]), str(tiny_probe_caches["dev"])
    out = tmp_path / "r.json"
    assert (
        main(
            [
                "probe",
                "--train",
                tr,
                "--eval",
                dv,
                "--layer",
                "-1",
                "--pool",
                "mean",
                "--dims",
                "3,17",
                "--n-random",
                "5",
                "--control",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "majority" in text and "random 2 dims" in text and "selectivity" in text
    d = json.loads(out.read_text())
    for key in (
        "metrics",
        "dims",
        "layer",
        "pool",
        "n_train",
        "n_eval",
        "majority_baseline",
        "random_baseline",
        "config",
        "versions",
        "seed",
        "wall_time_s",
        "control",
        "val_metrics",
    ):
        assert key in d, key
    assert d["dims"] == [3, 17] and d["layer"] == 2 and d["pool"] == "mean" and d["n_train"] == 200
    assert set(d["metrics"]) == {"accuracy"} and d["random_baseline"]["n_draws"] == 5
    assert (
        main(
            ["probe", "--train", tr, "--eval", dv, "--layer", "0", "--out", str(out), "--overwrite"]
        )
        == 0
    )
    d = json.loads(out.read_text())
    assert d["k"] == 32 and d["layer"] == 0 and d["random_baseline"]["n_draws"] == 0
    assert main(["probe", "--train", tr, "--eval", dv, "--dims", "3,x", "--out", str(out)]) == 2
    assert (
        main(["probe", "--train", tr, "--eval", str(tmp_path / "missing.h5"), "--out", str(out)])
        == 2
    )


def test_cli_probe_dims_range(tiny_probe_caches, tmp_path):
    """``--dims 0-9`` works for probing (the one --dims grammar), as for fine-tuning."""
    from cli import main

    tr, dv = str(tiny_probe_caches["train"]), str(tiny_probe_caches["dev"])
    out = tmp_path / "r.json"
    argv = ["probe", "--train", tr, "--eval", dv, "--dims", "0-9", "--n-random", "2"]
    assert main([*argv, "--out", str(out)]) == 0
    d = json.loads(out.read_text())
    assert d["dims"] == list(range(10)) and d["k"] == 10
    assert d["kind"] == "probe" and d["elapsed_s"] >= 0
