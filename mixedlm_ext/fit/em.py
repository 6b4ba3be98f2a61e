"""EM iterations for starting values, and the conditional moments they need.

Given ``theta``, the engine's block Cholesky factor ``L`` of
``P = Lambda' Z'Z Lambda + I`` gives the conditional distribution of the
spherical random effects ``u`` (``beta`` held at its GLS value): mean
``u_hat`` and covariance ``sigma2 * P^{-1}``.  The diagonal blocks of
``P^{-1}`` come top-down without forming it: for a group ``g`` with
ancestors ``a``, ``u_g = L_g^{-T} (z_g - T_g u_a)`` so

``Cov(u_g) = L_g^{-T} (I + T_g Cov(u_a) T_g') L_g^{-1}``,
``Cov(u_g, u_a) = -L_g^{-T} T_g Cov(u_a)``.

:func:`conditional_moments` returns, per level, ``u_hat`` and the joint
covariance of each group's ``u`` with its ancestors'.  The EM step then sets
each level's covariance to the average of ``E[b b' | y]`` and the residual
variance to ``E[e'e | y] / n``.
"""
from __future__ import annotations

import sys
from typing import TextIO

import numpy as np

from ..core.linalg import inv_lower
from .objective import Objective


def conditional_moments(objective: Objective, theta: np.ndarray, beta_w=None):
    """``(profile, u_hat, joint_cov)`` per level, finest level first.

    ``joint_cov[i]`` is ``(G_i, Q_i, Q_i)``: the covariance (in units of
    ``sigma2``) of ``[u_g, u_parent, u_grandparent, ...]`` for each group of
    level ``i``.  ``u_hat`` is at the profile's GLS ``beta`` unless ``beta_w``
    (working metric) is given.
    """
    prof = objective.profile(theta, keep=True)
    engine = objective.engine
    u_hat = engine.solve_u(prof.elim, prof.beta_w if beta_w is None else beta_w)
    factors = engine.level_factors(prof.elim)
    n = len(factors)
    joint: list = [None] * n
    for i in range(n - 1, -1, -1):
        f = factors[i]
        Li = inv_lower(f.L)  # (G, q, q)
        own = np.swapaxes(Li, 1, 2) @ Li
        if i == n - 1:
            joint[i] = own
            continue
        # ancestors' joint covariance, per group of this level
        S = joint[i + 1][engine.parents[i]]
        K = np.swapaxes(Li, 1, 2) @ f.T  # (G, q, Qa)
        KS = K @ S
        cov_g = own + KS @ np.swapaxes(K, 1, 2)
        q = f.L.shape[1]
        Qa = S.shape[1]
        J = np.empty((S.shape[0], q + Qa, q + Qa))
        J[:, :q, :q] = cov_g
        J[:, :q, q:] = -KS
        J[:, q:, :q] = -np.swapaxes(KS, 1, 2)
        J[:, q:, q:] = S
        joint[i] = J
    return prof, u_hat, joint


def _kernel_em_step(objective: Objective, theta: np.ndarray, evaluate=None) -> np.ndarray:
    """:func:`em_step` for one small block, from the kernel's closed forms (:mod:`.kernels`)."""
    parts, rho = objective.split_theta(theta)
    ev = (evaluate or objective.evaluate)(theta)
    w = np.append(-ev.beta_w, 1.0)
    ssu, tr, bb, var_b = ev.kernel.em(w)
    sigma2_cur = ev.r2 / objective.n_eff
    sigma2 = max((ev.r2 - ssu + sigma2_cur * tr) / objective.design.n, 1e-12)
    Gb = bb + sigma2_cur * var_b
    return np.concatenate([objective.blocks[0].structure.theta_from_cov(Gb / sigma2), rho])


