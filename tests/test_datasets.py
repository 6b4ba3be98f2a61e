"""Tests for the bundled example datasets."""

from __future__ import annotations

import pandas as pd
import pytest

from mixedlm_ext.datasets import list_datasets, load_dataset

from conftest import REFERENCE_CASE_IDS

# Row counts and columns as documented in mixedlm_ext/datasets/SOURCES.md.
EXPECTED = {
    "pig": (432, ["id", "week", "weight"]),
    "productivity": (816, ["state", "region", "year", "public", "hwy", "water",
                           "other", "private", "gsp", "emp", "unemp"]),
    "ovary": (308, ["mare", "stime", "follicles", "time", "sin1", "cos1"]),
    "sleepstudy": (180, ["subject", "days", "reaction"]),
    "penicillin": (144, ["plate", "sample", "diameter"]),
    "pastes": (60, ["batch", "cask", "strength"]),
    "blockdiag": (600, ["g", "x1", "x2", "y"]),
}


def test_list_datasets():
    assert list_datasets() == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_load_dataset_shape_and_columns(name):
    nrows, columns = EXPECTED[name]
    df = load_dataset(name)
    assert isinstance(df, pd.DataFrame)
    assert len(df) == nrows
    assert list(df.columns) == columns


@pytest.mark.parametrize("name", ["pig.csv", "PIG", " pig "])
def test_load_dataset_name_variants(name):
    pd.testing.assert_frame_equal(load_dataset(name), load_dataset("pig"))


def test_load_dataset_returns_fresh_copy():
    df = load_dataset("pig")
    df["weight"] = 0.0
    assert load_dataset("pig")["weight"].ne(0).all()


def test_group_structure():
    pig = load_dataset("pig")
    assert pig["id"].nunique() == 48
    assert pig["week"].nunique() == 9
    prod = load_dataset("productivity")
    assert prod["state"].nunique() == 48
    assert prod["region"].nunique() == 9
    assert load_dataset("ovary")["mare"].nunique() == 11
    assert load_dataset("sleepstudy")["subject"].nunique() == 18
    pen = load_dataset("penicillin")
    assert (pen["plate"].nunique(), pen["sample"].nunique()) == (24, 6)
    assert load_dataset("pastes")["batch"].nunique() == 10
    assert load_dataset("blockdiag")["g"].nunique() == 60


def test_no_missing_values_in_pig():
    assert not load_dataset("pig").isna().any().any()


def test_unknown_dataset_lists_available_names():
    with pytest.raises(ValueError, match="unknown dataset") as excinfo:
        load_dataset("no_such_data")
    message = str(excinfo.value)
    for name in EXPECTED:
        assert name in message


def test_non_string_name_rejected():
    with pytest.raises(TypeError):
        load_dataset(3)


@pytest.mark.parametrize("case_id", REFERENCE_CASE_IDS)
def test_reference_cases_use_bundled_data(case_id, reference_case):
    """Every reference case names a bundled dataset and its `n` matches the data."""
    case = reference_case(case_id)
    assert case["id"] == case_id
    df = load_dataset(case["data"])
    if case.get("subset"):
        df = df.query(case["subset"])
    assert len(df) == case["n"]
