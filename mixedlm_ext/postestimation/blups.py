"""The one BLUP computation: conditional modes and their covariances per level.

The engine eliminates the random effects level by level (finest first) in
the spherical metric ``b = Lambda u``.  Given the estimates:

* BLUP: ``b_hat = Lambda u_hat``;
* conditional covariance: ``sigma2 * Lambda P^{-1} Lambda'`` (lme4's
  ``ranef(condVar=TRUE)``), ``P = Lambda' Z' R^{-1} Z Lambda + I``;
* comparative covariance (Henderson's prediction-error variance
  ``Var(b_hat - b)``, Stata's ``reses``): the conditional one plus
  ``K Var(beta_hat) K'``, ``K = d b_hat / d beta``.  ``u_hat`` is linear in
  ``beta``, so ``K`` comes from one back-substitution per fixed effect.

:func:`level_blups` serves nested designs (from the nested engine's factors,
:func:`~mixedlm_ext.fit.em.conditional_moments`) and crossed designs (from
the crossed engine's sparse factor, never a dense inverse) in one layout:
``level index -> LevelBLUP``.  Postestimation and the scikit-learn estimator
both use it; the estimator asks for the BLUPs alone (``covariances=False``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..core.linalg import block_diag
from ..engines.crossed import CrossedEngine
from ..engines.crossed_terms import level_layout
from ..fit.em import conditional_moments

_LEVEL_LAMBDA_MAX_Q = 2000  # the dense per-level Lambda is attached only below this size


@dataclass(frozen=True)
class LevelBLUP:
    """BLUPs of one design level that has random effects."""

    level_index: int  # position in design.levels (coarsest first)
    col_offset: int  # first column of the level in design.Z / Lambda
    lam: Optional[np.ndarray]  # (q, q) relative factor of the level (None: too large)
    b: np.ndarray  # (G, q) BLUPs
    cond: Optional[np.ndarray]  # (G, q, q) conditional covariance (absolute); None: not asked for
    comp: Optional[np.ndarray]  # (G, q, q) comparative covariance (absolute); None: not asked for


def beta_sensitivity(solve_u, p: int, design, cov_fe: np.ndarray) -> tuple[list, np.ndarray]:
    """``d u_hat / d beta_w`` per level and ``Var(beta_w)``, for comparative variances.

    ``u_hat`` is linear in the working fixed effects ``beta_w``, so one
    back-substitution per fixed effect gives the derivative exactly.
    """
    u0 = solve_u(np.zeros(p))
    D = [np.empty(u.shape + (p,)) for u in u0]
    for j in range(p):
        e = np.zeros(p)
        e[j] = 1.0
        for i, u in enumerate(solve_u(e)):
            D[i][:, :, j] = u - u0[i]
    return D, design.Rx @ cov_fe @ design.Rx.T  # beta_w = Rx (beta - b_ols)


def level_blups(objective, theta: np.ndarray, cov_fe: Optional[np.ndarray],
                covariances: bool = True) -> dict[int, LevelBLUP]:
    """``level_index -> LevelBLUP`` for every design level with random effects.

    ``cov_fe`` is the covariance of the fixed effects used for the
    comparative variances.  With ``covariances=False`` only the BLUPs are
    computed (``cond`` and ``comp`` are None; ``cov_fe`` is not used).
    """
    if isinstance(objective.engine, CrossedEngine):
        return crossed_level_blups(objective, theta, cov_fe, covariances)
    if not objective.keeps_factors:  # the per-group statistics are on the workers, in shards
        return sharded_level_blups(objective, theta, cov_fe, covariances)
    return nested_level_blups(objective, theta, cov_fe, covariances)


def shard_level_blups(shard, theta: np.ndarray, cov_fe: Optional[np.ndarray], covariances: bool,
                      at: tuple) -> dict[int, LevelBLUP]:
    """The BLUPs of one shard's groups (on its worker), at the whole data's ``(beta_w, sigma2)``."""
    return nested_level_blups(shard.objective, theta, cov_fe, covariances, at)


def sharded_level_blups(ob, theta: np.ndarray, cov_fe: Optional[np.ndarray],
                        covariances: bool = True) -> dict[int, LevelBLUP]:
    """Each shard's BLUPs computed where it lives, joined in the groups' order (shards
    hold consecutive top-level clusters)."""
    prof = ob.profile(theta)
    parts = ob.map_shards(shard_level_blups, theta, cov_fe, covariances, (prof.beta_w, prof.sigma2))
    out = {}
    for li, first in parts[0].items():
        join = lambda name: None if getattr(first, name) is None else np.concatenate(  # noqa: E731
            [getattr(p[li], name) for p in parts])
        out[li] = LevelBLUP(li, first.col_offset, first.lam, join("b"), join("cond"), join("comp"))
    return out


def nested_level_blups(ob, theta: np.ndarray, cov_fe: Optional[np.ndarray],
                       covariances: bool = True, at: Optional[tuple] = None) -> dict[int, LevelBLUP]:
    """From the nested engine's per-level factors (for a crossed design: their
    dense nested-layout view, small designs only); ``at``: ``(beta_w, sigma2)``
    to use instead of the objective's own (a shard of the data)."""
    d = ob.design
    beta_w = None if at is None else at[0]
    if covariances:
        prof, u_hat, joint = conditional_moments(ob, theta, beta_w)
    else:
        prof = ob.profile(theta, keep=True)
        u_hat = ob.engine.solve_u(prof.elim, prof.beta_w if beta_w is None else beta_w)
    sigma2 = prof.sigma2 if at is None else at[1]
    Lam = ob.lambda_from_theta(theta)
    p = d.p
    if covariances and p:
        D, V_w = beta_sensitivity(lambda b: ob.engine.solve_u(prof.elim, b), p, d, cov_fe)
    out, off = {}, 0
    for ei, li in enumerate(d.re_level_indices()):
        q = d.levels[li].q
        lam = Lam[off:off + q, off:off + q]
        b = u_hat[ei] @ lam.T
        cond = comp = None
        if covariances:
            cond = lam @ (sigma2 * joint[ei][:, :q, :q]) @ lam.T
            comp = cond + lam @ (D[ei] @ V_w @ np.swapaxes(D[ei], 1, 2)) @ lam.T if p else cond.copy()
        out[li] = LevelBLUP(li, off, lam, b, cond, comp)
        off += q
    return out