def em_step(objective: Objective, theta: np.ndarray, evaluate=None) -> np.ndarray:
    """One EM update of the random-effects parameters (residual ones kept); ``evaluate``
    (the optimizer's cached evaluations) serves the single-block kernel."""
    if objective.kernel is not None:
        return _kernel_em_step(objective, theta, evaluate)
    d = objective.design
    prof, u_hat, joint = conditional_moments(objective, theta)
    parts, rho = objective.split_theta(theta)
    levels_fine = d.re_levels()  # the engine's levels
    # residual variance: E||y - X b - Z Lambda u||^2 / n
    Lam = objective.lambda_from_theta(theta)
    ZtZ, _, _, _ = objective.crossproducts(rho)
    M = Lam.T @ ZtZ @ Lam
    tr = float(np.einsum("gij,gji->", M, joint[0]))
    ssu = sum(float((u ** 2).sum()) for u in u_hat)
    sigma2_cur = prof.sigma2
    sigma2 = max((prof.r2 - ssu + sigma2_cur * tr) / d.n, 1e-12)
    new_parts = []
    bi = len(objective.blocks)
    per_level_new: list[list[np.ndarray]] = []
    for li, lvl in enumerate(levels_fine):
        q = lvl.q
        u = u_hat[li]
        S = (u[:, :, None] * u[:, None, :]).mean(axis=0) + sigma2_cur * joint[li][:, :q, :q].mean(axis=0)
        # back to the b scale, level by level (Lambda is block diagonal)
        off = sum(l.q for l in levels_fine[:li])
        Lam_l = Lam[off:off + q, off:off + q]
        Gb = Lam_l @ S @ Lam_l.T
        lvl_parts = []
        j = 0
        for blk in lvl.blocks:
            k, qe = blk.n_expand, blk.structure.q
            sub = Gb[j:j + blk.q, j:j + blk.q]
            if k > 1:
                sub = sub.reshape(k, qe, k, qe)[np.arange(k), :, np.arange(k), :].mean(axis=0)
            lvl_parts.append(blk.structure.theta_from_cov(sub / sigma2))
            j += blk.q
        per_level_new.append(lvl_parts)
    for lvl_parts in per_level_new[::-1]:  # back to coarsest-first order
        new_parts += lvl_parts
    assert len(new_parts) == bi
    return np.concatenate(new_parts + [rho])


EM_SLOW = 0.2  # stop EM once a step gains more than this fraction of the previous step's gain ...
EM_SMALL = 1e-2  # ... or less than this (deviance units): the quasi-Newton stage does better from there


def em_start(objective: Objective, theta: np.ndarray, iterations: int = 20, log: bool = False,
             stream: TextIO = None, count=None, adaptive: bool = True) -> np.ndarray:
    """Up to ``iterations`` EM steps, stopped when they stop paying; the best point seen.

    EM converges linearly: once a step gains nearly as much as the previous
    one (:data:`EM_SLOW`) or the gain is small (:data:`EM_SMALL`), the
    quasi-Newton stage, superlinear, gets there in fewer evaluations
    (``adaptive=False``: every step until one does not improve, for ``emonly``).
    ``count`` (the optimizer's evaluation counter) counts each step's
    evaluations."""
    stream = stream or sys.stdout
    if iterations <= 0 or objective.n_theta_re == 0 or objective.design.sparse_re or not objective.keeps_factors:
        return theta
    value = count.value if count is not None else objective.deviance
    best, best_dev = theta, value(theta)
    label = "Log restricted-likelihood" if objective.reml else "Log likelihood"
    gain = np.inf
    for it in range(iterations):
        try:
            cand = em_step(objective, best, None if count is None else count.evaluate)
        except (np.linalg.LinAlgError, FloatingPointError, ValueError):
            break
        if count is not None and objective.kernel is None:
            count.n += 1  # the conditional moments (the kernel's come with its cached evaluation)
        dev = value(cand)
        if log:
            stream.write("Iteration %d:  %s = %.8g\n" % (it, label, -0.5 * dev))
        if not np.isfinite(dev) or dev > best_dev - 1e-8 * max(1.0, abs(best_dev)):
            if np.isfinite(dev) and dev < best_dev:
                best, best_dev = cand, dev
            break
        step_gain = best_dev - dev
        best, best_dev = cand, dev
        if adaptive and (step_gain > EM_SLOW * gain or step_gain < EM_SMALL):
            break
        gain = step_gain
    return best
