"""Example datasets shipped with :mod:`mixedlm_ext`.

The CSV files live in ``mixedlm_ext/datasets/`` and are installed as package
data, so examples and tests work offline.  ``datasets/SOURCES.md`` records
where each one comes from.
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

__all__ = ["list_datasets", "load_dataset"]

_DATA_DIR = "datasets"


def _data_dir():
    """Return the traversable directory holding the bundled CSV files."""
    return resources.files("mixedlm_ext").joinpath(_DATA_DIR)


def list_datasets() -> list[str]:
    """List the names of the bundled example datasets.

    Returns
    -------
    list of str
        Dataset names (without the ``.csv`` suffix), sorted alphabetically.
        Each can be passed to :func:`load_dataset`.

    Examples
    --------
    >>> from mixedlm_ext._datasets import list_datasets
    >>> "pig" in list_datasets()
    True
    """
    return sorted(
        entry.name[: -len(".csv")]
        for entry in _data_dir().iterdir()
        if entry.is_file() and entry.name.endswith(".csv")
    )


def load_dataset(name: str) -> pd.DataFrame:
    """Load one of the example datasets bundled with the package.

    Parameters
    ----------
    name : str
        Dataset name, with or without the ``.csv`` suffix (case-insensitive):
        ``"pig"``, ``"productivity"``, ``"ovary"``, ``"sleepstudy"``,
        ``"penicillin"``, ``"pastes"`` or ``"blockdiag"``.

    Returns
    -------
    pandas.DataFrame
        A fresh copy of the data; modifying it does not affect later loads.

    Raises
    ------
    ValueError
        If `name` is not one of the bundled datasets; the message lists the
        available names.

    Examples
    --------
    >>> from mixedlm_ext._datasets import load_dataset
    >>> pig = load_dataset("pig")
    >>> list(pig.columns)
    ['id', 'week', 'weight']
    """
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a string, not {type(name).__name__}")
    key = name.strip().lower()
    if key.endswith(".csv"):
        key = key[: -len(".csv")]
    available = list_datasets()
    if key not in available:
        raise ValueError(
            f"unknown dataset {name!r}; available datasets: {', '.join(available)}"
        )
    with _data_dir().joinpath(key + ".csv").open("rb") as fh:
        return pd.read_csv(fh)