def crossed_level_blups(ob, theta: np.ndarray, cov_fe: Optional[np.ndarray],
                        covariances: bool = True) -> dict[int, LevelBLUP]:
    """From the crossed engine's factor.  Only the diagonal blocks that
    postestimation reports are filled (for the ``_all`` level: one ``q x q``
    block per level of each factor; the rest of the level's covariance is
    zero), so nothing costs more than the per-term conditional variances."""
    eng, d = ob.engine, ob.design
    prof = ob.profile(theta, keep=True)
    elim = prof.elim
    lams = elim.state["lams"] if elim.state else []
    p = d.p
    u_terms = eng.solve_u_terms(elim, prof.beta_w)
    if covariances:
        cv_terms = eng.conditional_variances(elim)
    if covariances and p:
        D_terms, V_w = beta_sensitivity(lambda b: eng.solve_u_terms(elim, b), p, d, cov_fe)
    offs, _ = level_layout(d)
    arrays, col_off, off = {}, {}, 0
    for li in d.re_level_indices():
        G, q = d.levels[li].n_groups, d.levels[li].q
        arrays[li] = (np.zeros((G, q)),) + ((np.zeros((G, q, q)), np.zeros((G, q, q))) if covariances
                                            else (None, None))
        col_off[li] = off
        off += q
    starts = sorted(offs.items(), key=lambda kv: kv[1])
    level_starts = np.array([s for _, s in starts])
    for ti, t in enumerate(eng.terms):
        lam_t = t.factor(lams)
        li = starts[int(np.searchsorted(level_starts, t.pos[0, 0], side="right")) - 1][0]
        rel = t.pos - offs[li]
        grp, cols = rel // d.levels[li].q, rel % d.levels[li].q  # level group and column of each entry
        Bl, Cl, Pl = arrays[li]
        Bl[grp, cols] = u_terms[ti] @ lam_t.T
        if not covariances:
            continue
        cond = prof.sigma2 * np.matmul(np.matmul(lam_t, cv_terms[ti]), lam_t.T)
        comp = cond
        if p:
            extra = np.matmul(np.matmul(D_terms[ti], V_w), np.swapaxes(D_terms[ti], 1, 2))
            comp = cond + np.matmul(np.matmul(lam_t, extra), lam_t.T)
        gi = grp[:, 0][:, None, None]
        Cl[gi, cols[:, :, None], cols[:, None, :]] = cond
        Pl[gi, cols[:, :, None], cols[:, None, :]] = comp
    out = {}
    for li, (Bl, Cl, Pl) in arrays.items():
        lam = None
        if d.levels[li].q <= _LEVEL_LAMBDA_MAX_Q:
            i0 = sum(len(lv.blocks) for lv in d.levels[:li])
            lam = block_diag(*[blk.expand(lams[i0 + k]) for k, blk in enumerate(d.levels[li].blocks)])
        out[li] = LevelBLUP(li, col_off[li], lam, Bl, Cl, Pl)
    return out
