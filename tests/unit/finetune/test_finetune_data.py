"""Fine-tuning data: batch order of an epoch, unlabelled rows, labelled batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from probekit.errors import DataError
from probekit.finetune.data import encode_split, epoch_schedule, labelled, make_batch
from probekit.tasks import load_demo


def test_epoch_schedule_modes():
    single = epoch_schedule([10], 4, 0, 0, "alternate")
    assert [len(s[0][1]) for s in single] == [4, 4, 2]
    assert sorted(np.concatenate([s[0][1] for s in single]).tolist()) == list(range(10))
    alt = epoch_schedule([8, 3], 2, 0, 0, "alternate")
    assert [s[0][0] for s in alt] == [0, 1, 0, 1, 0, 0]
    mixed = epoch_schedule([8, 3], 2, 0, 0, "mixed")
    assert [[t for t, _ in s] for s in mixed] == [[0, 1], [0, 1], [0], [0]]
    assert not np.array_equal(
        epoch_schedule([10], 10, 0, 1, "alternate")[0][0][1],
        epoch_schedule([10], 10, 0, 2, "alternate")[0][0][1],
    )


def test_labelled_drops_unlabelled_rows():
    d = load_demo("dev", limit=6)
    d.labels[[1, 4]] = -1
    kept = labelled(d)
    assert len(kept) == 4 and kept.example_index.tolist() == [0, 2, 3, 5]
    d.labels[:] = -1
    with pytest.raises(DataError, match="no labelled examples"):
        labelled(d)


def test_make_batch_adds_labels(minilm_tokenizer):
    d = load_demo("dev", limit=5)
    split = encode_split(minilm_tokenizer, d, 16)
    b = make_batch(split, np.array([3, 0]), pad_id=0, token_types=True, device=torch.device("cpu"))
    assert b["labels"].tolist() == [int(d.labels[3]), int(d.labels[0])]
    assert b["input_ids"].shape == b["token_type_ids"].shape == b["attention_mask"].shape
