"""Stata's ``margins`` after ``mixed``: predictive margins and marginal effects.

Stata's default prediction after ``mixed`` is the fixed portion ``x'b``
(``predict(xb)``), which is linear in ``b``: every margin is a linear
combination ``L b`` with ``L`` the average, over the estimation sample (or
a subgroup of it, ``over``), of the rows of ``X`` rebuilt from a
counterfactual copy of the data (``design.fixed.matrix(frame)``: factor
indicators and interactions are recomputed by the fixed part's own coding).
Its standard error is ``sqrt(L V L')`` (the delta method, exact here), with
``V`` the fixed effects' covariance, then ``z``, the two-sided normal
p-value and the normal interval.

* ``margins("region")``: for each level of the factor, the average
  prediction with every row set to that level;
* ``at={"unemp": [4, 6, 8]}``: the same with covariates set to values
  (several variables: every combination, the first varying slowest);
* ``dydx="days"``: the average derivative of ``x'b`` in a continuous
  variable (a central difference, exact for terms linear in it), or for a
  factor the discrete change from its base level to each other level;
* ``over="g"``: each of the above within the subgroups of ``g``.

:func:`contrast_rows` turns margins into pairwise (or against-the-first)
differences, Stata's ``margins ..., pwcompare`` / ``contrast``.
"""
from __future__ import annotations

import itertools
import re
from typing import Callable, Optional, Sequence, Union

import numpy as np
import pandas as pd

from ..core.distributions import norm_ppf, norm_sf
from ..design.fixed import formula_variables
from ..design.types import Design

COLUMNS = ["margin", "std_err", "z", "pvalue", "ci_low", "ci_high"]


def _fmt(v) -> str:
    return "%g" % v if isinstance(v, (float, np.floating)) else str(v)


def factor_variables(design: Design) -> set[str]:
    """Fixed-part variables that are factors: read by a categorical term of the fixed
    part's patsy coding (``C(x)``, whatever front-end wrote it), or not numeric."""
    info = design.fixed.design_info
    categorical = [fi.factor.name() for fi in (info.factor_infos or {}).values() if fi.type == "categorical"]
    _, in_factor = formula_variables(design.spec.fixed, design.data.columns)
    return {v for v in design.fixed.variables
            if v in in_factor or not pd.api.types.is_numeric_dtype(design.data[v])
            or any(re.search(r"(?<![A-Za-z0-9_])%s(?![A-Za-z0-9_])" % re.escape(v), c) for c in categorical)}


def sorted_levels(values: pd.Series) -> list:
    return sorted(pd.unique(values.dropna()), key=lambda v: (str(type(v)), v))


def _check_variables(design: Design, names: Sequence[str], what: str) -> None:
    for v in names:
        if v not in design.fixed.variables:
            raise ValueError("%s: variable '%s' is not in the fixed part (covariates: %s)"
                             % (what, v, ", ".join(design.fixed.variables) or "none"))


def _at_values(frame: pd.DataFrame, var: str, spec) -> list:
    """Values of one ``at()`` variable: numbers, or ``"mean"`` / ``"median"`` of the sample."""
    vals = spec if isinstance(spec, (list, tuple, np.ndarray, pd.Series)) else [spec]
    out = []
    for v in vals:
        if isinstance(v, str) and v in ("mean", "median"):
            out.append(float(getattr(frame[var], v)()))
        else:
            out.append(v)
    return out


def settings(design: Design, frame: pd.DataFrame, factors: Sequence[str], at: Optional[dict]) -> list[dict]:
    """Every counterfactual setting: ``at`` combinations (outer) x factor levels (inner)."""
    at = at or {}
    _check_variables(design, list(factors) + list(at), "margins")
    at_grid = list(itertools.product(*[[(k, v) for v in _at_values(frame, k, s)] for k, s in at.items()]))
    fac_grid = list(itertools.product(*[[(f, lev) for lev in sorted_levels(frame[f])] for f in factors]))
    return [dict(f + a) for a in at_grid for f in fac_grid]


def margin_label(parts: dict, extra: Sequence[str] = ()) -> str:
    return ",".join(["%s=%s" % (k, _fmt(v)) for k, v in parts.items()] + list(extra))


