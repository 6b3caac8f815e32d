"""Bad data files and bad caches (issue 11, cases 6 and 7): ``--data`` means a custom task,
missing labels are refused at load time, broken caches are named."""

from __future__ import annotations

import json

import pytest
from reliability_helpers import Snapshot, refused


def _extract_data(cli, model, data, out, *extra):
    return cli(
        "extract", "--model", model, "--data", data, "--text-col", "text", "--label-col",
        "label", "--out", out, "--device", "cpu", "--no-tokens", *extra,
    )  # fmt: skip


def test_data_without_task_is_a_custom_task(cli, caches):
    from probekit.cache import ActivationCache

    with ActivationCache(caches["train"]) as c:
        assert c.task.name == "custom" and c.task.label_names == ("neg", "pos")


def test_data_with_a_glue_task_whose_labels_it_uses(cli, tiny_model_dir, tmp_path):
    from probekit.cache import ActivationCache

    f = tmp_path / "s.csv"
    f.write_text("text,label\n" + "".join(f"a fine film {i},{i % 2}\n" for i in range(6)))
    rc, _, err = _extract_data(cli, tiny_model_dir, f, tmp_path / "c.h5", "--task", "sst2")
    assert rc == 0, err
    with ActivationCache(tmp_path / "c.h5") as c:
        assert c.task.name == "sst2"


def test_data_with_a_glue_task_whose_labels_it_does_not_use(cli, tiny_model_dir, files, tmp_path):
    r = _extract_data(cli, tiny_model_dir, files["train"], tmp_path / "c.h5", "--task", "sst2")
    refused(r, "train.csv", "line 2", "outside the label set of task sst2")


def test_extract_help_documents_custom(cli):
    rc, out, _ = cli("extract", "--help")
    assert rc == 0 and "custom" in out and "--data" in out


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize(
    ("name", "text", "culprit"),
    [
        ("nan.csv", "text,label\ngood film,pos\nbad film,nan\n", "line 3"),
        ("NaN.csv", "text,label\ngood film,pos\nbad film,NaN\n", "missing label"),
        ("empty_label.csv", "text,label\ngood film,pos\nbad film,\n", "empty label"),
        ("nan.jsonl", '{"text": "good", "label": "pos"}\n{"text": "bad", "label": NaN}\n', "nan"),
        (
            "null.jsonl",
            '{"text": "good", "label": "pos"}\n{"text": "bad", "label": null}\n',
            "empty",
        ),
        ("empty.csv", "", "empty file"),
        ("header_only.csv", "text,label\n", "no examples"),
        ("no_text.csv", "sentence,label\nx,pos\n", "no text column 'text'"),
        ("empty_text.csv", "text,label\n,pos\n", "empty text"),
        ("data.xlsx", "text,label\nx,pos\n", "unsupported file type"),
    ],
)
def test_bad_data_files_are_refused(cli, tiny_model_dir, tmp_path, name, text, culprit):
    f = _write(tmp_path, name, text)
    out = tmp_path / "c.h5"
    refused(_extract_data(cli, tiny_model_dir, f, out), name, culprit)
    assert not out.exists() and not (tmp_path / "c.h5.partial").exists()


def test_nan_regression_target_is_refused():
    from probekit.errors import DataError
    from probekit.tasks import load_table

    with pytest.raises(DataError, match="missing label 'nan'"):
        load_table(_tmp_csv("text,score\na,0.5\nb,nan\n"), "text", "score", regression=True)


def test_infinite_regression_target_is_refused():
    from probekit.errors import DataError
    from probekit.tasks import load_table

    with pytest.raises(DataError, match="label 'inf' is not a finite number"):
        load_table(_tmp_csv("text,score\na,0.5\nb,inf\n"), "text", "score", regression=True)


def _tmp_csv(text):
    import tempfile
    from pathlib import Path

    d = Path(tempfile.mkdtemp())
    (d / "t.csv").write_text(text)
    return d / "t.csv"


def test_data_file_that_does_not_exist(cli, tiny_model_dir, tmp_path):
    r = _extract_data(cli, tiny_model_dir, tmp_path / "missing.csv", tmp_path / "c.h5")
    refused(r, "missing.csv")


def _probe(cli, train, ev, tmp_path):
    return cli(
        "probe", "--train", train, "--eval", ev, "--out", tmp_path / "r.json", "--n-random", 2
    )


def test_probe_a_file_that_is_not_hdf5(cli, caches, files, tmp_path):
    refused(_probe(cli, files["train"], caches["demo_dev"], tmp_path), "train.csv", "HDF5")


def test_probe_a_missing_cache_names_the_partial(cli, caches, tmp_path):
    (tmp_path / "x.h5.partial").write_bytes(b"")
    refused(_probe(cli, tmp_path / "x.h5", caches["demo_dev"], tmp_path), "x.h5", "--resume")


def test_probe_a_partial_cache(cli, caches, tmp_path):
    import h5py

    p = tmp_path / "p.h5"
    p.write_bytes(caches["demo_dev"].read_bytes())
    with h5py.File(p, "r+") as f:
        f.attrs["complete"] = False
    refused(_probe(cli, caches["demo_train"], p, tmp_path), "p.h5", "partial")


def test_probe_caches_of_different_models(cli, caches, tmp_path):
    import h5py

    p = tmp_path / "other_model.h5"
    p.write_bytes(caches["demo_dev"].read_bytes())
    with h5py.File(p, "r+") as f:
        f.attrs["model_hash"] = "0123456789abcdef"
    refused(_probe(cli, caches["demo_train"], p, tmp_path), "model_hash", "other_model.h5")


def test_info_on_a_file_that_is_not_a_cache(cli, files):
    refused(cli("info", files["train"]), "train.csv")


def test_merge_of_an_incomplete_shard_set(cli, tiny_model_dir, tmp_path):
    s0 = tmp_path / "s0.h5"
    argv = ["extract", "--model", tiny_model_dir, "--limit", 6, "--device", "cpu"]
    assert cli(*argv, "--out", s0, "--shard", "0/2", "--no-tokens")[0] == 0
    snap = Snapshot(s0)
    refused(cli("merge", s0, "--out", tmp_path / "m.h5"), "shard")
    assert snap.unchanged() and not (tmp_path / "m.h5").exists()


def test_resume_with_other_settings_names_them(cli, tiny_model_dir, tmp_path):
    import h5py

    out = tmp_path / "c.h5"
    argv = ["extract", "--model", tiny_model_dir, "--limit", 6, "--device", "cpu", "--out", out]
    assert cli(*argv)[0] == 0
    out.rename(tmp_path / "c.h5.partial")
    with h5py.File(tmp_path / "c.h5.partial", "r+") as f:
        f.attrs["complete"] = False
    snap = Snapshot(tmp_path / "c.h5.partial")
    refused(cli(*argv, "--resume", "--max-length", 64), "cannot resume", "max_length")
    assert snap.unchanged()


def test_probe_record_is_strict_json(cli, caches, tmp_path):
    rc, _, err = _probe(cli, caches["demo_train"], caches["demo_dev"], tmp_path)
    assert rc == 0, err
    json.loads((tmp_path / "r.json").read_text(), parse_constant=lambda c: pytest.fail(c))
