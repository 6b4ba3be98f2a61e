"""Names of covariance and residual structures and their accepted abbreviations.

Every front-end (Stata commands, lme4 formulas, the scikit-learn estimator)
accepts Stata's minimal abbreviations: a word names a structure when it has
at least the minimal number of letters and starts the full name
(``un`` -> ``unstructured``, ``exc`` -> ``exchangeable``).
"""
from __future__ import annotations

from typing import Optional

__all__ = [
    "COVARIANCE_ABBREVIATIONS",
    "COVARIANCE_TYPES",
    "RESIDUAL_ABBREVIATIONS",
    "RESIDUAL_DEFAULT_ORDER",
    "covariance_type",
    "match_abbreviation",
]

# Random-effects covariance structure: full name -> minimal abbreviation length.
COVARIANCE_ABBREVIATIONS: dict[str, int] = {
    "identity": 2,
    "independent": 3,
    "exchangeable": 3,
    "unstructured": 2,
}
COVARIANCE_TYPES: tuple[str, ...] = tuple(COVARIANCE_ABBREVIATIONS)

# Residual structure (Stata ``residuals()``): full name -> minimal abbreviation length.
RESIDUAL_ABBREVIATIONS: dict[str, int] = {
    "independent": 3,
    "exchangeable": 3,
    "ar": 2,
    "ma": 2,
    "unstructured": 2,
    "banded": 2,
    "toeplitz": 3,
    "exponential": 3,
}

# Residual structures that take an order ``#`` -> their order when none is given.
RESIDUAL_DEFAULT_ORDER: dict[str, Optional[int]] = {"ar": 1, "ma": 1, "banded": None, "toeplitz": None}


def match_abbreviation(word: str, table: dict[str, int]) -> Optional[str]:
    """Return the full name whose Stata abbreviation ``word`` is, or None.

    Parameters
    ----------
    word : str
        What the user typed (case-insensitive).
    table : dict
        Full name -> minimal abbreviation length.
    """
    word = word.lower()
    if word in table:
        return word
    for full, minlen in table.items():
        if len(word) >= minlen and full.startswith(word):
            return full
    return None


def covariance_type(word: str) -> Optional[str]:
    """Full covariance name from a name or abbreviation (``un``), or None."""
    return match_abbreviation(word.strip(), COVARIANCE_ABBREVIATIONS)
