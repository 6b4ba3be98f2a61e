"""New responses from a fitted model, and designs that carry them.

:func:`simulate_responses` draws ``y* = X beta + Z b* + e*`` with
``b* ~ N(0, G)`` (or the BLUPs, ``conditional``) and ``e* ~ N(0, sigma2 / w)``
in the design's row order.  Every replicate has its own random stream,
spawned from one seed (``numpy.random.SeedSequence(seed).spawn``), so a
replicate's draws do not depend on how the replicates are split between
jobs.

:func:`design_for_response` binds a new response to a design without
rebuilding or re-validating it: ``X``, ``Z``, the groupings and every
cross-product of ``X`` and ``Z`` are shared; only the working response
``yw`` (the OLS residual of ``y``), ``Z'yw`` and ``yw'yw`` are new.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Optional, Sequence

import numpy as np
import scipy.sparse as sp

from ..core.linalg import grouped_crossprod
from ..design.types import Design, WorkingFixedPart
from ..fit.objective import Objective


def check_simulable(design: Design) -> None:
    """Simulation needs independent residuals and no sampling/frequency weights."""
    if not design.spec.residual.is_plain:
        raise NotImplementedError("simulating from a model with a residual structure (%s) is not implemented"
                                  % design.spec.residual.kind)
    if design.weights is not None and not design.weights.is_precision:
        raise NotImplementedError("simulation is not defined for sampling or frequency weights "
                                  "(a pseudo-likelihood has no generating model)")


def seed_sequence(seed) -> np.random.SeedSequence:
    """A fresh :class:`numpy.random.SeedSequence` for ``seed`` (an int, None, or a
    SeedSequence, copied so that spawning from it twice gives the same streams)."""
    if isinstance(seed, np.random.SeedSequence):
        return np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key, pool_size=seed.pool_size)
    return np.random.SeedSequence(seed)


def replicate_seeds(seed, n: int) -> list[np.random.SeedSequence]:
    """The seeds of ``n`` replicates: replicate ``i`` gets the ``i``-th child of ``seed``."""
    return seed_sequence(seed).spawn(int(n))


def _row_scale(design: Design) -> Optional[np.ndarray]:
    """Square roots of the precision weights (None without weights)."""
    return None if design.weights is None else np.sqrt(design.weights.total_obs)


def level_columns(design: Design) -> list[tuple[int, slice]]:
    """``(level index, columns of Z)`` of every level with random effects, in ``Z``'s order."""
    out, start = [], 0
    for li in design.re_level_indices():
        q = design.levels[li].q
        out.append((li, slice(start, start + q)))
        start += q
    return out


def random_part(design: Design, objective: Objective, theta: np.ndarray, sigma2: float,
                streams: Sequence[np.random.Generator]) -> np.ndarray:
    """``Z b*`` for each stream: ``(n, len(streams))``, ``b* ~ N(0, sigma2 Lambda Lambda')``."""
    parts, _ = objective.split_theta(theta)
    factors = iter([b.structure.relative_factor(t) for b, t in zip(objective.blocks, parts)])
    by_level = {}
    for lvl_blocks in [lvl.blocks for lvl in design.levels]:
        for blk in lvl_blocks:
            by_level[id(blk)] = next(factors)
    out = np.zeros((design.n, len(streams)))
    scale = np.sqrt(sigma2)
    for li, cols in level_columns(design):
        lvl = design.levels[li]
        # per group: each block's effects kron(I_k, L) u, u ~ N(0, I)
        draws = [rng.standard_normal((lvl.n_groups, lvl.q)) for rng in streams]
        b = np.stack(draws)  # (S, G, q)
        start = 0
        for blk in lvl.blocks:
            L = by_level[id(blk)]
            k, q = blk.n_expand, blk.structure.q
            seg = b[:, :, start:start + k * q].reshape(len(streams), lvl.n_groups, k, q)
            b[:, :, start:start + k * q] = (seg @ L.T).reshape(len(streams), lvl.n_groups, k * q)
            start += k * q
        out += scale * zb_rows(design.Z[:, cols], b, lvl.codes)
    return out


