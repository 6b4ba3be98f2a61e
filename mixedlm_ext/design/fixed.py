"""The fixed part: one builder for the estimation sample and for new data.

:func:`build_fixed_part` turns the specification's patsy right-hand side into
``X`` with Stata's names (``_cons`` last, ``2.region``), omits collinear
columns as Stata does, and returns a :class:`FixedPart` that keeps patsy's
``DesignInfo``: :meth:`FixedPart.matrix` builds the same columns, with the
estimation sample's coding, for any other frame (prediction, scikit-learn).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

import numpy as np
import pandas as pd
import patsy
from numpy import exp, log, sqrt  # noqa: F401 (R's names, evaluated in formulas)

from ..core.errors import ModelSpecificationError
from ..spec.model import ModelSpec
from .names import factor_variable_columns, fv, stata_name, stata_names  # noqa: F401 (fv, stata_name: formulas, callers)

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
PATSY_WORDS = {"C", "Q", "Treatment", "Sum", "Poly", "I", "np", "log", "exp", "center", "standardize", "reference",
               "Diff", "Helmert", "bs", "cr", "cc", "te", "fv", "sqrt", "abs"}


def formula_variables(rhs: str, columns) -> tuple[list[str], set[str]]:
    """Column names used in a patsy RHS, and those used inside ``C(...)``."""
    used, in_factor = [], set()
    for m in re.finditer(r"\bQ\(\s*(['\"])(.*?)\1\s*\)", rhs):  # patsy's Q('name with spaces')
        if m.group(2) in columns and m.group(2) not in used:
            used.append(m.group(2))
    for m in IDENTIFIER.finditer(re.sub(r"(['\"]).*?\1", " ", rhs)):  # names inside strings are not columns
        name = m.group(0)
        if name in columns and name not in used:
            used.append(name)
    for m in re.finditer(r"C\(\s*([A-Za-z_][A-Za-z0-9_]*)", rhs):
        in_factor.add(m.group(1))
    return used, in_factor | factor_variable_columns(rhs)


def unknown_formula_names(rhs: str, columns) -> list[str]:
    """Identifiers of a patsy RHS that are neither columns nor patsy's own words."""
    without_strings = re.sub(r"(['\"]).*?\1", " ", rhs)
    return [t for t in IDENTIFIER.findall(without_strings) if t not in columns and t not in PATSY_WORDS]


def patsy_rhs(spec: ModelSpec) -> str:
    """The full patsy right-hand side of the fixed part, intercept made explicit."""
    rhs = spec.fixed.strip() or "1"
    return ("1 + " if spec.constant else "0 + ") + rhs


def drop_collinear(X: np.ndarray, names: list[str], tol: float = 1e-9) -> np.ndarray:
    """Columns to keep: those not in the span of earlier ones, as Stata (constant kept)."""
    if X.shape[1] == 0:
        return np.zeros(0, dtype=bool)
    order = list(range(X.shape[1]))
    if "_cons" in names:  # check the constant first so Stata keeps it
        k = names.index("_cons")
        order = [k] + [i for i in order if i != k]
    Xo = X[:, order]
    norms = np.linalg.norm(Xo, axis=0)
    r = np.abs(np.diag(np.linalg.qr(Xo, mode="r")))
    r = np.concatenate([r, np.zeros(Xo.shape[1] - r.size)])  # more columns than rows: the rest are dependent
    keep_o = (norms > 0) & (r > tol * np.maximum(norms, 1e-300))
    keep = np.zeros(X.shape[1], dtype=bool)
    keep[np.asarray(order)[keep_o]] = True
    return keep


