"""Frequency and sampling weights at every level: the pseudo-likelihood.

Stata's ``mixed`` accepts weights at the observation level (``[fw=w1]``,
``[pw=w1]``) and at each higher level (``fweight(w2)``/``pweight(w2)`` in a
level's equation).  A weight at a level is *conditional*: ``w_{i|j}`` for an
observation given its group ``j``, ``w_{j|k}`` for a group given its parent
``k``, ``w_k`` for a top-level group.  The (pseudo-)log-likelihood of a
three-level model is

    l = sum_k w_k log Int [ prod_j ( Int prod_i f(y_ijk | u)^{w_{i|jk}} phi(u_jk) du_jk )^{w_{j|k}} ]
                          phi(u_k) du_k

With integer frequency weights this is exactly the log-likelihood of the data
with every observation (group) repeated ``w`` times.  For the Gaussian model
every integral stays closed-form.  Writing ``a_i = w_{i|jk} w_{j|k} w_k`` for
an observation's *total* weight and ``a_g`` for the product of the weights
from the top down to group ``g``:

* the cross-products ``Z'Z, Z'X, X'X, ...`` are computed with weights
  ``a_i`` (rows scaled by ``sqrt(a_i)``);
* eliminating group ``g``'s random effects uses ``Lambda' Z_g'A Z_g Lambda +
  a_g I`` (the penalty ``|u_g|^2`` of a group counts ``a_g`` times) and adds
  ``a_g (log|Lambda' Z_g'A Z_g Lambda + a_g I| - q log a_g)`` to the
  log-determinant, i.e. ``a_g`` times the group's own conditional
  log-determinant ``log|Lambda' Z_g' W_{.|g} Z_g Lambda + I|``;
* the Schur complements are those of the ``a``-weighted system;
* ``n`` in ``n log(2 pi sigma2)`` (and in the profiled ``sigma2 = r2 / n``)
  becomes ``sum_i a_i``.

:class:`~mixedlm_ext.engines.nested.NestedEngine` takes these group weights
(all ones gives the unweighted engine); it can also return every top-level
cluster's share of the log-determinant and of the Schur complement, which
:mod:`mixedlm_ext.inference.robust` uses for cluster scores.

Scaling of level-one sampling weights (``pwscale()``, two-level models,
following the Survey data section of Stata's [ME] mixed manual): within
group ``j`` with ``n_j`` observations and weights ``w_{i|j}``

* ``size``:       ``w*_{i|j} = w_{i|j} n_j / sum_i w_{i|j}`` (they sum to ``n_j``);
* ``effective``:  ``w*_{i|j} = w_{i|j} sum_i w_{i|j} / sum_i w_{i|j}^2`` (they sum
  to the effective size ``(sum w)^2 / sum w^2``);
* ``gk`` (Graubard and Korn 1996): ``w*_j = w_j sum_i w_{i|j} / n_j`` (the
  group average of the products ``w_{i|j} w_j``) and ``w*_{i|j} = 1``.

Refusals (as Stata): REML with weights; frequency and sampling weights
mixed; weights that vary within a group of their level; observation-level
weights with a residual structure other than independent.  Not supported
here: weights with crossed random effects or with any ``residuals()``
structure, and ``pwscale()`` outside two-level models.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..core.errors import ModelSpecificationError
from .validate import group_range

__all__ = ["WeightInfo", "bind_weights", "scale_level_one", "weight_kind", "level_totals"]


@dataclass
class WeightInfo:
    """Weights bound to a design (rows sorted as the design's)."""

    kind: str  # "fweight", "pweight" or "precision"
    pwscale: Optional[str]
    obs: np.ndarray  # (n,) conditional observation-level weights (after pwscale)
    level: list  # per design level (coarsest first): (G,) conditional group weights
    level_total: list  # per design level: (G,) product of the weights from the top down
    total_obs: np.ndarray  # (n,) a_i, the total weight of each observation
    total: float  # sum of a_i
    levels_weighted: tuple  # labels of the levels given weights ("_obs" for level one)

    @property
    def is_frequency(self) -> bool:
        return self.kind == "fweight"

    @property
    def is_sampling(self) -> bool:
        """Sampling weights: the likelihood is a pseudo-likelihood (robust SEs)."""
        return self.kind == "pweight"

    @property
    def is_precision(self) -> bool:
        """lme4's precision weights: ``Var(e_i) = sigma2 / w_i``, nothing else changes."""
        return self.kind == "precision"

    @property
    def neg2_logdet(self) -> float:
        """``-2 log`` of the Jacobian of the row scaling: ``-sum(log w)`` for precision
        weights (added to -2 log-likelihood), 0 otherwise."""
        return -float(np.log(self.total_obs).sum()) if self.is_precision else 0.0


def scale_level_one(w: np.ndarray, groups: np.ndarray, method: str,
                    group_w: Optional[np.ndarray] = None) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Stata's ``pwscale()`` for a two-level model.

    Parameters
    ----------
    w : (n,) level-one weights ``w_{i|j}``
    groups : (n,) group index ``j`` of each observation (0..G-1)
    method : ``"size"``, ``"effective"`` or ``"gk"``
    group_w : (G,) level-two weights ``w_j`` (ones if None)

    Returns
    -------
    (w_star, group_w_star)
    """
    w = np.asarray(w, dtype=float)
    G = int(groups.max()) + 1 if len(groups) else 0
    gw = np.ones(G) if group_w is None else np.asarray(group_w, dtype=float)
    n_j = np.bincount(groups, minlength=G).astype(float)
    s1 = np.bincount(groups, weights=w, minlength=G)
    if method == "size":
        return w * (n_j / s1)[groups], gw
    if method == "effective":
        s2 = np.bincount(groups, weights=w * w, minlength=G)
        return w * (s1 / s2)[groups], gw
    if method == "gk":
        return np.ones_like(w), gw * s1 / n_j
    raise ValueError("pwscale must be size, effective or gk, got %r" % (method,))


def _weight_context(w) -> str:
    """Where a weight specification applies, as the error messages say it."""
    if w.kind == "precision":
        return "precision weights"
    return "observation level" if w.level is None else "level %s" % w.level


def check_weight_values(v: np.ndarray, w) -> None:
    """A weight variable's values: finite, positive, integers for frequency weights."""
    if not np.all(np.isfinite(v)):
        raise ModelSpecificationError("weight variable '%s' has missing or infinite values" % w.var)
    if np.any(v <= 0):
        raise ModelSpecificationError("weight variable '%s' must be positive (%s)" % (w.var, _weight_context(w)))
    if w.kind == "fweight" and np.any(v != np.round(v)):
        raise ModelSpecificationError("frequency weights must be integers ('%s')" % w.var)


def level_weight(lo: np.ndarray, hi: np.ndarray, w) -> np.ndarray:
    """The per-group weights of a level from their smallest and largest value per group
    (refused when they vary within a group)."""
    if np.any(hi - lo > 1e-12 * np.maximum(np.abs(hi), 1.0)):
        g = int(np.argmax(hi - lo))
        raise ModelSpecificationError(
            "weight variable '%s' varies within group %d of level %s; weights at a level must be "
            "constant within its groups" % (w.var, g + 1, w.level))
    return lo


def _column(design, w) -> np.ndarray:
    if w.var not in design.table.columns:
        raise ModelSpecificationError("weight variable '%s' not found (%s)" % (w.var, _weight_context(w)))
    v = design.table.floats(w.var)
    check_weight_values(v, w)
    return v


def _precision_weights(design, spec) -> WeightInfo:
    """lme4's ``weights=``: the rows are scaled by ``sqrt(w)``; groups are not weighted."""
    w = _column(design, spec)
    ones = [np.ones(lvl.n_groups) for lvl in design.levels]
    return WeightInfo("precision", None, w, ones, ones, w, float(design.n), ("_obs",))


def weight_kind(spec, sparse_re: bool, levels: list) -> Optional[str]:
    """The kind of the specification's weights (None: no weights), after the
    checks that need no data: Stata's refusals and what is not supported here
    (``levels``: the design's levels, coarsest first)."""
    specs = tuple(spec.weights)
    pwscale = spec.pwscale
    if not specs:
        if pwscale is not None:
            raise ModelSpecificationError("pwscale() requires sampling weights ([pw=var] and/or pweight())")
        return None
    kinds = {w.kind for w in specs}
    if len(kinds) > 1:
        if "precision" in kinds:
            raise ModelSpecificationError("precision weights cannot be combined with frequency or sampling weights")
        raise ModelSpecificationError("frequency weights and sampling weights cannot be combined")
    kind = kinds.pop()
    res = spec.residual
    if kind == "precision":
        if not res.is_plain:
            raise ModelSpecificationError("precision weights with a residuals() structure are not supported")
        if sparse_re:
            raise ModelSpecificationError("precision weights with crossed random effects are not supported yet")
        return kind
    if spec.reml:
        raise ModelSpecificationError(
            "%ss are not allowed with REML: the weighted (pseudo-)likelihood is defined for ML only "
            "(Stata refuses reml with weights)" % kind)
    if sparse_re:
        raise ModelSpecificationError("weights are not supported with crossed random effects")
    obs_spec = [w for w in specs if w.level is None]
    if not res.is_plain:
        if obs_spec:
            raise ModelSpecificationError(
                "observation-level weights are not allowed with residuals(%s%s): the residuals of a "
                "panel are correlated (Stata refuses this combination)"
                % (res.kind, ", by()" if res.by else ""))
        raise ModelSpecificationError("weights with a residuals() structure are not supported")
    if pwscale is not None:
        if kind != "pweight":
            raise ModelSpecificationError("pwscale() is only allowed with sampling weights (pweights)")
        if len([l for l in levels if l.path]) != 1:
            raise ModelSpecificationError("pwscale() is only allowed with two-level models")
    labels = [l.label for l in levels]
    for w in specs:
        if w.level is not None and w.level not in labels:
            raise ModelSpecificationError("weights given for level '%s', which is not a level of the model"
                                          % w.level)
    return kind


def level_totals(levels, level_w: list) -> list:
    """Per level (coarsest first): each group's product of the conditional weights
    from the top level down to it (``level_w``: each level's own group weights)."""
    totals = []
    for li, lvl in enumerate(levels):
        t = np.asarray(level_w[li], dtype=float).copy()
        if li > 0 and lvl.parent is not None:
            t = t * totals[li - 1][lvl.parent]
        totals.append(t)
    return totals


def bind_weights(design) -> Optional[WeightInfo]:
    """Validate the specification's weights against a design's levels and bind
    them to its rows; None without weights.  ``design`` needs ``spec``,
    ``levels``, ``data``, ``n`` and ``sparse_re`` (the cross-products are
    computed from the result by the design stage)."""
    spec = design.spec
    kind = weight_kind(spec, design.sparse_re, design.levels)
    if kind is None:
        return None
    specs = tuple(spec.weights)
    pwscale = spec.pwscale
    if kind == "precision":
        return _precision_weights(design, specs[0])
    obs_spec = [w for w in specs if w.level is None]
    n = design.n
    obs = _column(design, obs_spec[0]) if obs_spec else np.ones(n)
    labels = [l.label for l in design.levels]
    level_w = [np.ones(l.n_groups) for l in design.levels]
    for w in specs:
        if w.level is None:
            continue
        li = labels.index(w.level)
        lvl = design.levels[li]
        v = _column(design, w)
        level_w[li] = level_weight(*group_range(v, lvl.codes, lvl.n_groups), w)
    if pwscale is not None:
        li = [i for i, l in enumerate(design.levels) if l.path][0]
        obs, level_w[li] = scale_level_one(obs, design.levels[li].codes, pwscale, level_w[li])
    totals = level_totals(design.levels, level_w)
    a = obs * totals[-1][design.levels[-1].codes] if design.levels else obs.copy()
    info = WeightInfo(kind, pwscale, obs, level_w, totals, a, float(a.sum()),
                      tuple("_obs" if w.level is None else w.level for w in specs))
    return info
