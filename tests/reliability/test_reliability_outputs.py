"""Never overwrite, never lose (issue 11, case 2)."""

from __future__ import annotations

import json

import pytest
from reliability_helpers import Snapshot, refused


def _probe(cli, train, ev, out, *extra):
    return cli("probe", "--train", train, "--eval", ev, "--out", out, "--n-random", 2, *extra)


@pytest.mark.parametrize("which", ["demo_train", "demo_dev"])
def test_probe_refuses_to_write_over_its_input(cli, caches, which):
    snap = Snapshot(caches[which])
    r = _probe(cli, caches["demo_train"], caches["demo_dev"], caches[which], "--overwrite")
    refused(r, "inputs", caches[which].name)
    assert snap.unchanged()


def test_probe_refuses_an_existing_result(cli, caches, tmp_path):
    out = tmp_path / "r.json"
    out.write_text('{"precious": 1}\n')
    snap = Snapshot(out)
    refused(_probe(cli, caches["demo_train"], caches["demo_dev"], out), "already exists", "r.json")
    assert snap.unchanged()


def test_probe_overwrite_replaces_an_existing_result(cli, caches, tmp_path):
    out = tmp_path / "r.json"
    out.write_text('{"precious": 1}\n')
    rc, _, err = _probe(cli, caches["demo_train"], caches["demo_dev"], out, "--overwrite")
    assert rc == 0, err
    assert json.loads(out.read_text())["kind"] == "probe"
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary left behind


def test_probe_out_naming_a_directory_is_refused(cli, caches, tmp_path):
    refused(_probe(cli, caches["demo_train"], caches["demo_dev"], tmp_path), "directory")


def test_merge_refuses_an_existing_unrelated_cache(cli, caches, tmp_path):
    out = tmp_path / "other.h5"
    out.write_bytes(caches["demo_dev"].read_bytes())
    snap = Snapshot(out)
    refused(cli("merge", caches["demo_train"], "--out", out), "already exists", "other.h5")
    assert snap.unchanged()


def test_merge_refuses_to_write_over_a_shard(cli, caches):
    snap = Snapshot(caches["demo_train"])
    r = cli("merge", caches["demo_train"], "--out", caches["demo_train"], "--overwrite")
    refused(r, "inputs")
    assert snap.unchanged()


def test_extract_refuses_an_existing_cache(cli, caches, tiny_model_dir, tmp_path):
    out = tmp_path / "c.h5"
    out.write_bytes(caches["demo_dev"].read_bytes())
    snap = Snapshot(out)
    r = cli("extract", "--model", tiny_model_dir, "--limit", 5, "--out", out, "--device", "cpu")
    refused(r, "exists", "--overwrite")
    assert snap.unchanged()


def test_extract_refuses_to_write_over_its_data_file(cli, files, tiny_model_dir):
    snap = Snapshot(files["train"])
    r = cli(
        "extract", "--model", tiny_model_dir, "--data", files["train"], "--text-col", "text",
        "--label-col", "label", "--out", files["train"], "--overwrite",
    )  # fmt: skip
    refused(r, "inputs", "train.csv")
    assert snap.unchanged()


def test_extract_out_naming_a_directory_is_refused(cli, tiny_model_dir, tmp_path):
    r = cli("extract", "--model", tiny_model_dir, "--limit", 5, "--out", tmp_path)
    refused(r, "directory")


def _finetune(cli, model, out, *extra):
    return cli(
        "finetune", "--model", model, "--out", out, "--limit", 16, "--eval-limit", 8,
        "--epochs", 1, "--batch-size", 8, "--device", "cpu", "--max-length", 32, *extra,
    )  # fmt: skip


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_model_dir):
    from probekit.cli import main

    out = tmp_path_factory.mktemp("ft") / "run"
    argv = ["finetune", "--model", tiny_model_dir, "--out", out, "--limit", 16, "--eval-limit"]
    argv += [8, "--epochs", 1, "--batch-size", 8, "--device", "cpu", "--max-length", 32]
    assert main([str(a) for a in argv]) == 0
    return out


def test_finetune_rerun_with_other_settings_is_refused(cli, finished_run, tiny_model_dir):
    snap = Snapshot(finished_run)
    r = _finetune(cli, tiny_model_dir, finished_run, "--lr", "1e-3")
    refused(r, "completed", "other settings", "lr")
    assert snap.unchanged()


def test_finetune_rerun_with_other_seed_is_refused_even_without_resume(
    cli, finished_run, tiny_model_dir
):
    snap = Snapshot(finished_run)
    r = _finetune(cli, tiny_model_dir, finished_run, "--seed", 5, "--no-resume")
    refused(r, "completed", "seed")
    assert snap.unchanged()


def test_finetune_rerun_with_the_same_settings_reuses_the_run(cli, finished_run, tiny_model_dir):
    snap = Snapshot(finished_run)
    rc, _, err = _finetune(cli, tiny_model_dir, finished_run)
    assert rc == 0, err
    assert snap.unchanged()


def test_finetune_out_naming_a_file_is_refused(cli, tiny_model_dir, tmp_path):
    f = tmp_path / "x.json"
    f.write_text("{}")
    refused(_finetune(cli, tiny_model_dir, f), "is a file")


def test_finetune_truncated_checkpoint_names_no_resume(cli, tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(b"PK\x03\x04 truncated")
    refused(_finetune(cli, tiny_model_dir, out), "checkpoint.pt", "--no-resume")
    assert (out / "checkpoint.pt").read_bytes() == b"PK\x03\x04 truncated"


def test_search_out_naming_a_file_is_refused(cli, caches, tmp_path):
    f = tmp_path / "x.json"
    f.write_text("{}")
    snap = Snapshot(f)
    r = cli("search", "greedy", "--train", caches["demo_train"], "--eval", caches["demo_dev"],
            "--out", f)  # fmt: skip
    refused(r, "--out", "x.json", "is a file")
    assert snap.unchanged()


def test_search_out_naming_its_input_is_refused(cli, caches):
    snap = Snapshot(caches["demo_dev"])
    r = cli("search", "greedy", "--train", caches["demo_train"], "--eval", caches["demo_dev"],
            "--out", caches["demo_dev"])  # fmt: skip
    refused(r, "inputs")
    assert snap.unchanged()


def test_search_unknown_device(cli, caches, tmp_path):
    r = cli("search", "greedy", "--train", caches["demo_train"], "--eval", caches["demo_dev"],
            "--out", tmp_path / "s", "--device", "bogus")  # fmt: skip
    refused(r, "unknown device", "bogus")


def test_run_out_naming_a_file_is_refused(cli, tmp_path):
    f = tmp_path / "x.json"
    f.write_text("{}")
    refused(cli("run", "--out", f), "x.json", "is a file")
    assert f.read_text() == "{}"