def _derivative_rows(design: Design, frame: pd.DataFrame, var: str, factors: set) -> list[tuple[str, np.ndarray]]:
    """``(label, dX)`` for ``dydx(var)``: the derivative of the rows of ``X`` (continuous
    ``var``) or the change from the base level to each other level (factor ``var``)."""
    fixed = design.fixed
    if var in factors:
        levels = sorted_levels(design.data[var])
        X0 = fixed.matrix(frame.assign(**{var: levels[0]}))
        return [("dydx(%s=%s)" % (var, _fmt(lev)), fixed.matrix(frame.assign(**{var: lev})) - X0)
                for lev in levels[1:]]
    x = frame[var].to_numpy(dtype=float)
    h = 1e-4 * max(1.0, float(np.std(design.data[var].to_numpy(dtype=float))))
    Xp, Xm = fixed.matrix(frame.assign(**{var: x + h})), fixed.matrix(frame.assign(**{var: x - h}))
    return [("dydx(%s)" % var, (Xp - Xm) / (2.0 * h))]


def margin_rows(design: Design, factors: Sequence[str] = (), at: Optional[dict] = None,
                dydx: Optional[str] = None, over: Optional[pd.Series] = None) -> tuple[list[str], np.ndarray]:
    """``(labels, L)``: one row of ``L`` per reported margin (see the module docstring).

    ``over`` is a column on the estimation rows (design order) whose values
    define the subgroups.
    """
    frame = design.data
    if dydx is not None:
        _check_variables(design, [dydx], "dydx()")
    fvars = factor_variables(design)
    groups = [(None, np.ones(design.n, dtype=bool))]
    if over is not None:
        vals = np.asarray(over)
        groups = [("%s=%s" % (over.name, _fmt(g)), vals == g) for g in sorted_levels(pd.Series(vals))]
    labels, rows = [], []
    for parts in settings(design, frame, factors, at):
        cf = frame.assign(**parts) if parts else frame
        mats = _derivative_rows(design, cf, dydx, fvars) if dydx is not None else [(None, design.fixed.matrix(cf))]
        for glabel, mask in groups:
            for dlabel, X in mats:
                extra = [t for t in (glabel, dlabel) if t is not None]
                labels.append(margin_label(parts, extra) or "_cons")
                rows.append(X[mask].mean(axis=0))
    return labels, np.array(rows)


def contrast_rows(labels: Sequence[str], L: np.ndarray, kind: str = "pairwise") -> tuple[list[str], np.ndarray]:
    """Differences of margins: every pair (``"pairwise"``, later minus earlier) or each
    margin against the first (``"reference"``)."""
    if kind == "pairwise":
        pairs = list(itertools.combinations(range(len(labels)), 2))
    elif kind == "reference":
        pairs = [(0, j) for j in range(1, len(labels))]
    else:
        raise ValueError("kind must be 'pairwise' or 'reference', got %r" % (kind,))
    if not pairs:
        raise ValueError("a contrast needs at least two margins")
    return ["%s vs %s" % (labels[j], labels[i]) for i, j in pairs], np.array([L[j] - L[i] for i, j in pairs])


def lincom_table(labels: Sequence[str], L: np.ndarray, beta: np.ndarray, cov: np.ndarray,
                 level: float = 95.0) -> pd.DataFrame:
    """``L b`` with delta-method standard errors, z, p and normal intervals."""
    est = L @ beta
    se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", L, cov, L), 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = est / se
    zc = norm_ppf(0.5 + level / 200.0)
    out = pd.DataFrame({"margin": est, "std_err": se, "z": z, "pvalue": 2.0 * norm_sf(np.abs(z)),
                        "ci_low": est - zc * se, "ci_high": est + zc * se}, index=pd.Index(list(labels)))
    return out


def margins_table(design: Design, beta: np.ndarray, cov: np.ndarray, column: Callable[[str], pd.Series],
                  variables: Union[str, Sequence[str], None] = None, at: Optional[dict] = None,
                  dydx: Optional[str] = None, over: Optional[str] = None, level: float = 95.0,
                  contrast: Optional[str] = None) -> pd.DataFrame:
    """The margins (or, with ``contrast``, their differences) as a table; ``column(name)``
    gives a data column on the estimation rows (for ``over``)."""
    factors = [variables] if isinstance(variables, str) else list(variables or [])
    fvars = factor_variables(design)
    for f in factors:
        if f not in fvars and f in design.fixed.variables:
            raise ValueError("margins %s: '%s' is continuous; use at={'%s': [values]} (Stata: margins, at())"
                             % (f, f, f))
    grp = None
    if over is not None:
        grp = column(over).rename(over).reset_index(drop=True)
    labels, L = margin_rows(design, factors, at, dydx, grp)
    if contrast is not None:
        labels, L = contrast_rows(labels, L, contrast)
    out = lincom_table(labels, L, beta, cov, level)
    out.attrs["L"] = pd.DataFrame(L, index=out.index, columns=design.fe_names)
    return out
