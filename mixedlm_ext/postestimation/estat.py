"""Stata's ``estat`` after ``mixed``: recovariance, icc, wcorrelation, ic.

(``estat sd`` is the results' variance-component table in the SD metric,
``estat group`` lives on the results class.)
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np
import pandas as pd

from ..core.distributions import norm_ppf
from ..core.linalg import block_diag
from ..design.build import model_variables, select_estimation_rows, used_columns
from ..design.groups import group_codes
from ..design.types import Design, Level
from ..scale.frames import is_dask_frame
from .estimates import Estimates
from .terms import group_index


class WCorrelation(NamedTuple):
    """Result of :meth:`PostestimationMixin.estat_wcorrelation`."""

    covariance: pd.DataFrame
    correlation: pd.DataFrame
    group: object  # the top-level cluster shown


def cov2corr(C: np.ndarray) -> np.ndarray:
    """Correlation matrix of a covariance matrix (NaN where a variance is 0)."""
    sd = np.sqrt(np.clip(np.diag(C), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        R = C / np.outer(sd, sd)
    R[~np.isfinite(R)] = np.nan
    np.fill_diagonal(R, np.where(sd > 0, 1.0, np.nan))
    return R


def recovariance(est: Estimates, level: Optional[str], correlation: bool):
    """``estat recovariance``: the covariance (correlation) matrix of each term's random effects."""
    parts, _ = est.objective.split_theta(est.theta)
    block_theta = {id(b): t for b, t in zip(est.objective.blocks, parts)}
    out = {}
    for t in est.layout.terms:
        mats = [blk.structure.cov_from_theta(block_theta[id(blk)], est.sigma2) for blk, _ in t.blocks]
        G = block_diag(*mats)
        if correlation:
            G = cov2corr(G)
        out[t.key] = pd.DataFrame(G, index=t.effects, columns=t.effects)
    if level is not None:
        if level not in out:
            raise KeyError("no random-effects level %r; available: %s" % (level, ", ".join(out)))
        return out[level]
    return out


def _icc_levels(est: Estimates) -> list[tuple[Level, int]]:
    """The random-intercept levels (coarsest first) and the position of each
    one's variance among the natural parameters; ValueError where Stata has
    no ``estat icc``."""
    d, ob = est.design, est.objective
    rs = d.spec.residual
    if not rs.is_plain or ob.residual.n_params > 0:
        what = rs.kind + (" %d" % rs.order if rs.order else "") + (", by(%s)" % rs.by if rs.by else "")
        raise ValueError("estat icc is not available with residual structures (residuals(%s)): "
                         "intraclass correlations need independent homoskedastic residuals" % what)
    if d.sparse_re:
        raise ValueError("estat icc is not available for crossed random effects")
    pos, i = {}, 0
    for blk in ob.blocks:
        pos[id(blk)] = i
        i += blk.structure.n_natural
    out = []
    for lvl in d.levels:
        if lvl.q == 0:
            continue
        for blk in lvl.blocks:
            if blk.expand_by is not None or tuple(blk.effects) != ("_cons",):
                raise ValueError("estat icc is available only for random-intercept models; level %s has "
                                 "random coefficients (%s)" % (lvl.label, " ".join(blk.effects)))
        if len(lvl.blocks) != 1:
            raise ValueError("estat icc: level %s has more than one random intercept" % lvl.label)
        out.append((lvl, pos[id(lvl.blocks[0])]))
    if not out:
        raise ValueError("estat icc needs at least one random-effects level")
    return out


def icc(est: Estimates, vc_params: np.ndarray, vc_cov: np.ndarray, conf: float) -> pd.DataFrame:
    """``estat icc``: intraclass correlations with delta-method SEs and logit-scale CIs.

    ``vc_params``/``vc_cov`` are the variance components (natural metric,
    residual variance after the random effects) and their covariance.
    """
    re_levels = _icc_levels(est)
    res_idx = sum(blk.structure.n_natural for blk in est.objective.blocks)  # var(Residual)
    idx = [p for _, p in re_levels] + [res_idx]
    v = vc_params[idx]
    S = vc_cov[np.ix_(idx, idx)]
    total = v.sum()
    z = norm_ppf(0.5 + conf / 200.0)
    rows, labels = [], []
    for j in range(len(re_levels)):
        A = v[: j + 1].sum()
        value = A / total
        g = np.full(len(v), -A / total ** 2)
        g[: j + 1] += 1.0 / total
        se = float(np.sqrt(max(g @ S @ g, 0.0)))
        if 0 < value < 1:
            c = np.log(value / (1 - value))
            w = z * se / (value * (1 - value))
            lo, hi = 1 / (1 + np.exp(-(c - w))), 1 / (1 + np.exp(-(c + w)))
        else:
            lo = hi = np.nan
        rows.append((value, se, lo, hi))
        labels.append("|".join(lvl.label for lvl, _ in re_levels[: j + 1][::-1]))
    return pd.DataFrame(rows, index=pd.Index(labels, name="level"),
                        columns=["icc", "std_err", "ci_low", "ci_high"])


def _cluster_rows(design: Design, group) -> tuple[np.ndarray, object]:
    """Rows of one group of the top level (every row for ``_all``) and the group."""
    top = design.levels[0] if design.levels else None
    if top is None or not top.path:
        return np.arange(design.n), "_all"
    gindex = group_index(top.keys, top.path)
    if group is None:
        return np.flatnonzero(top.codes == 0), gindex[0]
    try:
        gi = gindex.get_loc(group)
    except KeyError:
        raise KeyError("no group %r at level %s" % (group, top.label)) from None
    if not isinstance(gi, (int, np.integer)):
        raise KeyError("group %r does not identify one group of level %s" % (group, top.label))
    return np.flatnonzero(top.codes == gi), group


