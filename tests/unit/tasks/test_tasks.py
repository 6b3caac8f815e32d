import numpy as np
import pytest

from probekit.errors import DataError, TaskError
from probekit.tasks import (
    TASKS,
    get_task,
    load_demo,
    load_glue_dir,
    load_table,
    load_task,
    normalize_split,
)


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_registry_covers_glue_and_ax():
    for name in ["cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli", "ax"]:
        assert name in TASKS
    assert get_task("STS-B").regression and get_task("stsb").metrics == ("pearson", "spearman")
    assert get_task("SST-2").name == "sst2"
    assert get_task("mnli").num_labels == 3
    assert get_task("mrpc").metrics[0] == "f1" and get_task("cola").metrics == ("mcc",)
    with pytest.raises(TaskError, match="unknown task 'nope'"):
        get_task("nope")


def test_split_aliases():
    assert normalize_split(get_task("sst2"), "validation") == "dev"
    assert normalize_split(get_task("mnli"), "dev") == "dev_matched"
    assert normalize_split(get_task("mnli"), "dev_mismatched") == "dev_mismatched"
    with pytest.raises(TaskError, match="no split"):
        normalize_split(get_task("ax"), "train")


def test_glue_fixtures_all_layouts(tmp_path):
    g = tmp_path / "glue_data"
    _write(g / "CoLA/dev.tsv", "gj04\t1\t\tThe sailors rode.\ngj04\t0\t*\tRode sailors the.\n")
    _write(
        g / "MRPC/dev.tsv",
        "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tA b.\tA b c.\n0\t3\t4\tX.\tY.\n",
    )
    _write(
        g / "STS-B/dev.tsv",
        "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
        "0\tmain\tf\t2012\t1\tnone\tnone\tA man.\tA person.\t4.250\n",
    )
    _write(
        g / "MNLI/dev_mismatched.tsv",
        "index\tpromptID\tpairID\tgenre\tsentence1\tsentence2\tgold_label\n"
        "0\t1\t1\tx\tP one.\tH one.\tcontradiction\n1\t2\t2\tx\tP two.\tH two.\tneutral\n",
    )
    _write(g / "RTE/test.tsv", "index\tsentence1\tsentence2\n0\tA.\tB.\n")
    cola = load_glue_dir("cola", "dev", g)
    assert cola.texts == ["The sailors rode.", "Rode sailors the."] and cola.labels.tolist() == [
        1,
        0,
    ]
    mrpc = load_task("mrpc", "validation", glue_dir=g)
    assert mrpc.pairs == ["A b c.", "Y."] and mrpc.labels.tolist() == [1, 0]
    stsb = load_task("STS-B", "dev", glue_dir=g)
    assert stsb.labels.dtype == np.float32 and stsb.labels[0] == pytest.approx(4.25)
    mnli = load_task("mnli", "dev_mismatched", glue_dir=g)
    assert mnli.labels.tolist() == [2, 1]
    rte = load_task("rte", "test", glue_dir=g)
    assert rte.labels.tolist() == [-1] and not rte.has_labels


def test_glue_errors_name_the_culprit(tmp_path):
    g = tmp_path / "g"
    _write(g / "SST-2/dev.tsv", "sentence\tlabel\ngood .\t1\nbad .\t7\n")
    with pytest.raises(DataError, match=r"dev.tsv: line 3.*label '7' is outside"):
        load_glue_dir("sst2", "dev", g)
    _write(g / "SST-2/dev.tsv", "sentence\tlabel\n \t1\n")
    with pytest.raises(DataError, match="line 2: empty text"):
        load_glue_dir("sst2", "dev", g)
    _write(g / "SST-2/dev.tsv", "text\tlabel\nx\t1\n")
    with pytest.raises(DataError, match="missing column"):
        load_glue_dir("sst2", "dev", g)
    (g / "SST-2/dev.tsv").write_bytes(b"sentence\tlabel\ngood\t1\nbad \xff\xfe\t0\n")
    with pytest.raises(DataError, match=r"line 3.*not valid UTF-8"):
        load_glue_dir("sst2", "dev", g)
    with pytest.raises(DataError, match="no QNLI/ directory"):
        load_glue_dir("qnli", "dev", g)


def test_table_loaders(tmp_path):
    p = _write(tmp_path / "d.csv", "text,other,y\nhello,a,pos\nworld,b,neg\n")
    d = load_table(p, "text", "y")
    assert d.task.label_names == ("neg", "pos") and d.labels.tolist() == [1, 0]
    j = _write(
        tmp_path / "d.jsonl", '{"a": "x", "b": "y", "s": 0.5}\n{"a": "z", "b": "w", "s": 1.5}\n'
    )
    d = load_table(j, "a", "s", pair_col="b", regression=True)
    assert d.pairs == ["y", "w"] and d.task.regression
    with pytest.raises(DataError, match="no label column 'lbl'; columns are"):
        load_table(p, "text", "lbl")
    with pytest.raises(DataError, match="outside the label set of task sst2"):
        load_table(p, "text", "y", task="sst2")


def test_demo_is_deterministic_and_balanced():
    a, b = load_demo("train"), load_demo("train")
    assert a.texts == b.texts and (a.labels == b.labels).all()
    assert len(a) == 600 and 0.4 < a.labels.mean() < 0.6
    assert len(load_demo("dev", limit=10)) == 10
    assert a.fingerprint() == b.fingerprint() != load_demo("dev").fingerprint()


def test_real_glue_files(shared_glue):
    cola = load_task("cola", "dev", glue_dir=shared_glue)
    assert len(cola) == 1043 and set(np.unique(cola.labels)) == {0, 1}
    qnli = load_task("QNLI", "dev", glue_dir=shared_glue, limit=50)
    assert len(qnli) == 50 and qnli.pairs is not None


def test_hub_offline_says_to_pass_a_local_dir(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TaskError, match="--glue-dir"):
        load_task("rte", "dev")


def test_custom_file_through_the_dispatcher(tmp_path):
    p = _write(tmp_path / "mine.tsv", "q\ta\tscore\nwhat ?\tthat .\t0.5\nwho ?\tthem .\t2.0\n")
    d = load_task("stsb", "dev", data=p, text_col="q", pair_col="a", label_col="score")
    assert (
        d.task.name == "stsb"
        and d.pairs == ["that .", "them ."]
        and d.labels.tolist() == [0.5, 2.0]
    )
    with pytest.raises(DataError, match="--text-col is required"):
        load_task("custom", "train", data=p)


def test_is_regression_is_a_deprecated_alias():
    with pytest.warns(DeprecationWarning, match="TaskSpec.regression"):
        assert get_task("stsb").is_regression is True


def test_the_registry_lives_in_taskspec_and_tasks_re_exports_it():
    import probekit.taskspec as ts
    from probekit import tasks
    from probekit.demo import load_demo as demo_loader

    for name in ts.__all__:
        assert getattr(tasks, name) is getattr(ts, name)
    assert tasks.load_demo is demo_loader