@dataclass(frozen=True, eq=False)
class FixedPart:
    """The fixed-effects columns of a model, bound to their coding.

    ``design_info`` is patsy's description of the full right-hand side
    ``rhs``, made from the estimation rows ``frame``; ``columns`` are the
    positions (in patsy's column order) of the kept columns, in Stata's
    order (constant last); ``names`` their Stata names; ``omitted`` the
    names dropped for collinearity; ``variables`` the data columns the part
    reads.  patsy's ``DesignInfo`` does not pickle: a pickled part keeps
    ``rhs`` and ``frame`` and remakes it.  A right-hand side of plain numeric
    variables needs no patsy (:func:`plain_fixed_part`): ``design_info`` is
    None and ``plain`` lists the candidate columns.
    """

    design_info: patsy.DesignInfo
    columns: tuple[int, ...]
    names: tuple[str, ...]
    omitted: tuple[str, ...]
    variables: tuple[str, ...]
    rhs: str
    frame: pd.DataFrame
    plain: Optional[tuple[str, ...]] = None  # the candidate columns of a plain part (variables, _cons)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("design_info")
        return state

    def __setstate__(self, state: dict) -> None:
        if state.get("plain") is None:
            info = patsy.dmatrix(state["rhs"], state["frame"], NA_action="raise").design_info
        else:
            info = _plain_design_info(state["variables"], "_cons" in state["plain"])
        self.__dict__.update(state, design_info=info)

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """``X`` for ``frame`` with the estimation sample's coding; rows with a
        missing value in a used variable are NaN."""
        missing = [v for v in self.variables if v not in frame.columns]
        if missing:
            raise ValueError("variable '%s' of the fixed part not found in data" % missing[0])
        for v in self.variables:
            was_number = pd.api.types.is_numeric_dtype(self.frame[v]) or pd.api.types.is_bool_dtype(self.frame[v])
            if was_number and not (pd.api.types.is_numeric_dtype(frame[v]) or pd.api.types.is_bool_dtype(frame[v])):
                raise ValueError("variable '%s' of the new data is not numeric (dtype %s); it was numeric in "
                                 "the estimation data" % (v, frame[v].dtype))
        X = np.full((len(frame), len(self.columns)), np.nan)
        ok = frame[list(self.variables)].notna().all(axis=1).to_numpy() if self.variables \
            else np.ones(len(frame), bool)
        if ok.any() and self.plain is not None:
            rows = frame.loc[ok]
            cols = [np.ones(int(ok.sum())) if nm == "_cons" else rows[nm].to_numpy(dtype=float)
                    for nm in self.names]
            X[ok] = np.column_stack(cols) if cols else np.zeros((int(ok.sum()), 0))
        elif ok.any():
            try:
                (M,) = patsy.build_design_matrices([self.design_info], frame.loc[ok], NA_action="raise")
            except patsy.PatsyError as exc:
                raise ValueError("cannot build the fixed part for the new data: %s" % exc) from None
            X[ok] = np.asarray(M, dtype=float)[:, list(self.columns)]
        return X


def plain_variables(spec: ModelSpec, df) -> Optional[list[str]]:
    """The variables of a right-hand side made only of numeric (not boolean) columns
    joined by ``+``, in order (duplicates once); None when patsy is needed (``df``: a
    data frame or the design's column table)."""
    rhs = spec.fixed.strip()
    terms = [t.strip() for t in rhs.split("+")] if rhs else []
    out: list[str] = []
    for t in terms:
        if not IDENTIFIER.fullmatch(t) or t not in df.columns or t in ("Intercept",):
            return None
        col = df[t]
        if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            return None
        if t not in out:
            out.append(t)
    return out


def _plain_design_info(variables, constant: bool) -> patsy.DesignInfo:
    """patsy's description of ``1 + x1 + x2 ...`` (column names only, no data needed)."""
    return patsy.DesignInfo((["Intercept"] if constant else []) + list(variables))


def plain_fixed_part(spec: ModelSpec, df, variables: list[str], keep: np.ndarray) -> FixedPart:
    """The :class:`FixedPart` of plain ``variables`` (constant last) keeping the
    candidate columns ``keep`` (collinearity decided by the caller); ``columns`` are
    positions in patsy's column order (the intercept first), as for any other part."""
    names = list(variables) + (["_cons"] if spec.constant else [])
    patsy_pos = [i + int(spec.constant) for i in range(len(variables))] + ([0] if spec.constant else [])
    return FixedPart(_plain_design_info(variables, spec.constant),
                     tuple(pos for pos, k in zip(patsy_pos, keep) if k), tuple(n for n, k in zip(names, keep) if k),
                     tuple(n for n, k in zip(names, keep) if not k), tuple(variables), patsy_rhs(spec), df,
                     tuple(names))


def build_fixed_part(spec: ModelSpec, df: pd.DataFrame, keep_collinear: bool = False) -> tuple[np.ndarray, FixedPart]:
    """``X`` of the estimation rows and the :class:`FixedPart` that builds it
    (``keep_collinear``: every column of the right-hand side, none omitted)."""
    rhs = patsy_rhs(spec)
    try:
        M = patsy.dmatrix(rhs, df, NA_action="raise", return_type="matrix")
    except (patsy.PatsyError, SyntaxError) as exc:
        raise ModelSpecificationError("cannot build the fixed part %r: %s" % (spec.fixed, exc)) from None
    info = M.design_info
    names = stata_names(info.column_names, df)
    order = list(range(len(names)))
    if "_cons" in names:  # Stata lists the constant last
        k = names.index("_cons")
        order = [i for i in order if i != k] + [k]
    arr = np.asarray(M, dtype=float)[:, order]
    ordered = [names[i] for i in order]
    keep = np.ones(len(ordered), dtype=bool) if keep_collinear else drop_collinear(arr, ordered)
    variables, _ = formula_variables(spec.fixed, df.columns)
    part = FixedPart(info, tuple(i for i, k in zip(order, keep) if k), tuple(n for n, k in zip(ordered, keep) if k),
                     tuple(n for n, k in zip(ordered, keep) if not k), tuple(variables), rhs, df)
    return arr[:, keep], part