def _random_covariance(est: Estimates, rows: np.ndarray) -> np.ndarray:
    """``Z G Z'`` of the rows, every level with random effects."""
    d = est.design
    Lam = est.objective.lambda_from_theta(est.theta)
    V = np.zeros((rows.size, rows.size))
    off = 0
    for li in d.re_level_indices():  # finest first: the column order of Z and Lambda
        lvl = d.levels[li]
        q = lvl.q
        Zl = d.Z[rows, off:off + q]
        lam = Lam[off:off + q, off:off + q]
        codes = lvl.codes[rows]
        V += (Zl @ (est.sigma2 * lam @ lam.T) @ Zl.T) * (codes[:, None] == codes[None, :])
        off += q
    return V


def _residual_covariance(est: Estimates, rows: np.ndarray) -> np.ndarray:
    """``R = sigma2 * C`` of the rows, panel by panel."""
    panels = est.design.panel_codes[rows]
    rho = est.rho
    V = np.zeros((rows.size, rows.size))
    starts = np.flatnonzero(np.r_[True, np.diff(panels) != 0])
    ends = np.r_[starts[1:], panels.size]
    for s, e in zip(starts, ends):
        C = np.asarray(est.objective.residual.correlation(rho, int(panels[s])), dtype=float)
        if C.shape != (e - s, e - s):
            raise RuntimeError("residual correlation of panel %d has shape %s, expected %d rows"
                               % (panels[s], C.shape, e - s))
        V[s:e, s:e] += est.sigma2 * C
    return V


def wcorrelation(est: Estimates, group=None) -> WCorrelation:
    """``estat wcorrelation``: ``V = Z G Z' + R`` within one top-level cluster."""
    rows, group = _cluster_rows(est.design, group)
    V = _random_covariance(est, rows) + _residual_covariance(est, rows)
    labels = est.design.row_index[rows]
    cov = pd.DataFrame(V, index=labels, columns=labels)
    corr = pd.DataFrame(cov2corr(V), index=labels, columns=labels)
    return WCorrelation(cov, corr, group)


def frame_wcorrelation(est: Estimates, frame, group=None) -> WCorrelation:
    """``estat wcorrelation`` of a fit from sufficient statistics: the rows of one
    top-level cluster are taken from the fitted frame (a Dask DataFrame: only that
    cluster's rows are computed), then ``V = Z G Z' + R`` as in memory."""
    d = est.design
    top = d.levels[0] if d.levels else None
    if top is None or not top.path:
        raise NotImplementedError("estat wcorrelation of a model without a top-level grouping needs every row")
    gindex = group_index(top.keys, top.path)
    group = gindex[0] if group is None else group
    if gindex.get_indexer([group])[0] < 0:
        raise KeyError("no group %r at level %s" % (group, top.label))
    mask = None
    for c, v in zip(top.path, group if isinstance(group, tuple) else (group,)):
        mask = (frame[c] == v) if mask is None else mask & (frame[c] == v)
    rows = frame[mask]
    rows = rows.compute() if is_dask_frame(rows) else rows
    v = model_variables(d.spec, rows)
    kept, _ = select_estimation_rows(d.spec, rows, used_columns(d.spec, v))
    rows = rows.iloc[kept.index].sort_values(list(d.levels[-1].path), kind="stable")
    V = _rows_random_covariance(est, rows) + est.sigma2 * _rows_residual_correlation(est, rows)
    cov = pd.DataFrame(V, index=rows.index, columns=rows.index)
    return WCorrelation(cov, pd.DataFrame(cov2corr(V), index=rows.index, columns=rows.index), group)


def _rows_random_covariance(est: Estimates, rows: pd.DataFrame) -> np.ndarray:
    """``Z G Z'`` of given rows, term by term (rows of different groups: 0)."""
    parts, _ = est.objective.split_theta(est.theta)
    block_theta = {id(b): t for b, t in zip(est.objective.blocks, parts)}
    V = np.zeros((len(rows), len(rows)))
    term_rows = est.layout.rows(rows)
    for t in est.layout.terms:
        G = block_diag(*[blk.structure.cov_from_theta(block_theta[id(blk)], est.sigma2) for blk, _ in t.blocks])
        r = term_rows[t.key]
        V += (r.Z @ G @ r.Z.T) * (r.pos[:, None] == r.pos[None, :])
    return V


def _rows_residual_correlation(est: Estimates, rows: pd.DataFrame) -> np.ndarray:
    res = est.objective.residual
    if res.is_plain:
        return np.eye(len(rows))
    spec = est.design.spec.residual
    panel, _ = group_codes(rows, est.design.levels[-1].path)
    by = rows[spec.by].to_numpy() if spec.by is not None else None
    t = rows[spec.time].to_numpy(dtype=float) if spec.time is not None else None
    return res.rows_correlation(est.rho, panel, by, t)


def information_criteria(nobs: int, n_params: int, llf: float) -> pd.DataFrame:
    """``estat ic``: one row with ``N``, ``ll(null)`` (NaN), ``ll(model)``, ``df``, ``AIC``, ``BIC``."""
    row = {"N": nobs, "ll(null)": np.nan, "ll(model)": llf, "df": n_params,
           "AIC": -2 * llf + 2 * n_params, "BIC": -2 * llf + np.log(nobs) * n_params}
    return pd.DataFrame([row], index=pd.Index(["."], name="Model"))
