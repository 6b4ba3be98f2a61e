"""A drop-in for statsmodels' ``MixedLM``: ``import mixedlm_ext as mx`` in place of ``statsmodels.api``.

``mx.MixedLM(endog, exog, groups, exog_re=None, exog_vc=None)`` and
``mx.MixedLM.from_formula(formula, data, re_formula=None, vc_formula=None,
groups=...)`` (also ``mx.mixedlm``, statsmodels.formula.api's name) take
statsmodels' arguments; ``fit(reml=True, method=..., free=...)`` returns
results under statsmodels' names and metrics
(:class:`~mixedlm_ext.results.statsmodels_view.StatsmodelsResults`:
``params``, ``bse``, ``fe_params``, ``cov_re``, ``vcomp``, ``scale``,
``random_effects``, ``random_effects_cov``, ``bse_re``, ``profile_re``,
``summary()``).  The model is fitted by this package (EM, L-BFGS-B and
Newton-Raphson with a checked optimum); the result of this package's own
fit is ``results.fit_ext`` (Stata's output, postestimation).

As in statsmodels: ``re_formula=None`` is a random intercept per group,
unless ``vc_formula`` is given (then there is none: pass
``re_formula="1"``); a text column in ``vc_formula`` needs no ``C()``;
``exog_vc`` may be a ``VCSpec`` (``names``, ``colnames``, ``mats``) or the
deprecated dict of dicts, each matrix indicators of sub-groups or one
column (a slope).  ``free`` accepts the pattern of independent random
effects (``MixedLMParams.from_components(np.ones(k_fe), np.eye(k_re))``).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Optional

import numpy as np
import pandas as pd
import patsy

from .core.errors import warn_user
from .core.keywords import check_keywords
from .model import MixedLMExt, categorical_columns
from .results.statsmodels_view import StatsmodelsNames, StatsmodelsResults, VCName
from .spec.model import ModelSpec, REEquation
from .syntax.statsmodels import spec_from_statsmodels

STATSMODELS_METHODS = ("bfgs", "lbfgs", "l-bfgs-b", "cg", "nm", "powell", "newton", "ncg", "basinhopping",
                       "minimize")


@dataclass
class MixedLMParams:
    """statsmodels' ``MixedLMParams`` as far as ``fit(free=...)`` reads it."""

    fe_params: Optional[np.ndarray] = None
    cov_re: Optional[np.ndarray] = None
    vcomp: Optional[np.ndarray] = None

    @classmethod
    def from_components(cls, fe_params=None, cov_re=None, cov_re_sqrt=None, vcomp=None) -> "MixedLMParams":
        if cov_re is None and cov_re_sqrt is not None:
            cov_re = np.dot(cov_re_sqrt, np.transpose(cov_re_sqrt))
        return cls(None if fe_params is None else np.asarray(fe_params),
                   None if cov_re is None else np.asarray(cov_re), None if vcomp is None else np.asarray(vcomp))


def _names(x, prefix: str, k: int) -> list[str]:
    """Column names of an array argument as statsmodels makes them."""
    if isinstance(x, pd.DataFrame):
        return [str(c) for c in x.columns]
    if isinstance(x, pd.Series) and x.name is not None:
        return [str(x.name)]
    if isinstance(x, list) and all(isinstance(v, str) for v in x):
        return list(x)
    a = np.asarray(x, dtype=float).reshape(len(x), -1)
    if prefix == "x":  # statsmodels: 'const' for a constant column, x1, x2 ... for the others
        const = [j for j in range(k) if np.ptp(a[:, j]) == 0 and a[0, j] != 0]
        out, n = [], 0
        for j in range(k):
            if j in const[:1]:
                out.append("const")
            else:
                n += 1
                out.append("x%d" % n)
        return out
    return ["%s%d" % (prefix, j + 1) for j in range(k)]


def _matrix(x, n: int) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    return a.reshape(n, -1)


