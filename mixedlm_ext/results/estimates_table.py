"""Stata's ``estimates table``: several fits side by side, exportable.

``mx.estimates_table(randint, randslope, stats=["N", "ll", "aic", "bic"], se=True)``
lists, per equation (the response's fixed effects, then each level's
variance components, then the residual), every parameter of any of the
fits with its estimate (and, with ``se=True``, its standard error on the
line below), then the requested statistics.  The variance components are
in the reported metric (Stata's ``estimates table`` shows ``e(b)``, whose
variance parameters are log standard deviations: ``lns1_1_1`` etc.; here
they are the variances and covariances every other table shows).

The result is a :class:`~mixedlm_ext.results.tables.TabularSummary`
(``print`` it, ``as_latex()``, ``as_html()``, ``tables``) with the numbers
as a DataFrame in ``frame``.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pandas as pd

from .tables import TabularSummary, simple_table

STATS = {
    "N": lambda r: float(r.nobs),
    "ll": lambda r: float(r.llf),
    "aic": lambda r: float(r.aic),
    "bic": lambda r: float(r.bic),
    "k": lambda r: float(len(r.params)),
    "df_m": lambda r: float(r.wald_chi2.df) if r.wald_chi2 is not None else np.nan,
    "chi2": lambda r: float(r.wald_chi2.statistic) if r.wald_chi2 is not None else np.nan,
    "p": lambda r: float(r.wald_chi2.pvalue) if r.wald_chi2 is not None else np.nan,
}


def fmt_width(x: Optional[float], width: int = 9) -> str:
    """Stata's ``%9.0g`` in tables of estimates: as many digits as fit in ``width``
    characters (the sign not counted), no leading zero, no trailing zeros."""
    if x is None or not np.isfinite(x):
        return ""
    if float(x).is_integer() and abs(x) < 10.0 ** width:
        return "%d" % x
    ax = abs(x)
    if ax >= 10.0 ** (width - 1) or ax < 1e-4:
        return "%.*e" % (max(0, width - 6), x)
    dec = width - 1 - (len(str(int(ax))) if ax >= 1 else 0)
    s = "%.*f" % (dec, ax)
    if len(s.lstrip("0")) > width:  # rounding added a digit (9.99999999 -> 10.0000000)
        s = "%.*f" % (dec - 1, ax)
    s = s.rstrip("0").rstrip(".") if "." in s else s
    s = s[1:] if s.startswith("0.") else s
    return ("-" if x < 0 else "") + s


def _parameters(res) -> pd.DataFrame:
    """Equation, name, estimate and standard error of every parameter of a fit."""
    eq = res.model.spec.response
    rows = [(eq, n, float(b), float(s)) for n, b, s in zip(res.fe_params.index, res.fe_params, res.bse_fe)]
    vc = res.variance_components
    rows += [(lvl, par, float(e), float(s)) for (lvl, par), e, s in zip(vc.index, vc["estimate"], vc["std_err"])]
    return pd.DataFrame(rows, columns=["equation", "name", "b", "se"])


class EstimatesTable(TabularSummary):
    """Fits side by side (Stata's ``estimates table``); ``frame`` holds the numbers."""

    def __init__(self, frame: pd.DataFrame, names: list[str], se: bool):
        self.frame = frame
        text, width, table = self._layout(frame, names)
        legend = "legend: b/se" if se else "legend: b"
        super().__init__(text + "\n" + "%*s" % (width, legend), [table], [legend])

    @staticmethod
    def _layout(frame: pd.DataFrame, names: list[str]):
        w = max([12] + [len(n) for _, n, _ in frame.index])  # the stub: Stata's 12, wider for long names
        width = w + 2 + 13 * len(names)
        rule, sep = "-" * width, "-" * (w + 1) + "+" + "-" * (width - w - 2)
        lines = [rule, "%*s |" % (w, "Variable") + "".join(" %11s " % n[:11] for n in names), sep]
        stubs, data, prev = [], [], None
        for (eq, name, what), row in frame.iterrows():
            if eq != prev:
                if prev is not None:
                    lines.append(sep)
                title = "Statistics" if eq == "_stats" else eq
                lines.append(("%*s |" % (w, title)) if eq == "_stats" else ("%-*s|" % (w + 1, eq)))
                stubs.append(title)
                data.append([""] * len(names))
                prev = eq
            cells = [fmt_width(v) for v in row]
            lines.append("%*s |" % (w, name if what != "se" else "") + "".join(" %11s " % c for c in cells))
            stubs.append(("  " + name) if what != "se" else "")
            data.append(cells)
        lines.append(rule)
        return "\n".join(lines), width, simple_table(data, names, stubs, "Estimates")


def estimates_table(*results, names: Optional[Sequence[str]] = None, stats: Optional[Sequence[str]] = None,
                    se: bool = False, keep: Optional[Sequence[str]] = None,
                    drop: Optional[Sequence[str]] = None) -> EstimatesTable:
    """Stata's ``estimates table``: the fits' parameters side by side.

    Parameters
    ----------
    *results
        Fitted results (``mixed``, ``lmer``, ``MixedLMExt.fit``), or one
        dict ``name -> results``.
    names : list of str, optional
        Column titles (default: the dict's keys, else ``(1)``, ``(2)``...).
    stats : list of str, optional
        Statistics below the parameters: ``N``, ``ll``, ``aic``, ``bic``,
        ``k`` (number of parameters), ``df_m``, ``chi2``, ``p`` (the Wald test
        of the fixed effects).
    se : bool
        Show each standard error below its estimate.
    keep, drop : list of str, optional
        Parameter names (``week``, ``var(_cons)``, ``id:var(_cons)``) to
        keep or drop.

    Returns
    -------
    EstimatesTable
        Print it, or ``as_latex()``, ``as_html()``; ``frame`` is a DataFrame
        indexed by (equation, name, ``"b"``/``"se"``) with one column per fit.
    """
    if len(results) == 1 and isinstance(results[0], dict):
        names = list(results[0]) if names is None else names
        results = tuple(results[0].values())
    if not results:
        raise TypeError("estimates_table() needs at least one fitted result")
    names = list(names) if names is not None else ["(%d)" % (k + 1) for k in range(len(results))]
    if len(names) != len(results):
        raise ValueError("names has %d entries for %d results" % (len(names), len(results)))
    stats = list(stats or [])
    unknown = [s for s in stats if s not in STATS]
    if unknown:
        raise ValueError("unknown statistic %r (available: %s)" % (unknown[0], ", ".join(STATS)))
    frame = _frame([_parameters(r) for r in results], names, se, keep, drop)
    if stats:
        st = pd.DataFrame([[STATS[s](r) for r in results] for s in stats], columns=names,
                          index=pd.MultiIndex.from_tuples([("_stats", s, "stat") for s in stats]))
        frame = pd.concat([frame, st])
    return EstimatesTable(frame, names, se)


def _frame(params: list[pd.DataFrame], names: list[str], se: bool, keep, drop) -> pd.DataFrame:
    order: list[tuple[str, str]] = []
    for p in params:
        for key in zip(p.equation, p.name):
            if key not in order:
                order.append(key)
    eqs = list(dict.fromkeys(e for e, _ in order))  # equations in first-appearance order, residual last
    eqs = [e for e in eqs if e != "Residual"] + [e for e in eqs if e == "Residual"]
    order = [k for e in eqs for k in order if k[0] == e]

    def wanted(key) -> bool:
        full = "%s:%s" % key
        if keep is not None and key[1] not in keep and full not in keep:
            return False
        return drop is None or (key[1] not in drop and full not in drop)

    order = [k for k in order if wanted(k)]
    rows, index = [], []
    for key in order:
        for what in ("b", "se") if se else ("b",):
            index.append(key + (what,))
            rows.append([_lookup(p, key, what) for p in params])
    return pd.DataFrame(rows, columns=names, index=pd.MultiIndex.from_tuples(index,
                                                                             names=["equation", "name", "stat"]))


def _lookup(p: pd.DataFrame, key: tuple[str, str], what: str) -> float:
    hit = p[(p.equation == key[0]) & (p.name == key[1])]
    return float(hit[what].iloc[0]) if len(hit) else np.nan
