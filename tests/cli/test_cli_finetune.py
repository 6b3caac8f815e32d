"""``probekit finetune`` and ``multihead`` from the command line (``cli.main``), on the
tiny BERT of conftest: GLUE-layout files, your own CSV files, user errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_cli_finetune_and_multihead(tiny_model_dir, tmp_path, glue_fixture, capsys):
    from cli import main

    out = tmp_path / "cli"
    rc = main(
        [
            "finetune",
            "--model",
            str(tiny_model_dir),
            "--task",
            "rte",
            "--glue-dir",
            str(glue_fixture),
            "--dims",
            "3,17",
            "--layer",
            "-1",
            "--token",
            "cls",
            "--freeze",
            "none",
            "--head-layers",
            "1",
            "--epochs",
            "1",
            "--max-train-examples",
            "32",
            "--max-length",
            "32",
            "--device",
            "cpu",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    rec = json.loads((out / "result.json").read_text())
    assert "accuracy" in rec["metrics"] and (out / "model" / "config.json").is_file()
    assert "dev: accuracy" in capsys.readouterr().out
    rc = main(
        [
            "multihead",
            "--model",
            str(tiny_model_dir),
            "--tasks",
            "sst2,rte",
            "--glue-dir",
            str(glue_fixture),
            "--dims-per-task",
            "2",
            "--epochs",
            "1",
            "--max-train-examples",
            "16",
            "--max-length",
            "32",
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "mh"),
        ]
    )
    assert rc == 0 and "rte" in capsys.readouterr().out
    rc = main(
        [
            "finetune",
            "--model",
            str(tiny_model_dir),
            "--dims",
            "3,99",
            "--device",
            "cpu",
            "--out",
            str(out),
        ]
    )
    assert rc == 2 and "[99] out of range" in capsys.readouterr().err


def _write_table(path: Path, rows: list[tuple], header: tuple) -> Path:
    path.write_text("\n".join(",".join(map(str, r)) for r in [header, *rows]) + "\n")
    return path


def test_cli_finetune_on_own_files(tiny_model_dir, tmp_path, capsys):
    """--train-data/--eval-data: a custom classification task and a custom regression."""
    from cli import main

    words = ["good", "bad", "fine", "awful", "nice", "dull"]
    rows = [(f"it was {words[i % 6]} {i}", "pos" if i % 2 == 0 else "neg") for i in range(40)]
    tr = _write_table(tmp_path / "train.csv", rows[:30], ("sentence", "label"))
    ev = _write_table(tmp_path / "dev.csv", rows[30:], ("sentence", "label"))
    common = [
        "--model",
        str(tiny_model_dir),
        "--text-col",
        "sentence",
        "--label-col",
        "label",
        "--dims",
        "3,17",
        "--epochs",
        "1",
        "--max-length",
        "16",
        "--batch-size",
        "8",
        "--device",
        "cpu",
    ]
    rc = main(
        [
            "finetune",
            "--train-data",
            str(tr),
            "--eval-data",
            str(ev),
            *common,
            "--out",
            str(tmp_path / "c"),
        ]
    )
    assert rc == 0, capsys.readouterr().err
    rec = json.loads((tmp_path / "c" / "result.json").read_text())
    assert "custom" in rec["heads"] and "accuracy" in rec["metrics"]
    assert "train.csv" in capsys.readouterr().out

    bad = _write_table(tmp_path / "bad.csv", [("it was odd", "meh")], ("sentence", "label"))
    rc = main(
        [
            "finetune",
            "--train-data",
            str(tr),
            "--eval-data",
            str(bad),
            *common,
            "--out",
            str(tmp_path / "b"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "bad.csv" in err and "meh" in err
    rc = main(
        [
            "finetune",
            "--train-data",
            str(tr),
            "--model",
            str(tiny_model_dir),
            "--out",
            str(tmp_path / "m"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "--eval-data" in err and "--text-col" in err

    reg = [(f"it was {words[i % 6]} {i}", f"{(i % 6) / 5:.2f}") for i in range(30)]
    tr = _write_table(tmp_path / "rtrain.csv", reg[:20], ("sentence", "score"))
    ev = _write_table(tmp_path / "rdev.csv", reg[20:], ("sentence", "score"))
    common[common.index("label")] = "score"
    rc = main(
        [
            "finetune",
            "--train-data",
            str(tr),
            "--eval-data",
            str(ev),
            "--regression",
            *common,
            "--out",
            str(tmp_path / "r"),
        ]
    )
    assert rc == 0, capsys.readouterr().err
    assert "pearson" in json.loads((tmp_path / "r" / "result.json").read_text())["metrics"]