class _ArrayProblem:
    """The frame and spec of an array-mode model (``MixedLM(endog, exog, groups, ...)``)."""

    def __init__(self, endog, exog, groups, exog_re, exog_vc):
        y = np.asarray(endog, dtype=float).ravel()
        n = len(y)
        X = _matrix(exog, n)
        self.index = endog.index if isinstance(endog, (pd.Series, pd.DataFrame)) else pd.RangeIndex(n)
        self.pandas = isinstance(endog, (pd.Series, pd.DataFrame)) or isinstance(exog, (pd.Series, pd.DataFrame))
        cols = {"_y": y, "_g": np.asarray(groups)}
        fe_names = _names(exog, "x", X.shape[1])
        for j in range(X.shape[1]):
            cols["_x%d" % j] = X[:, j]
        self.frame = pd.DataFrame(cols, index=self.index)
        self.fe = fe_names
        self.fe_ours = ["_x%d" % j for j in range(X.shape[1])]
        eq, self.re, self.re_ours = self._re_equation(exog_re, n, exog_vc is None)
        self.vc, vc_eqs = self._vc_equations(exog_vc, groups)
        name = endog.name if isinstance(endog, pd.Series) and endog.name is not None else "y"
        self.endog = str(name)
        self.spec = ModelSpec(response="_y", fixed=" + ".join(self.fe_ours), constant=False,
                              random=(eq,) + tuple(vc_eqs), reml=True)

    def _re_equation(self, exog_re, n: int, default_intercept: bool):
        if exog_re is None:
            if not default_intercept:
                return REEquation(group=("_g",), constant=False, label="Group"), [], []
            return REEquation(group=("_g",), label="Group"), ["Group Var"], ["_cons"]
        Z = _matrix(exog_re, n)
        names = _names(exog_re, "x_re", Z.shape[1])
        ours, columns, constant = [], [], False
        for j in range(Z.shape[1]):
            if np.all(Z[:, j] == 1.0) and not constant:
                ours.append("_cons")
                constant = True
            else:
                self.frame["_z%d" % j] = Z[:, j]
                columns.append("_z%d" % j)
                ours.append("_z%d" % j)
        cov = "unstructured" if Z.shape[1] > 1 else "identity"
        return REEquation(group=("_g",), columns=tuple(columns), constant=constant, covariance=cov,
                          label="Group"), names, ours

    def _vc_equations(self, exog_vc, groups):
        if exog_vc is None:
            return [], []
        if isinstance(exog_vc, dict):
            warnings.warn("Using deprecated variance components format", FutureWarning, stacklevel=4)
            labels = sorted(set(np.asarray(groups).tolist()))
            names = sorted(exog_vc)
            mats = [[np.asarray(exog_vc[k][g]) for g in labels] for k in names]
            colnames = [[[str(j) for j in range(m.shape[1])] for m in mk] for mk in mats]
        else:
            names, mats, colnames = list(exog_vc.names), exog_vc.mats, exog_vc.colnames
        g = np.asarray(groups)
        labels = sorted(set(g.tolist()))
        rows = {lab: np.flatnonzero(g == lab) for lab in labels}
        vcs, eqs = [], []
        for k, name in enumerate(names):
            vc, eq = self._one_vc(k, name, [np.asarray(m) for m in mats[k]], colnames[k], labels, rows)
            vcs.append(vc)
            eqs.append(eq)
        return vcs, eqs

    def _one_vc(self, k, name, mats, colnames, labels, rows):
        col = "_v%d" % k
        indicator = all(m.size == 0 or (set(np.unique(m)) <= {0.0, 1.0} and np.all(m.sum(axis=1) == 1))
                        for m in mats)
        if indicator:
            values = np.empty(len(self.frame), dtype=object)
            lookup = {}
            for lab, m, cn in zip(labels, mats, colnames):
                which = np.argmax(m, axis=1)
                values[rows[lab]] = [str(cn[j]) for j in which]
                lookup.update({(lab, str(c)): str(c) for c in cn})
            self.frame[col] = values
            return (VCName(name, name, (name, "var(_cons)"), lookup),
                    REEquation(group=("_g", col), label=name))
        if all(m.shape[1] == 1 for m in mats):
            values = np.empty(len(self.frame))
            for lab, m in zip(labels, mats):
                values[rows[lab]] = m[:, 0]
            self.frame[col] = values
            return (VCName(name, "Group", (name, "var(%s)" % col), str(colnames[0][0]), effect=col),
                    REEquation(group=("_g",), columns=(col,), constant=False, label=name))
        raise NotImplementedError("exog_vc[%r]: only indicator matrices (sub-groups) or one column per group "
                                  "(a random slope) are supported" % name)


