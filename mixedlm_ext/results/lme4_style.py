"""lme4's view of a fit: ``summary(style="lme4")``, ``ranef()``, ``fixef()``, ``VarCorr()``.

Names as lme4 writes them: the constant is ``(Intercept)`` and comes first;
a grouping is named by its factor (``subject``), a nested level of
``(1 | batch/cask)`` by ``cask:batch``, an explicit ``(1 | a:b)`` by
``a:b``.  Terms are listed by decreasing number of levels, as lme4 orders
them.  Numbers are printed with R's rule for ``format(x, digits=4)``
(enough decimals for every value to show its significant digits).
"""
from __future__ import annotations

from collections.abc import Mapping
from math import floor, log10
from typing import Iterator, Sequence

import numpy as np
import pandas as pd

from .tables import TabularSummary, simple_table

INTERCEPT = "(Intercept)"


def lme4_effect(name: str) -> str:
    """``_cons`` (and a Stata factor block ``R.x``, an intercept per level) -> ``(Intercept)``."""
    return INTERCEPT if name == "_cons" or name.startswith("R.") else name


def lme4_order(names: Sequence[str]) -> list[str]:
    """The intercept first, the rest in their order."""
    first = [n for n in names if lme4_effect(n) == INTERCEPT]
    return first + [n for n in names if n not in first]


def _r_decimals(x: float, digits: int) -> int:
    """Decimals R's ``format`` gives ``x`` at ``digits`` significant digits (trailing zeros dropped)."""
    if x == 0 or not np.isfinite(x):
        return 0
    e = floor(log10(abs(x)))
    target = round(x, digits - 1 - e)
    for sig in range(1, digits + 1):
        if abs(round(x, sig - 1 - e) - target) <= 1e-12 * max(1.0, abs(target)):
            return max(0, sig - 1 - e)
    return max(0, digits - 1 - e)


def r_format(values: Sequence[float], digits: int = 4) -> list[str]:
    """Close to R's ``format(values, digits=digits)``: one number of decimals for all
    (enough for each value's significant digits, at most ``digits``), equal widths."""
    finite = [v for v in values if np.isfinite(v)]
    dec = min(digits, max([_r_decimals(v, digits) for v in finite] or [0]))
    out = ["%.*f" % (dec, v) if np.isfinite(v) else "NA" for v in values]
    width = max((len(o) for o in out), default=0)
    return [o.rjust(width) for o in out]


def abbreviate(name: str, minlength: int = 6) -> str:
    """R's ``abbreviate``: drop lower-case vowels, then lower-case letters, then anything,
    from the right (never the first character) until ``minlength`` remain."""
    chars = list(name)
    for drop in (lambda c: c in "aeiou", str.islower, lambda c: True):
        i = len(chars) - 1
        while len(chars) > minlength and i > 0:
            if drop(chars[i]):
                del chars[i]
            i -= 1
    return "".join(chars)


def grouping_name(key: str, path: tuple, expand_by: tuple) -> str:
    """lme4's name of a grouping: ``subject``, ``cask:batch`` for a nested level, ``a:b`` as written."""
    if "R." in key:  # Stata's || _all: R.x is lme4's (1 | x); below a level g, (1 | g:x)
        return ":".join(reversed(tuple(path) + tuple(expand_by)))
    if ":" in key:
        return key
    parts = tuple(expand_by or ()) or tuple(path)
    return ":".join(reversed(parts)) if len(parts) > 1 else key


def _terms(res) -> list[tuple[str, str, pd.DataFrame]]:
    """(random_effects key, lme4 name, BLUP frame) per term, most levels first."""
    layout = res._pe_estimates.layout
    design = res.model.design
    out = []
    for t in layout.terms:
        lvl = design.levels[t.level_index]
        blk = t.blocks[0][0]
        name = grouping_name(t.key, lvl.path, blk.expand_by if t.expanded else ())
        out.append((t.key, name, res.random_effects[t.key]))
    return sorted(out, key=lambda x: -len(x[2]))


def ranef(res) -> dict[str, pd.DataFrame]:
    """lme4's ``ranef()``: grouping name -> BLUPs, ``(Intercept)`` first, one row per level
    (nested levels labelled ``inner:outer`` like lme4's ``cask:batch`` factor)."""
    out = {}
    for _, name, frame in _terms(res):
        f = frame[lme4_order(list(frame.columns))].rename(columns=lme4_effect)
        if isinstance(f.index, pd.MultiIndex):
            f.index = pd.Index([":".join(str(v) for v in reversed(k)) for k in f.index], name=name)
        out[name] = f
    return out


