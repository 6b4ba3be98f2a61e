"""Shared fixtures for the mixedlm_ext test suite.

Reference values live in ``tests/reference/`` (copies of the project's shared
reference cases; see ``tests/reference/README.md`` for the fields).  Tests must
read only these copies, never anything outside the repository.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import pytest

REFERENCE_DIR = Path(__file__).resolve().parent / "reference"

# Files in tests/reference/ that are not single-model reference cases.
_AUXILIARY = {"blups_lme4", "small_sample_lmertest"}


def reference_case_ids(include_auxiliary: bool = False) -> list[str]:
    """Return the ids of the reference cases (JSON file stems), sorted.

    Parameters
    ----------
    include_auxiliary : bool, default False
        Also return the auxiliary files ``blups_lme4`` and
        ``small_sample_lmertest``, which hold several models each and have a
        different layout.

    Returns
    -------
    list of str
    """
    ids = sorted(p.stem for p in REFERENCE_DIR.glob("*.json"))
    if include_auxiliary:
        return ids
    return [i for i in ids if i not in _AUXILIARY]


# Module-level list, convenient for ``pytest.mark.parametrize``.
REFERENCE_CASE_IDS: list[str] = reference_case_ids()


@lru_cache(maxsize=None)
def _read_reference(name: str) -> str:
    path = REFERENCE_DIR / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"no reference case {name!r} in {REFERENCE_DIR}; "
            f"available: {', '.join(reference_case_ids(True))}"
        )
    return path.read_text(encoding="utf-8")


def load_reference(name: str) -> dict[str, Any]:
    """Load one reference JSON from ``tests/reference/``.

    Parameters
    ----------
    name : str
        Case id, with or without the ``.json`` suffix, e.g. ``"pig_ri_ml"``.

    Returns
    -------
    dict
        A fresh copy of the parsed JSON (safe to mutate).
    """
    if name.endswith(".json"):
        name = name[: -len(".json")]
    return json.loads(_read_reference(name))


@pytest.fixture
def reference_case() -> Callable[[str], dict[str, Any]]:
    """Fixture returning a loader: ``reference_case("pig_ri_ml") -> dict``."""
    return load_reference


# Stata commands equivalent to the lmerTest models of small_sample_lmertest.json
SMALL_SAMPLE_COMMANDS = {
    "pig_rs_un_reml": ("mixed weight week || id: week, covariance(unstructured) reml", "pig"),
    "sleepstudy_un_reml": ("mixed reaction days || subject: days, covariance(unstructured) reml",
                           "sleepstudy"),
    "productivity_3l_reml": ("mixed gsp private emp hwy water other unemp || region: || state:, reml",
                             "productivity"),
    "pastes_nested_reml": ("mixed strength || batch: || cask:, reml", "pastes"),
}


def dense_neg2ll(V, X, y, reml: bool) -> float:
    """-2 log-likelihood of ``y ~ N(X beta, V)`` with beta at its GLS value (brute force)."""
    import numpy as np

    n = len(y)
    Vi = np.linalg.inv(V)
    XtViX = X.T @ Vi @ X
    beta = np.linalg.solve(XtViX, X.T @ Vi @ y)
    r = y - X @ beta
    out = np.linalg.slogdet(V)[1] + r @ Vi @ r
    if reml:
        return out + (n - X.shape[1]) * np.log(2 * np.pi) + np.linalg.slogdet(XtViX)[1]
    return out + n * np.log(2 * np.pi)