class MixedLM:
    """statsmodels' ``MixedLM`` (array and formula interfaces), fitted by this package."""

    def __init__(self, endog, exog, groups, exog_re=None, exog_vc=None, use_sqrt=True, missing="none", **kwargs):
        check_keywords(kwargs, (), "MixedLM()")
        if missing not in ("none", "drop", "raise"):
            raise ValueError("missing must be 'none', 'drop' or 'raise', got %r" % (missing,))
        del use_sqrt  # statsmodels' optimisation metric; the fit here has its own
        p = _ArrayProblem(endog, exog, groups, exog_re, exog_vc)
        names = StatsmodelsNames(p.endog, tuple(p.fe), tuple(p.fe_ours), "Group", tuple(p.re), tuple(p.re_ours),
                                 tuple(p.vc), p.pandas)
        self._setup(MixedLMExt(p.spec, p.frame), names, "_g")

    def _setup(self, ext: MixedLMExt, names: StatsmodelsNames, groups_column: str) -> None:
        self.ext = ext
        self.names = names
        self.formula = ext.formula
        self.groups_column = groups_column
        d = self.ext.design
        self.endog_names, self.exog_names = names.endog, list(names.fe)
        self.exog_re_names = list(names.re)
        self.k_fe, self.k_re, self.k_vc = len(names.fe), len(names.re), len(names.vc)
        self.k_re2 = self.k_re * (self.k_re + 1) // 2
        self.nobs = d.n
        self.group_labels = sorted(pd.unique(d.data[groups_column]).tolist())
        self.n_groups = len(self.group_labels)
        self.endog = d.y
        self.exog = pd.DataFrame(d.X, columns=d.fe_names)[list(names.fe_ours)].to_numpy()

    @classmethod
    def from_formula(cls, formula, data, re_formula=None, vc_formula=None, subset=None, use_sparse=False,
                     missing="none", *args, **kwargs) -> "MixedLM":
        """statsmodels' ``MixedLM.from_formula``; ``groups`` (a column name or one label per row) is required."""
        if "groups" not in kwargs:
            raise AttributeError("'groups' is a required keyword argument in MixedLM.from_formula")
        groups = kwargs.pop("groups")
        kwargs.pop("eval_env", None)
        check_keywords(kwargs, (), "MixedLM.from_formula()")
        if args:
            raise TypeError("MixedLM.from_formula() takes no further positional arguments")
        del use_sparse
        group_name, column = (groups, groups) if isinstance(groups, str) else ("Group", "_groups")
        if not isinstance(groups, str):
            data = data.assign(_groups=np.asarray(groups))
        if subset is not None:  # the groups given per row of data follow the subset
            data = data.loc[subset]
        re_formula = "0" if re_formula is None and vc_formula else re_formula
        spec = spec_from_statsmodels(formula, column, re_formula=re_formula, vc_formula=vc_formula,
                                     categorical=categorical_columns(data))
        spec = spec.with_options(random=(replace(spec.random[0], label=group_name),) + spec.random[1:])
        obj = cls.__new__(cls)
        with warnings.catch_warnings():
            if missing == "drop":
                warnings.filterwarnings("ignore", message=".*with missing values in the model's variables dropped")
            ext = MixedLMExt(spec, data, formula=formula)
        obj._setup(ext, _formula_names(ext, data, group_name, re_formula, vc_formula or {}), column)
        return obj

    def fit(self, start_params=None, reml=True, niter_sa=0, do_cg=True, fe_pen=None, cov_pen=None, free=None,
            full_output=False, method=None, **fit_kwargs) -> StatsmodelsResults:
        """statsmodels' ``fit``: REML by default; ``method`` names statsmodels' optimisers
        (the fit here always runs EM, L-BFGS-B and Newton-Raphson and checks the optimum)."""
        del niter_sa  # ignored by statsmodels too
        if start_params is not None:
            raise NotImplementedError("start_params in statsmodels' packed parameterisation are not supported")
        if fe_pen is not None or cov_pen is not None:
            raise NotImplementedError("penalised fits (fe_pen, cov_pen) are not supported")
        if not do_cg:
            raise NotImplementedError("do_cg=False (no optimisation) is not supported")
        check_keywords(fit_kwargs, ("maxiter",), "MixedLM.fit()")
        _check_methods(method)
        ext = self.ext if free is None else self._with_free(free)
        res = ext.fit(reml=bool(reml), maxiter=fit_kwargs.get("maxiter"))
        out = StatsmodelsResults(self, res, self.names)
        if full_output:
            out.hist = list(res.opt.history)
        return out

    def _with_free(self, free) -> MixedLMExt:
        """The model with independent random effects, for ``free`` with a diagonal ``cov_re``."""
        fe = getattr(free, "fe_params", None)
        vc = getattr(free, "vcomp", None)
        pattern = np.asarray(getattr(free, "cov_re", np.ones((self.k_re, self.k_re))))
        if (fe is not None and not np.all(np.asarray(fe) == 1)) or (vc is not None and len(vc)
                                                                   and not np.all(np.asarray(vc) == 1)):
            raise NotImplementedError("free: only the pattern of the random-effects covariance can be set "
                                      "(fixed effects and variance components stay free)")
        if pattern.shape != (self.k_re, self.k_re):
            raise ValueError("free.cov_re must be %d x %d" % (self.k_re, self.k_re))
        off = pattern[~np.eye(self.k_re, dtype=bool)]
        if np.all(off == 1):
            return self.ext
        if not np.all(off == 0) or not np.all(np.diag(pattern) == 1):
            raise NotImplementedError("free.cov_re: only a full (correlated) or diagonal (independent) pattern "
                                      "is supported")
        spec = self.ext.spec
        eq = replace(spec.random[0], covariance="independent")
        return MixedLMExt(spec.with_options(random=(eq,) + spec.random[1:]), self.ext.frame, formula=self.formula)


