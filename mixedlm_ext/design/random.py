"""The random-effects design: base columns of an equation and their expansion.

An equation's *base* matrix holds its random-coefficient columns (constant
last).  A block expanded by a factor (Stata's ``R.x``, crossed lme4 terms)
repeats the base columns once per factor level: the row-wise Kronecker
product of the level indicators with the base columns, dense for small
designs and sparse (CSC) for crossed designs.
"""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import pandas as pd
import patsy
import scipy.sparse as sp
from numpy import exp, log, sqrt  # noqa: F401 (R's names, evaluated in random-effect expressions)

from ..core.errors import ModelSpecificationError
from ..spec.model import REEquation
from ..syntax.stata.factor_variables import parse_fv_term
from .fixed import formula_variables

# design.Z stays a dense array while it has at most this many entries (other
# modules index it); larger crossed designs keep it as a scipy CSC matrix.
DENSE_Z_MAX_ELEMS = 4_000_000


def effect_variables(name: str, columns) -> list[str]:
    """The data columns a random effect reads: the column ``name`` itself, the
    variables of a Stata product ``c.x#c.z``, or those of a patsy expression
    (lme4's ``I(week^2)``)."""
    if "#" in name:
        return list(parse_fv_term(name).variables)
    if re.match(r"[A-Za-z_][A-Za-z0-9_]*\Z", name):
        return [name]
    return formula_variables(name, columns)[0] or ([name] if name in columns else [])


def effect_column(name: str, df, what: str = "the random effect") -> np.ndarray:
    """The values of one random effect (or of an offset: ``what``) on the rows of ``df``
    (a data frame or the design's :class:`~.table.ColumnTable`; see :func:`effect_variables`)."""
    if name in df.columns:  # a column (or an expression the design already evaluated)
        return np.asarray(df[name], dtype=float)
    if "#" in name:
        term = parse_fv_term(name)
        out = np.ones(len(df))
        for p in term.parts:
            out = out * np.asarray(df[p.var], dtype=float)
        return out
    try:
        M = np.asarray(patsy.dmatrix("0 + " + name, df, NA_action="raise"), dtype=float)
    except (patsy.PatsyError, SyntaxError, NameError, TypeError) as exc:
        raise ModelSpecificationError("cannot evaluate %s %r: %s" % (what, name, exc)) from None
    if M.shape[1] != 1:
        raise ModelSpecificationError("%s %r gives %d columns; it must be one numeric column"
                                      % (what, name, M.shape[1]))
    return M[:, 0]


def base_matrix(eq: REEquation, df) -> np.ndarray:
    """The equation's random-coefficient columns of ``df`` (constant last), ``(n, q)``;
    ``df`` a data frame or a :class:`~.table.ColumnTable`."""
    cols = [effect_column(c, df) for c in eq.columns]
    if eq.constant or eq.factor is not None:
        cols.append(np.ones(len(df)))
    return np.column_stack(cols) if cols else np.zeros((len(df), 0))


def dense_expand(base: np.ndarray, codes: np.ndarray, k: int) -> np.ndarray:
    """Row-wise Kronecker of a level indicator with the base columns."""
    n, qe = base.shape
    out = np.zeros((n, k * qe))
    idx = codes[:, None] * qe + np.arange(qe)[None, :]
    np.put_along_axis(out, idx, base, axis=1)
    return out


def sparse_expand(base: np.ndarray, codes: np.ndarray, k: int) -> sp.csc_matrix:
    """:func:`dense_expand` as a sparse matrix: column ``codes[i] * qe + j`` of
    row ``i`` holds ``base[i, j]``."""
    n, qe = base.shape
    indices = (np.asarray(codes, dtype=np.int64)[:, None] * qe + np.arange(qe)[None, :]).ravel()
    indptr = np.arange(0, n * qe + 1, qe, dtype=np.int64)
    m = sp.csr_matrix((np.ascontiguousarray(base, dtype=float).ravel(), indices, indptr), shape=(n, k * qe))
    return m.tocsc()


def hstack_columns(mats: Sequence, n: int):
    """``column_stack`` for a mix of dense arrays and sparse matrices (CSC result)."""
    if not mats:
        return sp.csc_matrix((n, 0))
    return sp.hstack([m if sp.issparse(m) else sp.csc_matrix(np.asarray(m, dtype=float)) for m in mats],
                     format="csc")


def finish_Z(Z):
    """Dense ``Z`` when small (other modules index it), CSC otherwise."""
    if sp.issparse(Z) and Z.shape[0] * Z.shape[1] <= DENSE_Z_MAX_ELEMS:
        return Z.toarray()
    return Z


def uses_sparse_design(merged) -> bool:
    """Whether a design goes through the crossed engine: some ``_all`` level has
    an ``R.x`` factor block (``|| _all: R.a``, ``|| _all: R.a || b:``).  The
    lme4-style crossed groupings (:func:`~.groups.as_crossed`) always do."""
    return any(path == () and any(eq.factor is not None for eq in eqs) for path, eqs in merged)
