"""scikit-learn estimator: :class:`MixedLMRegressor`.

A thin wrapper: ``fit`` builds a :class:`~mixedlm_ext.spec.model.ModelSpec`,
hands it with the data to :class:`~mixedlm_ext.model.MixedLMExt` and keeps
the results; ``predict`` evaluates the fixed part and adds the BLUPs
(conditional modes of the random effects) of the groups seen in training.
There is no likelihood code here.

Two ways to say the model:

* **formula mode** (``formula=`` an lme4 formula such as
  ``"reaction ~ days + (days | subject)"`` or a Stata ``mixed`` command):
  ``X`` is a DataFrame holding every variable of the formula, grouping
  columns included; the response is a column of ``X`` or is given as ``y``;
* **array mode** (``formula=None``): ``fit(X, y, groups=g)``; fixed effects
  on every column of ``X`` plus an intercept, the grouping levels given by
  ``groups`` (one column, or several nested ones) with random intercepts and
  random slopes on ``re_columns`` at the finest level; ``sample_weight`` as
  precision weights.
  ``groups`` reaches ``fit`` (and ``predict``/``score``) through
  scikit-learn's metadata routing inside ``cross_validate``, ``GridSearchCV``
  and ``Pipeline``.
"""
from __future__ import annotations

import inspect
import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils.validation import check_is_fitted, validate_data

from ..core.errors import NoGroupsWarning
from ..core.keywords import unknown_keyword_error
from ..model import MixedLMExt
from ..spec.model import COVARIANCE_TYPES, ModelSpec, REEquation, ResidualSpec, WeightSpec
from ..syntax.lme4 import normalize_covariance, parse_lme4
from ..syntax.stata import parse_stata
from .arrays import free_name, grouping_columns, internal_names, one_per_row, resolve_columns
from .random_part import RandomPart

__all__ = ["MixedLMRegressor", "NoGroupsWarning"]

# keyword arguments of MixedLMExt.fit that ``fit_options`` may carry
_FIT_KEYS = ("start_params", "log", "emlog", "em_iterations", "emonly", "maxiter", "level", "stream")


def _covariance_name(cov) -> str:
    """The covariance structure named by ``cov`` (abbreviations accepted), or ValueError."""
    if not isinstance(cov, str):
        raise ValueError("covariance must be one of %s, got %r" % (", ".join(COVARIANCE_TYPES), cov))
    try:
        return normalize_covariance(cov)
    except ValueError:
        raise ValueError("covariance must be one of %s, got %r"
                         % (", ".join(COVARIANCE_TYPES), cov)) from None


def _with_sample_weight(data: pd.DataFrame, sample_weight, column: str) -> tuple[pd.DataFrame, tuple]:
    """The data with the weights as column ``column`` (rows of weight 0 dropped) and the
    precision-weight specification."""
    w = one_per_row(sample_weight, len(data), "sample_weight").astype(float)
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("sample_weight must be finite and non-negative")
    if not np.any(w > 0):
        raise ValueError("sample_weight: every weight is zero, so no row is left to fit")
    data = data.assign(**{column: w})
    if np.any(w == 0):  # scikit-learn: a zero weight is the same as leaving the row out
        data = data.loc[w > 0]
    return data, (WeightSpec("precision", column),)


