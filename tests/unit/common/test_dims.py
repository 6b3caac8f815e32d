"""The one --dims grammar (probekit.dims), shared by probe, search and finetune."""

from __future__ import annotations

import numpy as np
import pytest

from probekit.dims import head_dims, parse_dims
from probekit.errors import ConfigError


def test_all_and_none_select_every_dimension():
    assert parse_dims("all", 5).tolist() == [0, 1, 2, 3, 4]
    assert parse_dims(None, 3).tolist() == [0, 1, 2]
    assert parse_dims(" ALL ", 2).tolist() == [0, 1]


def test_lists_ranges_and_negatives_keep_the_order_given():
    assert parse_dims("12,3", 20).tolist() == [12, 3]
    assert parse_dims("0-3,9", 10).tolist() == [0, 1, 2, 3, 9]
    assert parse_dims("-1,0", 10).tolist() == [9, 0]
    assert parse_dims([4, 2], 5).dtype == np.int64


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("3,3", r"repeated"),
        ("0-2,1", r"\[1\] repeated"),
        ("5-2", r"range '5-2' is empty"),
        ("a,b", r"'a' is not an integer"),
        ("", r"empty selection"),
        ("10", r"\[10\] out of range for 10"),
        ("-11", r"out of range"),
    ],
)
def test_bad_selections_name_the_value(spec, match):
    with pytest.raises(ConfigError, match=match):
        parse_dims(spec, 10)


def test_head_dims_sorts_and_maps_full_width_to_none():
    assert head_dims("17,3", 32) == (3, 17)
    assert head_dims("0-31", 32) is None
    assert head_dims("all", 32) is None
    assert head_dims(None, 32) is None
    with pytest.raises(ConfigError, match="repeated"):
        head_dims("3,3", 32)
