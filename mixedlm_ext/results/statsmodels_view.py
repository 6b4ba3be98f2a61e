"""A fit as statsmodels' ``MixedLMResults`` shows it (the drop-in's results).

Names and metrics as in statsmodels: ``params`` are the fixed effects
(patsy's names), then the lower triangle of ``cov_re`` and the variance
components, both divided by ``scale`` (statsmodels' "profile" metric:
``Group Var``, ``Group x Time Cov``, ``Time Var``, ``cask Var``); ``bse``
the standard errors of those (the delta method from this package's
covariance of the variance parameters); ``cov_re`` and ``vcomp`` on the
absolute scale; ``scale`` the residual variance; ``random_effects`` a dict
keyed by group, each a Series named as statsmodels names its entries
(``Group``, ``Time``, ``cask[C(cask)[a]]``).

Where statsmodels' numbers are its own conventions they are kept:
``aic``/``bic`` are NaN for REML fits and count ``scale`` as a
parameter; ``bse_re`` is ``sqrt(scale) * bse`` of the variance parameters
(statsmodels' definition; here labelled for the variance components too,
where statsmodels raises).  ``profile_re`` profiles the relative variance
(value / scale) as statsmodels does, by constrained optimisation of this
package's profiled likelihood.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

import numpy as np
import pandas as pd
from scipy import optimize, stats
from statsmodels.base.model import LikelihoodModelResults
from statsmodels.iolib import summary2

from ..design.random import base_matrix


@dataclass(frozen=True)
class VCName:
    """One variance component as statsmodels names it and where this package keeps it."""

    name: str  # statsmodels' name ("cask")
    level: str  # the random_effects key holding its BLUPs
    natural: tuple[str, str]  # this package's name of its variance
    column: Union[str, dict]  # patsy's column name: a template "C(cask)[{}]", a slope's name, or level -> name
    effect: Optional[str] = None  # a slope at the groups' level: its effect name (None: nested intercepts)


@dataclass(frozen=True)
class StatsmodelsNames:
    """statsmodels' names of a model's parameters, and this package's for each."""

    endog: str
    fe: tuple[str, ...]
    fe_ours: tuple[str, ...]
    group: str  # the level of the groups
    re: tuple[str, ...]  # cov_re's names (Group, Time)
    re_ours: tuple[str, ...]  # this package's effect names (_cons, Time)
    vc: tuple[VCName, ...] = field(default=())
    pandas_out: bool = True  # fitted values as a Series (formula or pandas input)

    def cov_names(self) -> list[str]:
        return [self.re[i] + " Var" if i == j else "%s x %s Cov" % (self.re[j], self.re[i])
                for i in range(len(self.re)) for j in range(i + 1)]

    def param_names(self) -> list[str]:
        return list(self.fe) + self.cov_names() + [v.name + " Var" for v in self.vc]


def _natural_index(names: list[tuple[str, str]], level: str, a: str, b: str) -> Optional[int]:
    """Position of var(a) (a == b) or cov(a,b) of ``level`` among the natural parameters."""
    keys = [(level, "var(%s)" % a)] if a == b else [(level, "cov(%s,%s)" % (a, b)), (level, "cov(%s,%s)" % (b, a))]
    for k in keys:
        if k in names:
            return names.index(k)
    return None