def fixef(res) -> pd.Series:
    """lme4's ``fixef()``: the fixed effects, ``(Intercept)`` first."""
    fe = res.fe_params
    s = fe[lme4_order(list(fe.index))]
    return s.rename(index=lme4_effect).rename("fixef")


class VarCorr(Mapping):
    """lme4's ``VarCorr()``: per grouping the covariance matrix of its effects, and the residual SD.

    ``vc["subject"]`` is a DataFrame (``(Intercept)`` first); ``sigma`` the
    residual standard deviation; ``frame`` lme4's ``as.data.frame(VarCorr(fit))``
    (``grp``, ``var1``, ``var2``, ``vcov``, ``sdcor``); ``print`` shows lme4's
    ``Std.Dev.``/``Corr`` table.
    """

    def __init__(self, matrices: dict[str, pd.DataFrame], sigma: float):
        self._m = matrices
        self.sigma = float(sigma)

    def __getitem__(self, key: str) -> pd.DataFrame:
        return self._m[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._m)

    def __len__(self) -> int:
        return len(self._m)

    @property
    def frame(self) -> pd.DataFrame:
        rows = []
        for grp, m in self._m.items():
            sd = np.sqrt(np.diag(m.to_numpy()))
            names = list(m.columns)
            rows += [(grp, n, None, float(m.iloc[i, i]), float(sd[i])) for i, n in enumerate(names)]
            for j in range(len(names)):
                for i in range(j + 1, len(names)):
                    c = float(m.iloc[i, j])
                    rows.append((grp, names[j], names[i], c, c / (sd[i] * sd[j]) if sd[i] * sd[j] > 0 else np.nan))
        rows.append(("Residual", None, None, self.sigma ** 2, self.sigma))
        return pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])

    def rows(self, variance: bool) -> list[list[str]]:
        """Cells of lme4's table: Groups, Name, [Variance,] Std.Dev.[, Corr] (strings)."""
        entries = []
        for grp, m in self._m.items():
            v = m.to_numpy()
            sd = np.sqrt(np.diag(v))
            for i, n in enumerate(m.columns):
                corr = [v[i, j] / (sd[i] * sd[j]) if sd[i] * sd[j] > 0 else np.nan for j in range(i)]
                entries.append((grp if i == 0 else "", n, v[i, i], sd[i], corr))
        entries.append(("Residual", "", self.sigma ** 2, self.sigma, []))
        with_corr = any(e[4] for e in entries)
        out = []
        for e, vs, ss in zip(entries, r_format([e[2] for e in entries]), r_format([e[3] for e in entries])):
            corr = [" ".join("%5.2f" % c for c in e[4])] if with_corr else []
            out.append([e[0], e[1]] + ([vs] if variance else []) + [ss] + corr)
        return out

    def text(self, variance: bool = False) -> list[str]:
        """lme4's printed table: every column left-aligned under its heading."""
        rows = self.rows(variance)
        head = (["Groups", "Name"] + (["Variance"] if variance else []) + ["Std.Dev.", "Corr"])[:len(rows[0])]
        widths = [max(len(r[k]) for r in [head] + rows) for k in range(len(head))]
        return [(" " + " ".join(c.ljust(w) for c, w in zip(r, widths))) for r in [head] + rows]

    def __str__(self) -> str:
        return "\n".join(self.text())

    __repr__ = __str__


def varcorr(res) -> VarCorr:
    """The :class:`VarCorr` of a fit.  A block with uncorrelated effects (lme4's
    ``(x || g)``) is one group per effect, named ``g``, ``g.1``, ... as lme4 names them."""
    cov = res.estat_recovariance()
    layout = res._pe_estimates.layout
    mats = {}
    for key, name, _ in _terms(res):
        m = cov[key]
        groups = []
        for blk, _ in layout.term(key).blocks:
            effects = [e for e in m.columns if e in blk.effects] if not layout.term(key).expanded else list(m.columns)
            if blk.equation.covariance in ("identity", "independent"):
                groups += [[e] for e in lme4_order(effects)]
            else:
                groups.append(lme4_order(effects))
        for k, effects in enumerate(groups):
            label = name if k == 0 else "%s.%d" % (name, k)
            mats[label] = m.loc[effects, effects].rename(index=lme4_effect, columns=lme4_effect)
    return VarCorr(mats, np.sqrt(res.sigma2))