def zb_rows(Zl, b: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Row contributions ``Z_l[i] . b[s, codes[i]]`` for each stream ``s``: ``(n, S)``."""
    if b.shape[1] == 1:  # one group (crossed designs: the indicator columns carry the levels)
        return np.asarray(Zl @ b[:, 0, :].T)
    Zd = Zl.toarray() if sp.issparse(Zl) else np.asarray(Zl)
    return np.einsum("iq,siq->is", Zd, b[:, codes, :])


def simulate_responses(design: Design, objective: Objective, theta: np.ndarray, beta: np.ndarray, sigma2: float,
                       streams: Sequence[np.random.Generator], zb_fixed: Optional[np.ndarray] = None) -> np.ndarray:
    """``(n, len(streams))`` new responses in the design's row order.

    ``zb_fixed``: a fixed random part (the BLUPs' ``Z b_hat``: simulation
    conditional on the random effects) instead of new draws.
    """
    check_simulable(design)
    S = len(streams)
    mean = design.X @ beta
    if zb_fixed is None:
        zb = random_part(design, objective, theta, sigma2, streams)
    else:
        zb = np.repeat(np.asarray(zb_fixed, float)[:, None], S, axis=1)
    e = np.column_stack([rng.standard_normal(design.n) for rng in streams]) * np.sqrt(sigma2)
    w = _row_scale(design)
    if w is not None:
        e = e / w[:, None]
    return mean[:, None] + zb + e


def working_response(design: Design, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(yw, b_ols)`` for each column of ``Y``: the OLS residuals in the working
    metric (rows scaled by the weights) and the OLS coefficients."""
    w = _row_scale(design)
    Ys = Y if w is None else Y * w[:, None]
    Xw = design.Xw
    if not design.p:
        return Ys, np.zeros((0, Y.shape[1]))
    c = Xw.T @ Ys
    return Ys - Xw @ c, design.Rx_inv @ c


def response_crossproducts(design: Design, yw: np.ndarray) -> np.ndarray:
    """Per-panel ``Z'yw`` for each column of ``yw``: ``(G, Q, S)``."""
    w = _row_scale(design)
    Z = design.Z if w is None else design.Z * w[:, None]
    return grouped_crossprod(Z, yw, design.panel_codes, design.n_panels)


def design_for_response(design: Design, y: np.ndarray, yw: Optional[np.ndarray] = None,
                        b_ols: Optional[np.ndarray] = None, zty: Optional[np.ndarray] = None) -> Design:
    """``design`` with the response ``y`` (design row order); the parts of ``y``
    may be passed in when computed for many responses at once."""
    y = np.asarray(y, dtype=float)
    if yw is None:
        yw1, b1 = working_response(design, y[:, None])
        yw, b_ols = yw1[:, 0], b1[:, 0]
    w = design.working
    # the working part keeps X and the response; its yw, (y - X b_ols) scaled, is the OLS residual above
    working = WorkingFixedPart(w.X, y, w.row_scale, w.Rx, w.Rx_inv, w.logdet_Rx2, b_ols)
    XYtXY = None
    if design.XYtXY is not None:
        XYtXY = design.XYtXY.copy()
        XYtXY[-1, :] = 0.0
        XYtXY[:, -1] = 0.0
        XYtXY[-1, -1] = float(yw @ yw)  # Xw'yw = 0: yw is the OLS residual
    ZtXY = None
    if design.ZtXY is not None:
        ZtXY = design.ZtXY.copy()
        ZtXY[:, :, -1] = response_crossproducts(design, yw[:, None])[:, :, 0] if zty is None else zty
    return replace(design, y=y, working=working, ZtXY=ZtXY, XYtXY=XYtXY)
