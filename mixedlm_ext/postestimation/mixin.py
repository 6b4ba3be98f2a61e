"""Postestimation on fitted results: BLUPs, predictions, estat commands.

:class:`PostestimationMixin` is a base class of ``MixedLMExtResults``; it
gives the results Stata's ``predict`` and ``estat`` after ``mixed``:

* :attr:`~PostestimationMixin.random_effects`,
  :attr:`~PostestimationMixin.random_effects_se` and
  :meth:`~PostestimationMixin.random_effects_cov` -- the BLUPs of every
  random-effects term and their conditional (lme4 ``condVar``) or
  comparative (prediction-error, Stata ``reses``) variances;
* :meth:`~PostestimationMixin.predict` -- ``xb``, ``stdp``, ``fitted``,
  ``residuals``, ``rstandard``, ``reffects``, ``reses``, on the estimation
  sample or on new data;
* ``estat_recovariance``, ``estat_icc``, ``estat_wcorrelation``,
  ``estat_sd``, ``estat_ic`` (``estat_group`` lives on the results class);
* plots (``plot_caterpillar``, ``plot_spaghetti``, ``plot_residuals``,
  ``plot_qq``), drawn by :mod:`mixedlm_ext._plots` with matplotlib imported
  only when a plot is asked for.

How the BLUPs are computed
--------------------------
The engine eliminates the random effects level by level (finest first) in
the spherical metric ``b = Lambda u``.  :func:`mixedlm_ext._em.conditional_moments`
returns, per level, ``u_hat`` and the covariance ``P^{-1}`` (units of
``sigma2``) of each group's ``u`` given ``y`` with ``beta`` held at its
estimate, where ``P = Lambda' Z' R^{-1} Z Lambda + I`` (``Z`` whitened by the
residual correlation).  So

* BLUP: ``b_hat = Lambda u_hat``;
* conditional covariance (``kind="conditional"``):
  ``sigma2 * Lambda P^{-1} Lambda'`` -- lme4's ``ranef(condVar=TRUE)``;
* comparative covariance (``kind="comparative"``, Henderson's prediction
  error variance ``Var(b_hat - b)``): the conditional covariance plus
  ``K Var(beta_hat) K'`` where ``K = d b_hat / d beta``.  For a two-level
  model this is Stata's
  ``Sigma - Sigma Z_j' (V_j^{-1} - V_j^{-1} X_j (X'V^{-1}X)^{-1} X_j' V_j^{-1}) Z_j Sigma``;
  ``predict(kind="reses")`` returns its square root, as Stata does.

``K`` comes from the engine's back-substitution, which is linear in
``beta``: one solve per fixed effect, no dense matrices.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple, Optional

import numpy as np
import pandas as pd
from scipy import stats

from ..core.linalg import block_diag
from ..design.random import base_matrix
from .blups import level_blups

_KINDS = ("xb", "stdp", "fitted", "residuals", "rstandard", "reffects", "reses")


# ---------------------------------------------------------------------------
# internal structures
# ---------------------------------------------------------------------------
@dataclass
class _Term:
    """A set of random effects reported together (one DataFrame).

    Non-expanded blocks of a level form one term named by the level; every
    expanded block (Stata's ``R.x``, crossed lme4 terms) is its own term in
    long format (one row per group and factor level).
    """

    key: str
    level_index: int
    blocks: list  # (Block, column offset within the level)
    expanded: bool
    effects: list  # column names


class WCorrelation(NamedTuple):
    """Result of :meth:`PostestimationMixin.estat_wcorrelation`."""

    covariance: pd.DataFrame
    correlation: pd.DataFrame
    group: object  # the top-level cluster shown


def _cov2corr(C: np.ndarray) -> np.ndarray:
    sd = np.sqrt(np.clip(np.diag(C), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        R = C / np.outer(sd, sd)
    R[~np.isfinite(R)] = np.nan
    np.fill_diagonal(R, np.where(sd > 0, 1.0, np.nan))
    return R


def _key_index(keys: Optional[pd.DataFrame], path: tuple) -> pd.Index:
    """Index of the groups of a level from its ``keys`` frame."""
    if not path or keys is None or keys.shape[1] == 0:
        return pd.Index(["_all"], name="_all")
    if len(path) == 1:
        return pd.Index(keys[path[0]].to_numpy(), name=path[0])
    return pd.MultiIndex.from_frame(keys[list(path)])


def _lookup(index: pd.Index, frame: pd.DataFrame, cols: tuple) -> np.ndarray:
    """Position of each row of ``frame[cols]`` in ``index`` (-1 when absent or missing)."""
    sub = frame[list(cols)]
    missing = sub.isna().any(axis=1).to_numpy()
    if len(cols) == 1:
        idx = index.get_indexer(sub[cols[0]].to_numpy())
    else:
        idx = index.get_indexer(pd.MultiIndex.from_frame(sub))
    idx = np.asarray(idx, dtype=np.intp)
    idx[missing] = -1
    return idx


def _expand_index(levels: list, names: tuple) -> pd.Index:
    if len(names) == 1:
        vals = [lv[0] if isinstance(lv, tuple) and len(lv) == 1 else lv for lv in levels]
        return pd.Index(vals, name=names[0])
    return pd.MultiIndex.from_tuples([tuple(lv) for lv in levels], names=list(names))


# ---------------------------------------------------------------------------
class PostestimationMixin:
    """Stata's ``predict`` and ``estat`` after ``mixed``.

    Every method works on the fitted results; the wrapper returned by
    :func:`mixedlm_ext.mixed` forwards them.
    """

    # -- machinery ---------------------------------------------------------------
    @property
    def _pe_design(self):
        return self.model.design

    @property
    def _pe_theta(self) -> np.ndarray:
        return np.asarray(self.opt.theta, dtype=float)

    @property
    def _pe_rho(self) -> np.ndarray:
        return self.model.objective.split_theta(self._pe_theta)[1]

    @cached_property
    def _pe_terms(self) -> list:
        d = self._pe_design
        terms: list[_Term] = []
        for li, lvl in enumerate(d.levels):
            if lvl.q == 0:
                continue
            plain, off = [], 0
            for blk in lvl.blocks:
                if blk.expand_levels is None:
                    plain.append((blk, off))
                else:
                    eq = blk.equation
                    if eq.factor is not None:
                        key = "R.%s" % eq.factor if not lvl.path else "%s:R.%s" % (lvl.label, eq.factor)
                        effects = ["R.%s" % eq.factor]
                    else:
                        key = blk.label
                        effects = list(blk.effects)
                    terms.append(_Term(key, li, [(blk, off)], True, effects))
                off += blk.q
            if plain:
                effects = [e for blk, _ in plain for e in blk.effects]
                terms.append(_Term(lvl.label, li, plain, False, effects))
        # coarsest level first, then in equation order
        terms.sort(key=lambda t: t.level_index)
        seen: dict[str, int] = {}
        for t in terms:  # make keys unique
            if t.key in seen:
                seen[t.key] += 1
                t.key = "%s#%d" % (t.key, seen[t.key])
            else:
                seen[t.key] = 1
        return terms

    def _pe_term(self, key: str) -> _Term:
        for t in self._pe_terms:
            if t.key == key:
                return t
        raise KeyError("no random-effects term %r; available: %s"
                       % (key, ", ".join(t.key for t in self._pe_terms) or "(none)"))

    @cached_property
    def _pe_blups(self) -> dict:
        """``level_index -> LevelBLUP`` for every design level with random effects."""
        return level_blups(self.model.objective, self._pe_theta, self._cov_beta())

    def _term_arrays(self, t: _Term, which: str):
        """``(index, values)`` of a term: BLUPs ``(n, k)`` or covariances ``(n, k, k)``."""
        d = self._pe_design
        lvl = d.levels[t.level_index]
        lb = self._pe_blups[t.level_index]
        gindex = _key_index(lvl.keys, lvl.path)
        arr = {"b": lb.b, "cond": lb.cond, "comp": lb.comp}[which]
        if not t.expanded:
            cols = np.concatenate([np.arange(o, o + blk.q) for blk, o in t.blocks])
            vals = arr[:, cols] if which == "b" else arr[:, cols][:, :, cols]
            return gindex, vals
        blk, o = t.blocks[0]
        k, qe = blk.n_expand, blk.structure.q
        G = arr.shape[0]
        sub = arr[:, o:o + k * qe] if which == "b" else arr[:, o:o + k * qe, o:o + k * qe]
        if which == "b":
            vals = sub.reshape(G * k, qe)
        else:
            s = sub.reshape(G, k, qe, k, qe)
            vals = s[:, np.arange(k), :, np.arange(k), :]  # (k, G, qe, qe)
            vals = np.swapaxes(vals, 0, 1).reshape(G * k, qe, qe)
        eindex = _expand_index(blk.expand_levels, blk.expand_by)
        if lvl.path:
            g_tuples = [g if isinstance(g, tuple) else (g,) for g in gindex]
            e_tuples = [e if isinstance(e, tuple) else (e,) for e in eindex]
            tuples = [gt + et for gt in g_tuples for et in e_tuples]
            index = pd.MultiIndex.from_tuples(tuples, names=list(lvl.path) + list(blk.expand_by))
        else:
            index = eindex
        return index, vals

    # -- random effects ------------------------------------------------------------
    @cached_property
    def random_effects(self) -> dict:
        """BLUPs of the random effects, one DataFrame per term.

        Returns
        -------
        dict of str -> pandas.DataFrame
            Keys, coarsest level first: the level name (``"id"``, ``"region"``,
            ``"state"``) for its ordinary random effects; for a factor block
            ``R.x`` the key ``"R.x"`` (``"level:R.x"`` below ``_all``); for a
            crossed term the name of its grouping (``"plate"``).  Each frame
            is indexed by group: by the level's variable, or, for nested
            levels, by the full group path (a MultiIndex ``(region, state)``).
            Factor and crossed terms are in long format: one row per factor
            level (per group and factor level below ``_all``).  Columns are
            the effect names as Stata prints them (``week``, ``_cons``,
            ``R.x``).

        Notes
        -----
        These are the empirical BLUPs ``b_hat = G Z' V^{-1} (y - X beta_hat)``
        at the estimates (Stata ``predict, reffects``; lme4 ``ranef``).
        """
        out = {}
        for t in self._pe_terms:
            index, vals = self._term_arrays(t, "b")
            out[t.key] = pd.DataFrame(vals, index=index, columns=t.effects)
        return out

    @cached_property
    def random_effects_se(self) -> dict:
        """Conditional standard deviations of the BLUPs (lme4's ``condVar``).

        Same layout as :attr:`random_effects`: the square roots of the
        diagonal of ``sigma2 * Lambda P^{-1} Lambda'``, the covariance of the
        random effects given the data with the fixed effects treated as
        known.  For Stata's ``reses`` (which also carry the uncertainty of
        ``beta_hat``) see :meth:`random_effects_cov` with
        ``kind="comparative"`` or ``predict(kind="reses")``.
        """
        out = {}
        for t in self._pe_terms:
            index, vals = self._term_arrays(t, "cond")
            sd = np.sqrt(np.clip(np.diagonal(vals, axis1=1, axis2=2), 0.0, None))
            out[t.key] = pd.DataFrame(sd, index=index, columns=t.effects)
        return out

    def random_effects_cov(self, kind: str = "conditional") -> dict:
        """Per-group covariance matrices of the BLUPs.

        Parameters
        ----------
        kind : {"conditional", "comparative"}
            ``"conditional"``: ``Var(b | y)`` at the estimates with ``beta``
            known -- lme4's ``ranef(condVar=TRUE)``, the basis of
            :attr:`random_effects_se`.  ``"comparative"``: the
            prediction-error variance ``Var(b_hat - b)``, which adds the
            uncertainty of the estimated fixed effects (Henderson); its
            diagonal's square root is Stata's ``reses``.  The comparative
            variance is never smaller than the conditional one.

        Returns
        -------
        dict of str -> pandas.DataFrame
            Same keys as :attr:`random_effects`; each frame has one ``k x k``
            block per group: rows indexed by (group..., ``effect``), columns
            the effect names.
        """
        if kind not in ("conditional", "comparative"):
            raise ValueError("kind must be 'conditional' or 'comparative', got %r" % (kind,))
        which = "cond" if kind == "conditional" else "comp"
        out = {}
        for t in self._pe_terms:
            index, vals = self._term_arrays(t, which)
            k = len(t.effects)
            tuples = [(g if isinstance(g, tuple) else (g,)) + (e,) for g in index for e in t.effects]
            names = list(index.names) + ["effect"]
            rows = pd.MultiIndex.from_tuples(tuples, names=names)
            out[t.key] = pd.DataFrame(vals.reshape(-1, k), index=rows, columns=t.effects)
        return out

    # -- row-level pieces ------------------------------------------------------------
    def _pe_level_labels(self) -> list:
        return [lvl.label for lvl in self._pe_design.levels]

    def _relevel_index(self, relevel: Optional[str]) -> int:
        d = self._pe_design
        if relevel is None:
            return len(d.levels) - 1
        labels = self._pe_level_labels()
        if relevel not in labels:
            raise ValueError("relevel(%s): no such level; levels are %s" % (relevel, ", ".join(labels)))
        return labels.index(relevel)

    def _rows_for(self, frame: pd.DataFrame, estimation: bool = False) -> dict:
        """For each term: ``(Zt, pos)`` -- the term's row design (``n x k``) and,
        per row, the row of the term's BLUP table to use (-1: not estimated)."""
        d = self._pe_design
        n = len(frame)
        out = {}
        level_pos: dict[int, np.ndarray] = {}
        for t in self._pe_terms:
            lvl = d.levels[t.level_index]
            if t.level_index not in level_pos:
                if estimation:
                    g = lvl.codes.astype(np.intp)
                elif not lvl.path:
                    g = np.zeros(n, dtype=np.intp)
                else:
                    _check_cols(frame, lvl.path, "grouping variable of level %s" % lvl.label)
                    g = _lookup(_key_index(lvl.keys, lvl.path), frame, lvl.path)
                level_pos[t.level_index] = g
            g = level_pos[t.level_index]
            Zs = []
            for blk, _ in t.blocks:
                eq = blk.equation
                _check_cols(frame, eq.columns, "random effects of level %s" % lvl.label)
                Zs.append(base_matrix(eq, frame))
            Zt = np.column_stack(Zs) if Zs else np.zeros((n, 0))
            if t.expanded:
                blk = t.blocks[0][0]
                _check_cols(frame, blk.expand_by, "factor of term %s" % t.key)
                eidx = _lookup(_expand_index(blk.expand_levels, blk.expand_by), frame, blk.expand_by)
                k = blk.n_expand
                pos = np.where((g >= 0) & (eidx >= 0), g * k + eidx, -1)
            else:
                pos = g.copy()
            out[t.key] = (Zt, pos)
        return out

    def _fixed_for(self, frame: pd.DataFrame) -> np.ndarray:
        """Fixed-effects design for new data, with the estimation sample's coding."""
        return self._pe_design.fixed.matrix(frame)

    def _beta(self) -> np.ndarray:
        return np.asarray(self.params, dtype=float)[: self.k_fe]

    def _cov_beta(self) -> np.ndarray:
        p = self.k_fe
        return np.asarray(self.cov_params())[:p, :p]

    def _term_values(self, key: str, which: str) -> np.ndarray:
        t = self._pe_term(key)
        _, vals = self._term_arrays(t, which)
        return vals

    def _random_part(self, rows: dict, upto: int) -> np.ndarray:
        """``Z b_hat`` per row from the terms of levels ``<= upto``; unseen groups add 0."""
        n = None
        total = None
        for t in self._pe_terms:
            Zt, pos = rows[t.key]
            if n is None:
                n = Zt.shape[0]
                total = np.zeros(n)
            if t.level_index > upto:
                continue
            b = self._term_values(t.key, "b")
            seen = pos >= 0
            contrib = np.zeros(n)
            contrib[seen] = np.einsum("ij,ij->i", Zt[seen], b[pos[seen]])
            total += contrib
        return total if total is not None else None

    # -- predict --------------------------------------------------------------------
    def predict(self, data: Optional[pd.DataFrame] = None, kind: str = "fitted",
                relevel: Optional[str] = None, exog=None, **kwargs):
        """Stata's ``predict`` after ``mixed``.

        Parameters
        ----------
        data : pandas.DataFrame, optional
            New data holding the model's variables (the response only for
            ``residuals``/``rstandard``; grouping variables only for the kinds
            that use random effects).  Default: the estimation sample.
        kind : str, default "fitted"
            * ``"xb"`` -- the fixed part ``X beta_hat``;
            * ``"stdp"`` -- its standard error ``sqrt(diag(X Var(beta_hat) X'))``;
            * ``"fitted"`` -- ``xb + Z b_hat`` (Stata ``fitted``); with
              ``relevel`` only the random effects from the top level down to
              that level;
            * ``"residuals"`` -- ``y - fitted`` (``relevel`` as for ``fitted``);
            * ``"rstandard"`` -- the residuals whitened by the estimated
              residual correlation ``C`` (``C^{-1/2} r``, panel by panel) and
              divided by ``sigma``; for independent residuals ``r / sigma``;
            * ``"reffects"`` -- the BLUPs that apply to each row, one column
              per random effect (``"id:week"``, ``"id:_cons"``; for factor and
              crossed terms the BLUP of the row's own factor level);
              ``relevel`` keeps only that level's columns;
            * ``"reses"`` -- their standard errors: the square root of the
              comparative (prediction-error) variance, as Stata's ``reses``.
        relevel : str, optional
            A level name (``"region"``); see ``kind``.
        exog : pandas.DataFrame, optional
            Alias of ``data`` (statsmodels' name).

        Returns
        -------
        pandas.Series or pandas.DataFrame
            A Series (``reffects``/``reses``: a DataFrame), indexed by the
            row labels of ``data``, in its order; for the estimation sample
            by the labels of the data given to the fit (rows dropped for
            missing values or by ``if`` are absent), in index order for an
            integer index (the original order for a default index), so
            ``df["fit"] = res.predict()`` aligns.

            On new data, rows whose group (or factor level) was not in the
            estimation sample have no BLUP: ``fitted`` gives them the
            population-level prediction at that level (the fixed part plus
            the BLUPs of the known higher levels of a nested model),
            ``reffects``/``reses`` give ``NaN``.  The result's
            ``attrs["unseen"]`` maps each random-effects term to the tuple
            of row labels whose group was not seen (an empty tuple when all
            were); :meth:`unseen_groups` gives the same as a boolean table.
        """
        if exog is not None and data is None:
            data = exog
        if kwargs:
            raise TypeError("predict() got unexpected argument(s): %s" % ", ".join(kwargs))
        if kind not in _KINDS:
            raise ValueError("kind must be one of %s, got %r" % (", ".join(_KINDS), kind))
        d = self._pe_design
        estimation = data is None
        if estimation:
            frame = d.data
            index = d.row_index
        else:
            if not isinstance(data, pd.DataFrame):
                raise TypeError("data must be a pandas DataFrame")
            frame = data
            index = data.index
        upto = self._relevel_index(relevel)
        n = len(frame)
        unseen: dict = {}

        if kind in ("xb", "stdp", "fitted", "residuals", "rstandard"):
            X = d.X if estimation else self._fixed_for(frame)
            if kind == "stdp":
                V = self._cov_beta()
                val = np.sqrt(np.clip(np.einsum("ij,jk,ik->i", X, V, X), 0.0, None))
                return self._pe_finish(pd.Series(val, index=index, name="stdp"), estimation, unseen)
            xb = X @ self._beta()
            if kind == "xb":
                return self._pe_finish(pd.Series(xb, index=index, name="xb"), estimation, unseen)
            rows = self._rows_for(frame, estimation=estimation)
            for t in self._pe_terms:
                if t.level_index <= upto:
                    unseen[t.key] = tuple(index[rows[t.key][1] < 0])
            zb = self._random_part(rows, upto)
            fit = xb + (zb if zb is not None else 0.0)
            if kind == "fitted":
                return self._pe_finish(pd.Series(fit, index=index, name="fitted"), estimation, unseen)
            yname = d.spec.response
            if estimation:
                y = d.y
            else:
                _check_cols(frame, [yname], "dependent variable (needed for %s)" % kind)
                y = frame[yname].to_numpy(dtype=float)
            r = y - fit
            if kind == "residuals":
                return self._pe_finish(pd.Series(r, index=index, name="residuals"), estimation, unseen)
            # rstandard
            sigma = np.sqrt(self.profile.sigma2)
            res_struct = self.model.objective.residual
            if estimation:
                w = np.asarray(res_struct.whiten_rows(self._pe_rho, r[:, None]), dtype=float)[:, 0]
            else:
                if not res_struct.is_plain:
                    raise ValueError("rstandard with a residual structure is available on the "
                                     "estimation sample only (data=None)")
                w = r
            return self._pe_finish(pd.Series(w / sigma, index=index, name="rstandard"), estimation, unseen)

        # reffects / reses
        rows = self._rows_for(frame, estimation=estimation)
        cols, data_cols = [], []
        for t in self._pe_terms:
            if relevel is not None and t.level_index != upto:
                continue
            _, pos = rows[t.key]
            unseen[t.key] = tuple(index[pos < 0])
            if kind == "reffects":
                vals = self._term_values(t.key, "b")
            else:
                cov = self._term_values(t.key, "comp")
                vals = np.sqrt(np.clip(np.diagonal(cov, axis1=1, axis2=2), 0.0, None))
            per_row = np.full((n, vals.shape[1]), np.nan)
            seen = pos >= 0
            per_row[seen] = vals[pos[seen]]
            for j, e in enumerate(t.effects):
                same = e == t.key or t.key.endswith(":" + e)
                cols.append(t.key if same else "%s:%s" % (t.key, e))
                data_cols.append(per_row[:, j])
        mat = np.column_stack(data_cols) if data_cols else np.zeros((n, 0))
        out = pd.DataFrame(mat, index=index, columns=cols)
        return self._pe_finish(out, estimation, unseen)

    @staticmethod
    def _pe_finish(obj, estimation: bool, unseen: dict):
        if estimation and pd.api.types.is_integer_dtype(obj.index.dtype) and obj.index.is_unique:
            obj = obj.sort_index()
        obj.attrs["unseen"] = {k: v for k, v in unseen.items()}
        return obj

    def unseen_groups(self, data: pd.DataFrame) -> pd.DataFrame:
        """Which rows of ``data`` belong to groups not in the estimation sample.

        Parameters
        ----------
        data : pandas.DataFrame

        Returns
        -------
        pandas.DataFrame of bool
            Indexed like ``data``, one column per random-effects term (keys
            of :attr:`random_effects`): True where the row's group (or
            factor level) has no BLUP, so :meth:`predict` uses the
            population-level value (0) for that term.
        """
        rows = self._rows_for(data)
        return pd.DataFrame({t.key: rows[t.key][1] < 0 for t in self._pe_terms}, index=data.index)

    @property
    def fittedvalues(self) -> pd.Series:
        """Fitted values ``X beta_hat + Z b_hat`` on the estimation sample, in data order."""
        return self._in_data_order(self.predict(kind="fitted").to_numpy(), "fitted")

    @property
    def resid(self) -> pd.Series:
        """Residuals ``y - fitted`` on the estimation sample, in data order."""
        return self._in_data_order(self.predict(kind="residuals").to_numpy(), "residuals")

    def _in_data_order(self, values_in_predict_order: np.ndarray, name: str) -> pd.Series:
        d = self._pe_design
        pred_index = self.predict(kind="xb").index
        # map predict's labels back to design rows, then order by position in the user's data
        by_label = pd.Series(values_in_predict_order, index=pred_index)
        order = np.argsort(d.row_pos, kind="stable")
        if pred_index.is_unique:
            vals = by_label.reindex(d.row_index[order]).to_numpy()
        else:
            vals = values_in_predict_order
        return pd.Series(vals, index=d.row_index[order], name=name)

    # -- estat --------------------------------------------------------------------------
    def estat_recovariance(self, level: Optional[str] = None, correlation: bool = False):
        """Estimated covariance (or correlation) matrix of the random effects.

        Stata's ``estat recovariance [, level() correlation]``.

        Parameters
        ----------
        level : str, optional
            A key of :attr:`random_effects` (a level name such as ``"id"``,
            or a factor/crossed term).  Default: every term.
        correlation : bool
            Report the correlation matrix instead.

        Returns
        -------
        pandas.DataFrame, or dict of str -> DataFrame when ``level`` is None
            Rows and columns are the effect names.  A factor block ``R.x``
            shows its per-level covariance (one effect); a level with several
            equations is block diagonal.
        """
        sigma2 = self.profile.sigma2
        parts, _ = self.model.objective.split_theta(self._pe_theta)
        block_theta = {id(b): t for b, t in zip(self.model.objective.blocks, parts)}
        out = {}
        for t in self._pe_terms:
            mats = [blk.structure.cov_from_theta(block_theta[id(blk)], sigma2) for blk, _ in t.blocks]
            G = block_diag(*mats)
            if correlation:
                G = _cov2corr(G)
            out[t.key] = pd.DataFrame(G, index=t.effects, columns=t.effects)
        if level is not None:
            if level not in out:
                raise KeyError("no random-effects level %r; available: %s" % (level, ", ".join(out)))
            return out[level]
        return out

    def estat_icc(self, level: Optional[float] = None) -> pd.DataFrame:
        """Intraclass correlations (Stata's ``estat icc``).

        For each level ``l`` (coarsest first), the correlation of two
        observations in the same level-``l`` group:
        ``(sum of the intercept variances from the top level down to l) /
        (sum of all intercept variances + residual variance)``.  The
        standard error is from the delta method with the covariance of the
        variance components (``cov_params()``); the confidence interval is
        built on the logit scale.

        Parameters
        ----------
        level : float, optional
            Confidence level in percent (default: the fit's, 95).

        Returns
        -------
        pandas.DataFrame
            Indexed by Stata's labels (``region``, ``state|region``), columns
            ``icc``, ``std_err``, ``ci_low``, ``ci_high``.

        Raises
        ------
        ValueError
            As Stata: for models with random coefficients (slopes, ``R.x``
            factors, crossed effects) or with a residual structure other than
            independent homoskedastic errors.
        """
        d = self._pe_design
        ob = self.model.objective
        rs = d.spec.residual
        if rs.kind != "independent" or rs.by is not None or ob.residual.n_params > 0:
            what = rs.kind + (" %d" % rs.order if rs.order else "") + (", by(%s)" % rs.by if rs.by else "")
            raise ValueError("estat icc is not available with residual structures (residuals(%s)): "
                             "intraclass correlations need independent homoskedastic residuals" % what)
        if d.sparse_re:
            raise ValueError("estat icc is not available for crossed random effects")
        # natural-parameter position of each block
        pos, i = {}, 0
        for blk, size in zip(ob.blocks, ob._nat_sizes):
            pos[id(blk)] = i
            i += size
        n_re_nat = i
        re_levels = []
        for lvl in d.levels:
            if lvl.q == 0:
                continue
            for blk in lvl.blocks:
                if blk.expand_by is not None or tuple(blk.effects) != ("_cons",):
                    raise ValueError("estat icc is available only for random-intercept models; level %s has "
                                     "random coefficients (%s)" % (lvl.label, " ".join(blk.effects)))
            if len(lvl.blocks) != 1:
                raise ValueError("estat icc: level %s has more than one random intercept" % lvl.label)
            re_levels.append((lvl, pos[id(lvl.blocks[0])]))
        if not re_levels:
            raise ValueError("estat icc needs at least one random-effects level")
        k = self.k_fe
        phi = np.asarray(self.params, dtype=float)[k:]
        cov = np.asarray(self.cov_params())[k:, k:]
        res_idx = n_re_nat  # var(Residual)
        idx = [p for _, p in re_levels] + [res_idx]
        v = phi[idx]
        S = cov[np.ix_(idx, idx)]
        total = v.sum()
        conf = self.level if level is None else level
        z = stats.norm.ppf(0.5 + conf / 200.0)
        rows, labels = [], []
        for j in range(len(re_levels)):
            A = v[: j + 1].sum()
            icc = A / total
            g = np.full(len(v), -A / total ** 2)
            g[: j + 1] += 1.0 / total
            se = float(np.sqrt(max(g @ S @ g, 0.0)))
            if 0 < icc < 1:
                c = np.log(icc / (1 - icc))
                w = z * se / (icc * (1 - icc))
                lo, hi = 1 / (1 + np.exp(-(c - w))), 1 / (1 + np.exp(-(c + w)))
            else:
                lo = hi = np.nan
            rows.append((icc, se, lo, hi))
            labels.append("|".join(l.label for l, _ in re_levels[: j + 1][::-1]))
        out = pd.DataFrame(rows, index=pd.Index(labels, name="level"),
                           columns=["icc", "std_err", "ci_low", "ci_high"])
        return out

    def estat_wcorrelation(self, group=None) -> WCorrelation:
        """Model-implied covariance and correlation within one top-level cluster.

        Stata's ``estat wcorrelation``: ``V = Z G Z' + R`` for the rows of one
        group of the coarsest level, random effects of every level and the
        residual structure together (``R = sigma2 * C``, with ``C`` from the
        residual structure panel by panel).

        Parameters
        ----------
        group : scalar or tuple, optional
            Value of the top level's grouping variable (a tuple for a
            multi-variable path).  Default: the first group.  Ignored for a
            model whose top level is ``_all`` (crossed effects): the cluster
            is then the whole sample.

        Returns
        -------
        WCorrelation
            ``covariance`` and ``correlation`` DataFrames indexed (rows and
            columns) by the cluster's row labels in the data given to the
            fit (rows in estimation order: sorted by group, and by time
            within a panel as in the data), and ``group``.
        """
        d = self._pe_design
        ob = self.model.objective
        top = d.levels[0] if d.levels else None
        if top is None or not top.path:
            rows = np.arange(d.n)
            group = "_all"
        else:
            gindex = _key_index(top.keys, top.path)
            if group is None:
                gi = 0
                group = gindex[0]
            else:
                try:
                    gi = gindex.get_loc(group)
                except KeyError:
                    raise KeyError("no group %r at level %s" % (group, top.label)) from None
                if not isinstance(gi, (int, np.integer)):
                    raise KeyError("group %r does not identify one group of level %s" % (group, top.label))
            rows = np.flatnonzero(top.codes == gi)
        sigma2 = self.profile.sigma2
        Lam = ob.lambda_from_theta(self._pe_theta)
        V = np.zeros((rows.size, rows.size))
        for li, lb in self._pe_blups.items():
            lvl = d.levels[li]
            q = lvl.q
            Zl = d.Z[rows, lb.col_offset:lb.col_offset + q]
            lam = Lam[lb.col_offset:lb.col_offset + q, lb.col_offset:lb.col_offset + q]
            Gl = sigma2 * lam @ lam.T
            codes = lvl.codes[rows]
            same = codes[:, None] == codes[None, :]
            V += (Zl @ Gl @ Zl.T) * same
        # residual part, panel by panel
        panels = d.panel_codes[rows]
        rho = self._pe_rho
        starts = np.flatnonzero(np.r_[True, np.diff(panels) != 0])
        ends = np.r_[starts[1:], panels.size]
        for s, e in zip(starts, ends):
            C = np.asarray(ob.residual.correlation(rho, int(panels[s])), dtype=float)
            if C.shape != (e - s, e - s):
                raise RuntimeError("residual correlation of panel %d has shape %s, expected %d rows"
                                   % (panels[s], C.shape, e - s))
            V[s:e, s:e] += sigma2 * C
        labels = d.row_index[rows]
        cov = pd.DataFrame(V, index=labels, columns=labels)
        corr = pd.DataFrame(_cov2corr(V), index=labels, columns=labels)
        return WCorrelation(cov, corr, group)

    def estat_sd(self, level: Optional[float] = None) -> pd.DataFrame:
        """Variance components as standard deviations and correlations (``estat sd``).

        Parameters
        ----------
        level : float, optional
            Confidence level in percent (default: the fit's).

        Returns
        -------
        pandas.DataFrame
            Indexed by (level, parameter) with ``sd(...)``/``corr(...)``
            labels; columns ``estimate``, ``std_err`` (delta method),
            ``ci_low``, ``ci_high`` (log scale for SDs, atanh for
            correlations).
        """
        return self._vc_table(sd=True, level=level)

    def estat_ic(self, n: Optional[int] = None) -> pd.DataFrame:
        """Akaike's and Schwarz's information criteria (``estat ic``).

        Parameters
        ----------
        n : int, optional
            Sample size used in BIC (Stata's ``n()``); default the number of
            observations.

        Returns
        -------
        pandas.DataFrame
            One row with ``N``, ``ll(null)`` (not defined: NaN), ``ll(model)``,
            ``df`` (fixed effects plus variance components), ``AIC``, ``BIC``.
            Under REML ``ll(model)`` is the restricted log-likelihood.
        """
        N = int(self.nobs if n is None else n)
        df = len(np.asarray(self.params))
        ll = float(self.llf)
        row = {"N": N, "ll(null)": np.nan, "ll(model)": ll, "df": df,
               "AIC": -2 * ll + 2 * df, "BIC": -2 * ll + np.log(N) * df}
        return pd.DataFrame([row], index=pd.Index(["."], name="Model"))

    # -- plots ------------------------------------------------------------------------------
    def plot_caterpillar(self, level: Optional[str] = None, alpha: float = 0.05, se: str = "conditional",
                         figsize=None):
        """Caterpillar plot: sorted BLUPs with intervals, one panel per effect.

        Parameters
        ----------
        level : str, optional
            A key of :attr:`random_effects`; default every term.
        alpha : float
            Intervals are ``b_hat +- z(1 - alpha/2) * se``.
        se : {"conditional", "comparative"}
            Which standard errors (see :meth:`random_effects_cov`).

        Returns
        -------
        matplotlib.figure.Figure
        """
        from .plots import caterpillar

        return caterpillar(self, level=level, alpha=alpha, se=se, figsize=figsize)

    def plot_spaghetti(self, time: str, response: Optional[str] = None, groups=None, fitted: bool = False,
                       data: Optional[pd.DataFrame] = None, group: Optional[str] = None, figsize=None):
        """Growth curves: the response over time, one connected line per group.

        Like Stata's ``twoway scatter weight week if id<=10, connect(L)``:
        ``res.plot_spaghetti("week", groups=range(1, 11))``.

        Parameters
        ----------
        time : str
            Variable on the x axis.
        response : str, optional
            Variable on the y axis (default: the model's response).
        groups : iterable, optional
            Values of the grouping variable to draw (default: all).
        fitted : bool
            Also draw each group's fitted curve (``predict(kind="fitted")``).
        data : DataFrame, optional
            Data to draw (default: the estimation sample); needed when
            ``time`` is not a model variable.
        group : str, optional
            Grouping variable (default: the finest level's).

        Returns
        -------
        matplotlib.figure.Figure
        """
        from .plots import spaghetti

        return spaghetti(self, time, response=response, groups=groups, fitted=fitted, data=data,
                         group=group, figsize=figsize)

    def plot_residuals(self, figsize=None):
        """Residuals against fitted values (both including the BLUPs).

        Returns
        -------
        matplotlib.figure.Figure
        """
        from .plots import residuals_vs_fitted

        return residuals_vs_fitted(self, figsize=figsize)

    def plot_qq(self, figsize=None):
        """Normal quantile plot of the standardized residuals (``rstandard``).

        Returns
        -------
        matplotlib.figure.Figure
        """
        from .plots import qq

        return qq(self, figsize=figsize)


def _check_cols(frame: pd.DataFrame, cols, what: str) -> None:
    for c in cols:
        if c not in frame.columns:
            raise ValueError("variable '%s' not found in data (%s)" % (c, what))
