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