# ---------------------------------------------------------------------------
class MixedLMRegressor(RegressorMixin, BaseEstimator):
    """Linear mixed model as a scikit-learn regressor.

    Parameters
    ----------
    formula : str or None, default None
        Formula mode: an lme4-style formula (``"reaction ~ days + (days | subject)"``)
        or a Stata ``mixed`` command (``"reaction days || subject: days, cov(un)"``).
        ``X`` must then be a DataFrame holding every variable of the formula
        (grouping columns included); the response is a column of ``X`` or is
        passed as ``y``.  ``None`` selects array mode.
    re_columns : int, str or list of them, or None, default None
        Array mode: columns of ``X`` with a random slope, by index or by name
        (a name also matches a ``ColumnTransformer`` output name ``"step__name"``).
        ``None`` (or ``[]``): random intercept only.  Ignored in formula mode.
    covariance : str or dict, default "unstructured"
        Covariance of the random effects: ``"identity"``, ``"independent"``,
        ``"exchangeable"``, ``"unstructured"`` (Stata abbreviations accepted).
        Array mode: the structure of the (intercept, slopes) block.  Formula
        mode: a string replaces the structure of every term written with a
        single bar ``(x | g)`` (``||`` terms stay independent); a dict maps
        grouping labels to structures (lme4 front-end overrides).  With a
        single random effect the structure is always ``identity``.
    residual : str, dict, ResidualSpec or None, default None
        Residual structure within the groups (``None``: independent).  A
        string is the kind (``"exchangeable"``...), a dict gives the fields of
        :class:`~mixedlm_ext.ResidualSpec` (``kind``, ``order``, ``time``,
        ``by``); in array mode ``time``/``by`` name or index columns of ``X``.
    reml : bool, default True
        REML (True) or maximum likelihood.  In formula mode this also
        overrides a ``reml`` option of a Stata command.
    fit_options : dict or None, default None
        Keyword arguments for :meth:`MixedLMExt.fit` (``maxiter``,
        ``em_iterations``, ``log``, ``start_params``, ...).
    no_groups : {"warn", "linear", "raise"}, default "warn"
        Array mode, ``fit`` without ``groups``: fit the linear regression
        and warn (:class:`NoGroupsWarning`), fit it silently (``"linear"``:
        e.g. ``check_estimator(MixedLMRegressor(no_groups="linear"))``), or
        raise ``ValueError``.

    Attributes
    ----------
    results_ : MixedLMExtResults
        The full statsmodels-style results (``summary()``, ``fe_params``, ...).
    coef_ : ndarray
        Array mode: one slope per column of ``X`` (0 for a column omitted for
        collinearity).  Formula mode: the fixed effects other than ``_cons``,
        in the order of ``fe_names_``.
    intercept_ : float
        The fixed constant ``_cons`` (0 when the model has none).
    fe_names_ : list of str
        Names of the fixed effects in the results (``_cons`` last).
    random_effects_ : dict of DataFrame
        BLUPs per grouping level (label -> groups x effects); empty without
        random effects.
    n_groups_ : int
        Number of groups at the finest level with random effects (0 without).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` was a DataFrame with string column names.

    Notes
    -----
    *Groups and metadata routing.*  ``groups`` is requested by default by
    ``fit``, ``predict`` and ``score`` (no ``set_*_request`` call needed):
    with ``sklearn.set_config(enable_metadata_routing=True)``,
    ``cross_validate(est, X, y, cv=GroupKFold(5), params={"groups": g})``
    sends each fold's groups to the splitter, to ``fit`` and to ``score``;
    the same inside ``Pipeline`` and ``GridSearchCV``.  Opt out with
    ``set_fit_request(groups=False)`` etc.

    *Prediction.*  ``predict`` returns the fixed part plus the BLUPs of the
    groups seen in training; rows of groups not seen in training (every row
    of a ``GroupKFold`` test fold) get the population-level prediction (the
    fixed part).  In array mode the groups of the rows to predict are given
    as ``predict(X, groups=g)``; without them every row gets the
    population-level prediction.  In formula mode the grouping columns of
    ``X`` are used and a ``groups`` argument is ignored (in ``fit`` too).
    A string ``scoring=`` ("r2") in cross-validation calls ``predict``
    without metadata: use the default scoring (this ``score``) to get the
    BLUPs of seen groups in the test folds.

    *No groups.*  In array mode ``fit(X, y)`` without ``groups`` (what
    ``check_estimator`` does, or cross-validation without metadata routing)
    fits the same model with no random effects -- the linear regression, by
    REML or ML -- and warns with :class:`NoGroupsWarning` (see ``no_groups``).

    *Nested groups and weights.*  ``groups`` with several columns (coarsest
    first) gives nested levels with a random intercept each; the random
    slopes (``re_columns``) and ``covariance`` apply at the finest level.
    ``sample_weight`` are precision weights in ``fit`` and weight the R^2 of
    ``score``; like ``groups`` they are requested by default for routing.
    """

    # ``groups`` is requested by default (scikit-learn's default is "unset"):
    # with metadata routing enabled, groups passed to cross_validate /
    # GridSearchCV / Pipeline reach fit, predict and score without
    # set_*_request calls.  set_fit_request(groups=False) etc. still opt out.
    __metadata_request__fit = {"groups": True, "sample_weight": True}
    __metadata_request__predict = {"groups": True}
    __metadata_request__score = {"groups": True, "sample_weight": True}

    def __new__(cls, *args, **kwargs):
        # refuse a misspelled parameter with the nearest valid one (scikit-learn
        # reads the parameters from __init__'s signature, so they stay explicit there)
        valid = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        for name in kwargs:
            if name not in valid:
                raise unknown_keyword_error(name, valid, "%s()" % cls.__name__)
        return super().__new__(cls)

    def __init__(self, formula=None, re_columns=None, covariance="unstructured", residual=None,
                 reml=True, fit_options=None, no_groups="warn"):
        self.formula = formula
        self.re_columns = re_columns
        self.covariance = covariance
        self.residual = residual
        self.reml = reml
        self.fit_options = fit_options
        self.no_groups = no_groups

    # -- parameter handling ---------------------------------------------------
    def _fit_kwargs(self) -> dict:
        opts = {} if self.fit_options is None else self.fit_options
        if not isinstance(opts, dict):
            raise ValueError("fit_options must be a dict or None, got %s" % type(opts).__name__)
        unknown = [k for k in opts if k not in _FIT_KEYS]
        if unknown:
            raise ValueError("unknown fit option(s) %s; allowed: %s"
                             % (", ".join(map(repr, unknown)), ", ".join(_FIT_KEYS)))
        return dict(opts)

    def _residual_spec(self, column) -> ResidualSpec:
        """``residual`` as a ResidualSpec; ``column`` maps a time/by reference to a data column."""
        r = self.residual
        if r is None:
            return ResidualSpec()
        if isinstance(r, str):
            return ResidualSpec(kind=r)
        if isinstance(r, ResidualSpec):
            spec = r
        elif isinstance(r, dict):
            unknown = set(r) - {"kind", "order", "time", "by"}
            if unknown:
                raise ValueError("unknown residual field(s): %s" % ", ".join(sorted(map(str, unknown))))
            spec = ResidualSpec(**r)
        else:
            raise ValueError("residual must be None, a str, a dict or a ResidualSpec, got %r" % (r,))
        return replace(spec,
                       time=None if spec.time is None else column(spec.time),
                       by=None if spec.by is None else column(spec.by))

    def _check_reml(self) -> bool:
        if not isinstance(self.reml, (bool, np.bool_)):
            raise ValueError("reml must be True or False, got %r" % (self.reml,))
        return bool(self.reml)

    # -- formula mode ---------------------------------------------------------
    def _formula_spec(self) -> ModelSpec:
        f = self.formula
        if not isinstance(f, str):
            raise ValueError("formula must be a string or None, got %r" % (f,))
        reml = self._check_reml()
        cov = self.covariance
        if "~" in f:
            spec = parse_lme4(f, reml=reml, covariance=cov if isinstance(cov, dict) else None)
        else:
            spec = parse_stata(f).with_options(reml=reml)
            if isinstance(cov, dict):
                labels = {eq.level_name for eq in spec.random}
                bad = sorted(set(cov) - labels)
                if bad:
                    raise ValueError("covariance given for unknown level %r (levels: %s)"
                                     % (bad[0], ", ".join(sorted(labels))))
                spec = spec.with_options(random=tuple(
                    replace(eq, covariance=normalize_covariance(cov[eq.level_name]))
                    if eq.level_name in cov and eq.factor is None else eq for eq in spec.random))
        if isinstance(cov, str):
            c = _covariance_name(cov)
            spec = spec.with_options(random=tuple(
                replace(eq, covariance=c) if eq.covariance == "unstructured" else eq for eq in spec.random))
        elif not isinstance(cov, dict):
            raise ValueError("covariance must be a str or a dict in formula mode, got %r" % (cov,))
        if self.residual is not None:
            spec = spec.with_options(residual=self._residual_spec(lambda c: c))
        return spec

    def _fit_formula(self, X, y, groups, sample_weight=None):
        # groups (e.g. routed from a GroupKFold cross-validation) are ignored:
        # the formula's grouping columns in X define the groups
        if not isinstance(X, pd.DataFrame):
            raise TypeError("formula mode needs X as a pandas DataFrame holding the formula's variables, "
                            "got %s" % type(X).__name__)
        spec = self._formula_spec()
        data = X
        if y is not None:
            yv = np.asarray(y)
            if yv.ndim == 2 and yv.shape[1] == 1:
                yv = yv[:, 0]
            if yv.ndim != 1 or len(yv) != len(X):
                raise ValueError("y has shape %s but X has %d rows" % (np.shape(y), len(X)))
            data = X.copy()
            data[spec.response] = yv
        elif spec.response not in X.columns:
            raise ValueError("the response %r is neither a column of X nor given as y" % spec.response)
        feats = [c for c in X.columns if c != spec.response]
        self.n_features_in_ = len(feats)
        if all(isinstance(c, str) for c in feats):
            self.feature_names_in_ = np.asarray(feats, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        if sample_weight is not None:
            w_col = free_name(["sample_weight"], set(data.columns))
            data, weights = _with_sample_weight(data, sample_weight, w_col)
            spec = spec.with_options(weights=weights)
        res = MixedLMExt(spec, data).fit(**self._fit_kwargs())
        fe = res.fe_params
        self._columns = None
        self.fe_names_ = list(fe.index)
        self.coef_ = np.asarray([fe[n] for n in fe.index if n != "_cons"], dtype=float)
        self.intercept_ = float(fe["_cons"]) if "_cons" in fe.index else 0.0
        return res

    # -- array mode -----------------------------------------------------------
    def _resolve_columns(self, refs, what: str) -> list[int]:
        """Indices of the columns of X named or indexed by ``refs``."""
        return resolve_columns(refs, getattr(self, "feature_names_in_", None), self.n_features_in_, what)

    def _no_groups(self) -> None:
        """What ``fit`` without ``groups`` does (``no_groups``): warn, stay silent or refuse."""
        if self.no_groups not in ("warn", "linear", "raise"):
            raise ValueError("no_groups must be 'warn', 'linear' or 'raise', got %r" % (self.no_groups,))
        message = ("MixedLMRegressor.fit got no groups: fitting the linear regression without random effects. "
                   "Pass fit(X, y, groups=g); inside cross_validate/GridSearchCV/Pipeline enable "
                   "sklearn.set_config(enable_metadata_routing=True) and pass params={'groups': g}.")
        if self.no_groups == "raise":
            raise ValueError(message.replace("fitting the linear regression without random effects. ", ""))
        if self.no_groups == "warn":
            warnings.warn(message, NoGroupsWarning, stacklevel=4)

    def _random_equations(self, g_cols: list[str], cols: list[str], re_idx: list[int]) -> tuple:
        """Nested levels (first grouping column coarsest): random intercepts, and the
        random slopes on ``re_columns`` at the finest level."""
        cov = _covariance_name(self.covariance)
        eqs = [REEquation(group=tuple(g_cols[:k + 1]), label=g) for k, g in enumerate(g_cols[:-1])]
        return tuple(eqs) + (REEquation(group=tuple(g_cols), columns=tuple(cols[j] for j in re_idx), constant=True,
                                        covariance=cov, label=g_cols[-1]),)

    def _fit_array(self, X, y, groups, sample_weight=None):
        y_name = getattr(y, "name", None)
        X, y = validate_data(self, X, y, y_numeric=True, ensure_min_samples=2, dtype=np.float64)
        n, p = X.shape
        reml = self._check_reml()
        re_idx = self._resolve_columns(self.re_columns, "re_columns")
        levels, g_names = grouping_columns(groups, n) if groups is not None else ([], [])
        fnames = list(getattr(self, "feature_names_in_", ["x%d" % j for j in range(p)]))
        cols, y_col, g_cols, w_col = internal_names(fnames, y_name, g_names)
        data = pd.DataFrame(X, columns=cols)
        data[y_col] = y
        random = ()
        if groups is not None:
            for g_col, g in zip(g_cols, levels):
                if pd.isna(g).any():
                    raise ValueError("groups contains missing values")
                data[g_col] = g
            random = self._random_equations(g_cols, cols, re_idx)
        else:
            _covariance_name(self.covariance)
            self._no_groups()
        weights = ()
        if sample_weight is not None:
            data, weights = _with_sample_weight(data, sample_weight, w_col)

        def column(ref):
            return cols[self._resolve_columns(ref, "residual")[0]]

        spec = ModelSpec(response=y_col, fixed=" + ".join(cols), constant=True, random=random,
                         residual=self._residual_spec(column), reml=reml, weights=weights)
        with warnings.catch_warnings():
            # collinear columns are reported as coef_ == 0 (Stata's "omitted")
            warnings.filterwarnings("ignore", message="note: .* omitted because of collinearity")
            res = MixedLMExt(spec, data).fit(**self._fit_kwargs())
        fe = res.fe_params
        self._columns = cols
        self._group_columns = g_cols if groups is not None else None
        self.fe_names_ = list(fe.index)
        self.coef_ = np.asarray([float(fe[c]) if c in fe.index else 0.0 for c in cols])
        self.intercept_ = float(fe["_cons"])
        return res

    # -- public API -----------------------------------------------------------
    def fit(self, X, y=None, groups=None, sample_weight=None):
        """Fit the mixed model.

        Parameters
        ----------
        X : array-like or DataFrame, shape (n_samples, n_features)
            Array mode: the fixed-effects covariates.  Formula mode: a
            DataFrame with the formula's variables.
        y : array-like, shape (n_samples,), optional in formula mode
        groups : array-like, shape (n_samples,) or (n_samples, k), optional
            Array mode: the group of each row (routed as metadata ``groups``);
            ``k`` columns (an array or DataFrame) are ``k`` nested levels, the
            first coarsest.  Without it the model has no random effects (see
            Notes).  Formula mode: ignored.
        sample_weight : array-like, shape (n_samples,), optional
            Precision weights (lme4's ``weights=``): row ``i`` has residual
            variance ``sigma2 / w_i``; a zero weight drops the row (without
            random effects an integer weight gives the same fit as repeating
            the row).  Routed as metadata ``sample_weight``.

        Returns
        -------
        self
        """
        if self.formula is None:
            res = self._fit_array(X, y, groups, sample_weight)
        else:
            res = self._fit_formula(X, y, groups, sample_weight)
        self.results_ = res
        self._random = RandomPart.of(res)
        self.random_effects_ = self._random.frames
        re_levels = res.model.design.re_levels()  # finest first
        self.n_groups_ = int(re_levels[0].n_groups) if re_levels else 0
        return self

    def _fixed_part(self, data: pd.DataFrame) -> np.ndarray:
        """``X beta_hat`` of new data, ``X`` built as in the fit (the training data's coding)."""
        X = self.results_.model.design.fixed.matrix(data)
        if np.isnan(X).any():
            raise ValueError("cannot build the fixed part for prediction: X has missing values in the "
                             "fixed-effects variables")
        return X @ self.results_.fe_params.to_numpy(dtype=float)

    def predict(self, X, groups=None):
        """Fixed part plus the BLUPs of groups seen in training.

        Parameters
        ----------
        X : array-like or DataFrame
        groups : array-like, optional
            Array mode: the group of each row; rows whose group was not seen
            in training, and every row when ``groups`` is None, get the
            population-level prediction.  Formula mode: ignored (the
            grouping columns of ``X`` are used).

        Returns
        -------
        ndarray, shape (n_samples,)
        """
        check_is_fitted(self, "results_")
        if self.formula is not None:
            if not isinstance(X, pd.DataFrame):
                raise TypeError("formula mode needs X as a pandas DataFrame, got %s" % type(X).__name__)
            pred = self._fixed_part(X)
            missing = [c for c in self._random.columns if c not in X.columns]
            if self._random.has_terms and missing:
                raise ValueError("X lacks column(s) %s needed for the random part" % missing)
            return pred + self._random.contribution(X) if self._random.has_terms else pred
        X = validate_data(self, X, reset=False, dtype=np.float64)
        data = pd.DataFrame(X, columns=self._columns)
        pred = self._fixed_part(data)
        if groups is None or not self._random.has_terms:
            return pred
        levels, _ = grouping_columns(groups, X.shape[0])
        if len(levels) != len(self._group_columns):
            raise ValueError("groups has %d column(s); the model was fitted with %d grouping level(s)"
                             % (len(levels), len(self._group_columns)))
        for g_col, g in zip(self._group_columns, levels):
            data[g_col] = g
        return pred + self._random.contribution(data)

    def score(self, X, y, sample_weight=None, groups=None):
        """R^2 of :meth:`predict` (``groups`` as in :meth:`predict`)."""
        return r2_score(y, self.predict(X, groups=groups), sample_weight=sample_weight)


# the constructor's signature, for inspect.signature(MixedLMRegressor) (the
# keyword check in __new__ would otherwise hide it)
MixedLMRegressor.__signature__ = inspect.signature(MixedLMRegressor.__init__).replace(
    parameters=list(inspect.signature(MixedLMRegressor.__init__).parameters.values())[1:])