class Lme4Summary(TabularSummary):
    """``print(res.summary(style="lme4"))``: lme4's ``summary.merMod`` layout."""

    def __init__(self, res, formula: str):
        vc = varcorr(res)
        lines = ["Linear mixed model fit by %s ['lmerMod']" % ("REML" if res.reml else "maximum likelihood "),
                 "Formula: %s" % formula, ""]
        if res.reml:
            lines += ["REML criterion at convergence: %s" % r_format([-2.0 * res.llf], 5)[0], ""]
        else:
            vals = ["%.1f" % res.aic, "%.1f" % res.bic, "%.1f" % res.llf, "%.1f" % (-2.0 * res.llf),
                    "%d" % (res.nobs - len(res.params))]
            lines += ["%8s %8s %8s %8s %8s " % ("AIC", "BIC", "logLik", "deviance", "df.resid"),
                      "%8s %8s %8s %8s %8s " % tuple(vals), ""]
        q = np.quantile(np.asarray(res.resid) / np.sqrt(res.sigma2), [0, 0.25, 0.5, 0.75, 1.0])
        qs = r_format(list(q))
        w = max(len(s) for s in qs)
        lines += ["Scaled residuals: ", " ".join(h.rjust(w) for h in ("Min", "1Q", "Median", "3Q", "Max")) + " ",
                  " ".join(s.rjust(w) for s in qs) + " ", "", "Random effects:"] + vc.text(variance=True)
        groups = "; ".join("%s, %d" % (name, len(frame)) for _, name, frame in _terms(res))
        lines.append("Number of obs: %d, groups:  %s" % (res.nobs, groups))
        fe_rows, fe_text = self._fixed(res)
        lines += ["", "Fixed effects:"] + fe_text
        corr_rows, corr_text = self._correlation(res)
        lines += corr_text
        tables = [simple_table([r[2:] for r in vc.rows(True)], ["Variance", "Std.Dev.", "Corr"],
                               ["%s %s" % (r[0], r[1]) for r in vc.rows(True)], "Random effects"),
                  simple_table([r[1:] for r in fe_rows], ["Estimate", "Std. Error", "t value"],
                               [r[0] for r in fe_rows], "Fixed effects")]
        if corr_rows:
            tables.append(simple_table([r[1:] for r in corr_rows], self._corr_heads, [r[0] for r in corr_rows],
                                       "Correlation of Fixed Effects"))
        super().__init__("\n".join(lines), tables)

    @staticmethod
    def _fixed(res) -> tuple[list[list[str]], list[str]]:
        fe = fixef(res)
        se = res.bse_fe[lme4_order(list(res.bse_fe.index))].to_numpy()
        dec = max([_r_decimals(v, 4) for v in se if v > 0] or [0])
        rows = [[n, "%.*f" % (dec, b), "%.*f" % (dec, s), "%.3f" % (b / s) if s > 0 else "NA"]
                for n, b, s in zip(fe.index, fe.to_numpy(), se)]
        return rows, _columns(["", "Estimate", "Std. Error", "t value"], rows)

    def _correlation(self, res) -> tuple[list[list[str]], list[str]]:
        fe = fixef(res)
        p = len(fe)
        self._corr_heads = [abbreviate(n) for n in fe.index[:-1]]
        if p < 2:
            return [], []
        if p > 12:
            return [], ["", "Correlation matrix not shown by default, as p = %d > 12." % p]
        order = lme4_order(list(res.fe_params.index))
        c = res.cov_fe.loc[order, order].to_numpy()
        d = np.sqrt(np.diag(c))
        r = c / np.outer(d, d)
        rows = [[fe.index[i]] + ["%.3f" % r[i, j] for j in range(i)] + [""] * (p - 1 - i) for i in range(1, p)]
        return rows, ["", "Correlation of Fixed Effects:"] + _columns([""] + self._corr_heads, rows)


def _columns(head: list[str], rows: list[list[str]]) -> list[str]:
    """Rows as R prints a matrix: the first column left-aligned, the others right-aligned."""
    widths = [max(len(r[k]) for r in [head] + rows) for k in range(len(head))]
    return [" ".join([r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]).rstrip()
            for r in [head] + rows]