class StatsmodelsResults(LikelihoodModelResults):
    """statsmodels' ``MixedLMResults`` spellings over a fit of this package (``.fit_ext``)."""

    def __init__(self, model, fit, names: StatsmodelsNames):
        self.fit_ext = fit
        self.names = names
        scale = float(fit.sigma2)
        params, cov = self._profile_metric(fit, names, scale)
        super().__init__(model, params.to_numpy(), normalized_cov_params=cov / scale)
        self.params = params if names.pandas_out else params.to_numpy()
        self.scale = scale  # statsmodels: cov_params() = normalized_cov_params * scale
        self.reml = bool(fit.reml)
        self.method = "REML" if self.reml else "ML"
        self.converged = bool(fit.converged)
        self.k_fe, self.k_re, self.k_vc = len(names.fe), len(names.re), len(names.vc)
        self.k_re2 = self.k_re * (self.k_re + 1) // 2
        self.nobs = int(fit.nobs)
        self.df_resid = self.nobs - self.k_fe
        self.use_t = False
        self.hist = None

    @staticmethod
    def _profile_metric(fit, names: StatsmodelsNames, scale: float) -> tuple[pd.Series, np.ndarray]:
        """statsmodels' params and their covariance (delta method from this package's)."""
        k = fit.k_fe
        nat_names = list(fit.model.objective.natural_names())
        phi = np.asarray(fit.params)[k:]
        cov_phi = np.asarray(fit.cov_params())[k:, k:]
        s_idx = nat_names.index(("Residual", "var(Residual)"))
        rows = []  # index of the natural parameter of each statsmodels variance parameter (None: fixed at 0)
        for i in range(len(names.re)):
            for j in range(i + 1):
                rows.append(_natural_index(nat_names, names.group, names.re_ours[i], names.re_ours[j]))
        rows += [nat_names.index(v.natural) for v in names.vc]
        J = np.zeros((len(rows), len(phi)))
        values = np.zeros(len(rows))
        for r, idx in enumerate(rows):
            if idx is None:
                continue
            values[r] = phi[idx] / scale
            J[r, idx] = 1.0 / scale
            J[r, s_idx] = -phi[idx] / scale ** 2
        fe = fit.fe_params[list(names.fe_ours)].to_numpy()
        cov_fe = fit.cov_fe.loc[list(names.fe_ours), list(names.fe_ours)].to_numpy()
        p = len(fe)
        cov = np.zeros((p + len(rows), p + len(rows)))
        cov[:p, :p] = cov_fe
        cov[p:, p:] = J @ cov_phi @ J.T
        return pd.Series(np.concatenate([fe, values]), index=names.param_names()), cov

    # -- statsmodels' attributes (labelled for pandas or formula input, arrays otherwise) -----
    def _out(self, values: np.ndarray, names: list[str]):
        return pd.Series(values, index=names) if self.names.pandas_out else np.asarray(values)

    @property
    def bse(self):
        return self._out(np.sqrt(np.diag(self.cov_params())), self.names.param_names())

    @property
    def fe_params(self):
        return self._out(np.asarray(self.params)[: self.k_fe], list(self.names.fe))

    @property
    def bse_fe(self):
        return self._out(np.asarray(self.bse)[: self.k_fe], list(self.names.fe))

    @property
    def bse_re(self):
        """statsmodels' definition: ``sqrt(scale * diag(cov_params()))`` of the variance parameters."""
        names = self.names.param_names()[self.k_fe:]
        return self._out(np.sqrt(self.scale) * np.asarray(self.bse)[self.k_fe:], names)

    @property
    def cov_re(self):
        m = self.fit_ext.estat_recovariance()[self.names.group] if self.k_re else pd.DataFrame()
        ours = list(self.names.re_ours)
        vals = m.reindex(index=ours, columns=ours).fillna(0.0).to_numpy() if self.k_re else np.zeros((0, 0))
        if not self.names.pandas_out:
            return vals
        return pd.DataFrame(vals, index=list(self.names.re), columns=list(self.names.re))

    @property
    def cov_re_unscaled(self):
        return self.cov_re / self.scale

    @property
    def vcomp(self) -> np.ndarray:
        return np.asarray(self.params)[self.k_fe + self.k_re2:] * self.scale

    @property
    def llf(self) -> float:
        return float(self.fit_ext.llf)

    @property
    def aic(self) -> float:
        return np.nan if self.reml else -2.0 * (self.llf - (len(self.params) + 1))

    @property
    def bic(self) -> float:
        return np.nan if self.reml else -2.0 * self.llf + np.log(self.nobs) * (len(self.params) + 1)

    @property
    def fittedvalues(self):
        v = self.fit_ext.fittedvalues
        return v if self.names.pandas_out else v.to_numpy()

    @property
    def resid(self):
        v = self.fit_ext.resid
        return v if self.names.pandas_out else v.to_numpy()

    def predict(self, exog=None, transform=True):
        """The fixed part ``exog @ fe_params`` (statsmodels' ``predict``); ``exog`` a frame
        of the formula's variables (formula models) or the exog matrix (array models)."""
        del transform
        if exog is None:
            out = self.fit_ext.predict(kind="xb")
        elif isinstance(exog, pd.DataFrame) and self.model.formula is not None:
            out = self.fit_ext.predict(exog, kind="xb")
        else:
            return np.asarray(exog, dtype=float) @ self.fe_params.to_numpy()
        return out if self.names.pandas_out else out.to_numpy()

    # -- random effects --------------------------------------------------------------------
    @property
    def random_effects(self) -> dict:
        """Group label -> the group's BLUPs, named as statsmodels names them."""
        re = self.fit_ext.random_effects
        own = re[self.names.group] if self.names.group in re else None
        out = {}
        for g in self.model.group_labels:
            names, values = [], []
            if self.k_re:
                row = own.loc[g]
                names += list(self.names.re)
                values += [float(row[e]) for e in self.names.re_ours]
            for v in self.names.vc:
                for nm, val in self._vc_entries(re, v, g):
                    names.append(nm)
                    values.append(val)
            out[g] = pd.Series(values, index=names)
        return out

    def _vc_entries(self, re: dict, v: VCName, g) -> list[tuple[str, float]]:
        if v.effect is not None:
            return [("%s[%s]" % (v.name, v.column), float(re[v.level].loc[g, v.effect]))]
        frame = re[v.level]
        try:
            part = frame.xs(g, level=0)
        except KeyError:
            return []
        col = frame.columns[0]
        out = []
        for lev, val in zip(part.index, part[col]):
            colname = v.column.format(lev) if isinstance(v.column, str) else v.column[(g, lev)]
            out.append(("%s[%s]" % (v.name, colname), float(val)))
        return out

    @property
    def random_effects_cov(self) -> dict:
        """Group label -> the conditional covariance of its random effects given the data
        (``G - G Z' V^-1 Z G`` with the fixed effects known), named as :attr:`random_effects`."""
        d = self.fit_ext.model.design
        data = d.data
        gcol = self.model.groups_column
        out = {}
        cov_re = np.asarray(self.cov_re)
        vcomp = self.vcomp
        eq = next((blk.equation for lvl in d.levels for blk in lvl.blocks if blk.label == self.names.group), None)
        positions = data.groupby(gcol, sort=False, observed=True).indices  # one pass over the rows
        for g, names in ((g, s.index) for g, s in self.random_effects.items()):
            rows = data.iloc[positions[g]]
            cols, var = [], []
            if self.k_re:
                Z = base_matrix(eq, rows)
                effects = list(eq.effect_names)
                cols.append(Z[:, [effects.index(e) for e in self.names.re_ours]])
            for k, v in enumerate(self.names.vc):
                M = self._vc_design(rows, v)
                cols.append(M)
                var += [vcomp[k]] * M.shape[1]
            Z = np.column_stack(cols) if cols else np.zeros((len(rows), 0))
            G = np.zeros((Z.shape[1], Z.shape[1]))
            G[: self.k_re, : self.k_re] = cov_re
            G[self.k_re:, self.k_re:] = np.diag(var)
            V = Z @ G @ Z.T + self.scale * np.eye(len(rows))
            C = G - G @ Z.T @ np.linalg.solve(V, Z @ G)
            out[g] = pd.DataFrame(C, index=names, columns=names)
        return out

    def _vc_design(self, rows: pd.DataFrame, v: VCName) -> np.ndarray:
        eq = next(blk.equation for lvl in self.fit_ext.model.design.levels for blk in lvl.blocks
                  if blk.label == v.natural[0])
        base = base_matrix(eq, rows)
        if v.effect is not None:
            return base
        sub = rows[eq.group[-1]]
        levels = sorted(sub.unique(), key=lambda x: (str(type(x)), x))
        return np.column_stack([base[:, 0] * (sub.to_numpy() == lev) for lev in levels]) if levels \
            else np.zeros((len(rows), 0))

    # -- output and profiles -----------------------------------------------------------------
    def summary(self, yname=None, xname_fe=None, xname_re=None, title=None, alpha=0.05):
        """statsmodels' MixedLM summary (a ``summary2.Summary``)."""
        smry = summary2.Summary()
        sizes = self.fit_ext.estat_group().loc[self.names.group] if self.k_re or self.k_vc else None
        info = {"Model:": "MixedLM", "No. Observations:": str(self.nobs)}  # statsmodels' order
        if sizes is not None:
            info.update({"No. Groups:": str(int(sizes["n_groups"])), "Min. group size:": "%.0f" % sizes["min"],
                         "Max. group size:": "%.0f" % sizes["max"], "Mean group size:": "%.1f" % sizes["avg"]})
        info.update({"Dependent Variable:": yname or self.names.endog, "Method:": self.method, "Scale:": self.scale,
                     "Log-Likelihood:": self.llf, "Converged:": "Yes" if self.converged else "No"})
        smry.add_dict(info)
        smry.add_title(title or "Mixed Linear Model Regression Results")
        names = self.names.param_names()
        k = self.k_fe
        if xname_fe is not None:
            names[:k] = list(xname_fe)
        if xname_re is not None:
            names[k:] = list(xname_re)
        q = stats.norm.ppf(1 - alpha / 2)
        b, s = np.asarray(self.params), np.asarray(self.bse)
        tab = np.full((len(b), 6), np.nan)
        tab[:k, 0], tab[:k, 1] = b[:k], s[:k]
        tab[:k, 2] = b[:k] / s[:k]
        tab[:k, 3] = 2 * stats.norm.sf(np.abs(tab[:k, 2]))
        tab[:k, 4], tab[:k, 5] = b[:k] - q * s[:k], b[:k] + q * s[:k]
        tab[k:, 0] = b[k:] * self.scale
        tab[k:, 1] = s[k:] * np.sqrt(self.scale)
        df = pd.DataFrame(tab, index=names, columns=["Coef.", "Std.Err.", "z", "P>|z|", "[%s" % (alpha / 2),
                                                     "%s]" % (1 - alpha / 2)])
        smry.add_df(df.apply(lambda c: ["%.3f" % x if np.isfinite(x) else "" for x in c]), align="r")
        return smry

    def profile_re(self, re_ix, vtype, num_low=5, dist_low=1.0, num_high=5, dist_high=1.0, **fit_kwargs):
        """Profile likelihood of one variance parameter (statsmodels' ``profile_re``).

        ``vtype="re"``: the variance of random effect ``re_ix`` (an index into
        ``cov_re``); ``vtype="vc"``: the variance component named ``re_ix``.
        The relative variance (value / scale) is held at values from
        ``(value - dist_low) / scale`` to ``(value + dist_high) / scale``
        (``num_low`` and ``num_high`` steps) while the other parameters are
        re-estimated.  Returns an array with the variance (times that fit's
        scale) and the log-likelihood in its two columns.
        """
        if fit_kwargs:
            raise TypeError("profile_re() got unexpected argument(s): %s" % ", ".join(fit_kwargs))
        if vtype == "re":
            eff = self.names.re_ours[int(re_ix)]
            natural = (self.names.group, "var(%s)" % eff)
            value = float(np.asarray(self.cov_re)[int(re_ix), int(re_ix)])
        elif vtype == "vc":
            vc = next((v for v in self.names.vc if v.name == re_ix), None)
            if vc is None:
                raise ValueError("no variance component %r (have: %s)" % (re_ix, [v.name for v in self.names.vc]))
            natural, value = vc.natural, float(self.vcomp[list(self.names.vc).index(vc)])
        else:
            raise ValueError("vtype must be 're' or 'vc', got %r" % (vtype,))
        low, high, ru0 = (value - dist_low) / self.scale, (value + dist_high) / self.scale, value / self.scale
        if low <= 0:
            raise ValueError("dist_low is too large and would result in a negative variance. Try a smaller value.")
        grid = np.concatenate([np.linspace(low, ru0, num_low + 1), np.linspace(ru0, high, num_high + 1)[1:]])
        return np.array([profile_point(self.fit_ext, natural, x) for x in grid])


def profile_point(fit, natural: tuple[str, str], relative: float) -> tuple[float, float]:
    """(variance, llf) of the fit maximised with ``natural`` / sigma2 held at ``relative``."""
    ob = fit.model.objective
    k = list(ob.natural_names()).index(natural)
    bounds = [(lo, hi) for lo, hi in ob.theta_bounds()]
    theta0 = np.asarray(fit.opt.theta, dtype=float)

    def constraint(theta):
        return ob.natural_from_theta(theta, 1.0)[k] - relative

    res = optimize.minimize(ob.deviance, theta0, method="SLSQP", bounds=bounds,
                            constraints=[{"type": "eq", "fun": constraint}], options={"ftol": 1e-12, "maxiter": 500})
    sigma2 = ob.profile(res.x).sigma2
    return relative * sigma2, -0.5 * float(ob.deviance(res.x))