def _check_methods(method) -> None:
    methods = [method] if isinstance(method, str) else list(method or [])
    unknown = [m for m in methods if str(m).lower() not in STATSMODELS_METHODS]
    if unknown:
        raise ValueError("method=%r is not one of statsmodels' optimisers (%s)" % (unknown[0],
                                                                                ", ".join(STATSMODELS_METHODS)))
    other = [m for m in methods if str(m).lower() not in ("lbfgs", "l-bfgs-b")]
    if other:
        warn_user("method=%r: this package always fits by EM, L-BFGS-B and Newton-Raphson and checks the "
                  "optimum; the estimates do not depend on the optimiser named" % (other[0],))


def _formula_names(ext: MixedLMExt, data: pd.DataFrame, group_name: str, re_formula,
                   vc_formula: dict) -> StatsmodelsNames:
    """statsmodels' names of a formula model (patsy's column names, statsmodels' order)."""
    part = ext.design.fixed
    patsy_names = part.design_info.column_names
    fe = sorted(zip(part.columns, part.names))
    re_eq = ext.spec.random[0]
    re, re_ours = [], []
    if re_formula is None or str(re_formula).strip().lstrip("~").strip() == "1":
        if re_eq.constant:
            re, re_ours = [group_name], ["_cons"]
    else:
        head = data.iloc[:1]
        for col in re_eq.columns:
            re_ours.append(col)
            re.append(patsy.dmatrix("0 + " + col, head).design_info.column_names[0])
        if re_eq.constant:
            re, re_ours = [group_name] + re, ["_cons"] + re_ours
    vcs = []
    for eq in ext.spec.random[1:]:
        text = vc_formula[eq.label].replace(" ", "")
        if len(eq.group) == 1:  # a slope
            vcs.append(VCName(eq.label, group_name, (eq.label, "var(%s)" % eq.columns[0]), eq.columns[0],
                              effect=eq.columns[0]))
            continue
        var = eq.group[-1]
        template = ("C(%s)[{}]" if "C(" in text else "%s[{}]") % var
        if eq.columns:
            template += ":" + eq.columns[0]
        vcs.append(VCName(eq.label, eq.label, (eq.label, "var(%s)" % (eq.columns[0] if eq.columns else "_cons")),
                          template))
    return StatsmodelsNames(ext.spec.response, tuple(patsy_names[i] for i, _ in fe), tuple(n for _, n in fe),
                            group_name, tuple(re), tuple(re_ours), tuple(vcs), True)


mixedlm = MixedLM.from_formula
