"""The command line as a whole: help, user errors, Ctrl-C, broken pipes, and the verbs that
only the CLI exercises end to end (info --json, merge, cross)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import cli

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_caches(tiny_model_dir, tmp_path_factory) -> dict[str, Path]:
    """Demo-task caches of the tiny BERT made through the CLI: a whole split and its 2 shards."""
    d = tmp_path_factory.mktemp("cli_caches")
    base = ["extract", "--model", str(tiny_model_dir), "--task", "demo", "--split", "dev"]
    base += ["--limit", "30", "--device", "cpu", "--batch-size", "8"]
    paths = {"full": d / "full.h5", "s0": d / "s0.h5", "s1": d / "s1.h5"}
    assert cli.main([*base, "--out", str(paths["full"])]) == 0
    assert cli.main([*base, "--shard", "0/2", "--out", str(paths["s0"])]) == 0
    assert cli.main([*base, "--shard", "1/2", "--out", str(paths["s1"])]) == 0
    return paths


def _datasets(path: Path) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        f.visititems(
            lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None
        )
    return out


# ------------------------------------------------------------------------------ info
def test_info_json_describes_the_cache(tiny_caches, capsys):
    capsys.readouterr()
    assert cli.main(["info", str(tiny_caches["full"]), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["path"] == str(tiny_caches["full"]) and d["file_bytes"] > 0
    m = d["meta"]
    assert m["complete"] is True and m["task"] == "demo" and m["split"] == "dev"
    assert m["n_examples"] == 30 and m["n_layers"] == 3 and m["hidden_size"] == 32
    assert d["datasets"]["pooled/cls"]["shape"] == [30, 3, 32]
    assert d["datasets"]["labels"]["shape"] == [30]


def test_info_into_a_closed_pipe_is_quiet(tiny_caches):
    """``probekit info FILE | head -1``: the reader goes away; no traceback, no complaint."""
    r, w = os.pipe()
    os.close(r)  # the reader is gone before the first write (head -1 after its line)
    try:
        proc = subprocess.run(
            [sys.executable, str(REPO / "cli.py"), "info", str(tiny_caches["full"])],
            stdout=w,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(w)
    assert proc.stderr == ""
    assert proc.returncode == 141  # as a tool killed by SIGPIPE


def test_info_head_prints_the_first_line(tiny_caches):
    proc = subprocess.run(
        f"{sys.executable} {REPO / 'cli.py'} info {tiny_caches['full']} | head -1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.stdout.startswith(str(tiny_caches["full"])) and "complete" in proc.stdout
    assert proc.stdout.count("\n") == 1 and "Traceback" not in proc.stderr


# ------------------------------------------------------------------------------ merge
def test_merge_of_shards_equals_the_unsharded_cache(tiny_caches, tmp_path, capsys):
    out = tmp_path / "merged.h5"
    # shards given out of order: merge sorts them by shard index
    assert (
        cli.main(["merge", str(tiny_caches["s1"]), str(tiny_caches["s0"]), "--out", str(out)]) == 0
    )
    assert f"merged 2 shards into {out}" in capsys.readouterr().out
    full, merged = _datasets(tiny_caches["full"]), _datasets(out)
    assert sorted(full) == sorted(merged)
    for name, arr in full.items():
        if arr.dtype.kind != "f":
            np.testing.assert_array_equal(merged[name], arr, err_msg=name)
            continue
        # the shards ran other batches (length-sorted within each shard), so the forward
        # pass's float32 rounding may differ: bit for bit on the Intel VM, one float16 step
        # on 1 of 29,952 values on the AMD EPYC one (2026-12-02); the tiny model's max-norm
        # tokens all tie (its LayerNorm), and pooling.MAX_NORM_TIE takes the same one
        np.testing.assert_allclose(merged[name], arr, rtol=2**-9, atol=1e-6, err_msg=name)
        assert (merged[name] != arr).sum() <= max(2, 1e-3 * arr.size), name
    shards = [_datasets(tiny_caches[s]) for s in ("s0", "s1")]
    for name in ("pooled/cls", "pooled/max_norm", "labels"):  # the merge itself copies bytes
        both = np.concatenate([sh[name] for sh in shards])
        np.testing.assert_array_equal(merged[name], both, err_msg=name)
    with h5py.File(out, "r") as f, h5py.File(tiny_caches["full"], "r") as g:
        assert f.attrs["data_hash"] == g.attrs["data_hash"] and bool(f.attrs["complete"])


def test_merge_refuses_an_incomplete_set(tiny_caches, tmp_path, capsys):
    assert cli.main(["merge", str(tiny_caches["s1"]), "--out", str(tmp_path / "m.h5")]) == 2
    err = capsys.readouterr().err
    assert "need all of 0..1" in err and "Traceback" not in err


# ------------------------------------------------------------------------------ errors
def test_help_lists_every_verb(capsys):
    with pytest.raises(SystemExit, match="0"):
        cli.main(["--help"])
    text = capsys.readouterr().out
    for verb in (
        "run",
        "extract",
        "info",
        "merge",
        "probe",
        "search",
        "report",
        "finetune",
        "cross",
        "multihead",
    ):
        assert verb in text


def test_user_error_is_one_line_and_exit_2(tmp_path, capsys):
    assert cli.main(["info", str(tmp_path / "nope.h5")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("probekit info: error: ") and "no such cache file" in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_ctrl_c_exits_130_with_one_line(tiny_caches, monkeypatch, capsys):
    import probekit.cache

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(probekit.cache, "describe", interrupted)
    assert cli.main(["info", str(tiny_caches["full"])]) == 130
    err = capsys.readouterr().err
    assert err.startswith("probekit info: interrupted") and err.count("\n") == 1


# ------------------------------------------------------------------------------ cross
def test_cross_from_the_cli(tiny_model_dir, glue_fixture, tmp_path, capsys):
    out = tmp_path / "cross"
    common = ["--model", str(tiny_model_dir), "--glue-dir", str(glue_fixture), "--dims", "3,17"]
    common += ["--disjoint", "--epochs", "1", "--pool", "mean", "--limit", "12"]
    common += ["--max-length", "16", "--batch-size", "8", "--device", "cpu", "--out", str(out)]
    assert cli.main(["cross", "--tasks", "rte,sst2", *common]) == 0
    text = capsys.readouterr().out
    rec = json.loads((out / "result.json").read_text())
    assert rec["dims"]["rte"] == [3, 17]
    stage = json.loads((out / "single_rte" / "result.json").read_text())
    assert stage["config"]["pool"] == "mean" and stage["config"]["limit"] == 12
    assert stage["data"]["rte"]["train"]["n"] == 12
    assert len(rec["dims"]["sst2"]) == 2 and not set(rec["dims"]["sst2"]) & {3, 17}
    assert f"dims: rte [3, 17], sst2 {rec['dims']['sst2']}" in text
    assert "forgetting of rte: " in text and "transfer to sst2: " in text
    assert f"wrote {out / 'result.json'}" in text
    assert cli.main(["cross", "--tasks", "rte", *common]) == 2
    assert "exactly two tasks" in capsys.readouterr().err


# ------------------------------------------------------------------------------ flags
def test_renamed_finetune_flags_map_and_warn(capsys):
    from probekit.cli import build_parser

    parse = build_parser().parse_args
    a = parse(["finetune", "--out", "x", "--token", "mean", "--max-train-examples", "8"])
    err = capsys.readouterr().err
    assert a.pool == "mean" and a.limit == 8 and a.eval_limit is None
    assert "--token is deprecated" in err and "use --pool" in err
    assert "--max-train-examples is deprecated" in err and "use --limit" in err
    a = parse(["cross", "--tasks", "rte,sst2", "--out", "x", "--max-eval-examples", "4"])
    assert a.eval_limit == 4 and "use --eval-limit" in capsys.readouterr().err
    a = parse(["multihead", "--tasks", "rte,sst2", "--out", "x", "--pool", "max_norm"])
    assert a.pool == "max_norm" and a.limit is None and capsys.readouterr().err == ""
    assert parse(["finetune", "--out", "x"]).pool == "cls"
    with pytest.raises(SystemExit, match="2"):
        parse(["finetune", "--out", "x", "--token", "nope"])
    assert "invalid choice: 'nope'" in capsys.readouterr().err


def test_default_seed_is_0_everywhere():
    from probekit.cli import build_parser

    parse = build_parser().parse_args
    io = ["--train", "a.h5", "--eval", "b.h5", "--out", "o"]
    for argv in (
        ["run"],
        ["probe", *io],
        *(["search", verb, *io] for verb in ("singles", "pairs", "greedy", "eliminate")),
        *(["search", verb, *io] for verb in ("layers", "tokens")),
        ["finetune", "--out", "o"],
        ["cross", "--tasks", "a,b", "--out", "o"],
        ["multihead", "--tasks", "a,b", "--out", "o"],
    ):
        assert parse(argv).seed == 0, argv


@pytest.mark.parametrize(
    "argv",
    [
        ["extract", "--out", "x.h5", "--limit", "4"],
        ["run"],
        ["finetune", "--out", "o"],
        ["cross", "--tasks", "rte,sst2", "--out", "o"],
        ["multihead", "--tasks", "rte,sst2", "--out", "o"],
        ["probe", "--train", "a.h5", "--eval", "b.h5", "--out", "o.json"],
        ["search", "pairs", "--train", "a.h5", "--eval", "b.h5", "--out", "o"],
    ],
)
def test_every_verb_checks_the_device_the_same_way(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main([*argv, "--device", "tpu7"]) == 2
    err = capsys.readouterr().err
    assert "unknown device 'tpu7'" in err and "Traceback" not in err


# ------------------------------------------------------------------------------ packaging
def test_only_probekit_is_installed_at_the_top_level():
    """The console script points into the package; no top-level module named ``cli``."""
    import tomllib
    from importlib import metadata

    py = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert py["project"]["scripts"] == {"probekit": "probekit.cli:entry"}
    assert "py-modules" not in py["tool"].get("setuptools", {})
    assert py["tool"]["setuptools"]["packages"]["find"]["include"] == ["probekit*"]
    top = metadata.distribution("probekit-dims").read_text("top_level.txt")
    if top is not None:  # editable installs may not write it
        assert top.split() == ["probekit"]
    ep = metadata.entry_points(group="console_scripts", name="probekit")
    if ep:  # the installed metadata is current (reinstalled after the move)
        assert next(iter(ep)).value == "probekit.cli:entry"
