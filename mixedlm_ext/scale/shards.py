"""Per-group statistics kept on the workers: shards of whole top-level clusters.

With millions of groups the per-panel statistics (``Z'Z`` and ``Z'[X y]``:
``Q (Q + p + 1)`` numbers per panel) may be too large for the client.  They
then stay on the workers, in shards that each hold whole top-level clusters
(consecutive ones, so the shards' groups in shard order are the groups in
the design's order).  The likelihood of a nested model is a sum over the
top-level clusters, so each evaluation is a map over the shards -- each
eliminates its clusters' random effects with the nested engine and returns
its share of ``log|P|`` and of the Schur complement of ``[X y]`` (``(p+1)^2``
numbers) -- and a sum on the client: :class:`ShardedObjective`.  The BLUPs
are computed shard by shard too.  The client keeps what does not grow with
``Q``: ``X'X``, the per-cluster ``[X y]'[X y]``, the groups' keys, parents,
sizes and weights.

Not in this mode (refused by name): crossed designs and residual structures
(their statistics are gathered on the client), EM iterations (the
quasi-Newton stage starts from lme4's default), robust standard errors.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Optional

import numpy as np
import pandas as pd

from ..design.statistics import SufficientStatistics
from ..design.statistics_design import StatisticsDesign, design_from_statistics
from ..engines.nested import Elimination
from ..fit.gradient import b_adjoint, block_factor_gradients
from ..fit.objective import Evaluation, Objective
from .frames import import_dask

MAX_CLIENT_ELEMENTS = 25_000_000  # per-panel statistics gathered on the client (auto): 200 MB


class Shard:
    """Whole top-level clusters' statistics bound to their own design and objective
    (made and kept on a worker), in the whole data's coding and metric."""

    def __init__(self, stats: SufficientStatistics, metric: tuple):
        self.design = design_from_statistics(stats, metric)
        self.objective = Objective(self.design)
        self._last = None  # (Lam, rho, elimination) of the last elimination, for the gradient's second map

    def __getstate__(self) -> dict:  # a shard sent elsewhere travels without its last elimination
        return {**self.__dict__, "_last": None}

    def eliminate(self, Lam, rho: np.ndarray) -> tuple[float, np.ndarray, float]:
        elim, logdet_R = self.objective.eliminate(Lam, rho, keep=True)  # keep: references, no extra work
        self._last = (Lam, rho, elim)
        return elim.logdet, elim.B, logdet_R

    def lambda_adjoint(self, Lam, rho: np.ndarray, B_bar: np.ndarray) -> np.ndarray:
        """The shard's ``d f / d Lambda``, from its last elimination when that was at
        ``(Lam, rho)`` (a shard that lives on a worker keeps it between the two maps of a
        gradient; a shard sent to the task anew eliminates again)."""
        last = self._last
        same = last is not None and np.array_equal(last[0], Lam) and np.array_equal(last[1], rho)
        return self.objective.lambda_adjoint(Lam, rho, B_bar, last[2] if same else None)


def shard_eliminate(shard: Shard, Lam, rho: np.ndarray):
    return shard.eliminate(Lam, rho)


def shard_lambda_adjoint(shard: Shard, Lam, rho: np.ndarray, B_bar: np.ndarray) -> np.ndarray:
    return shard.lambda_adjoint(Lam, rho, B_bar)


def light_statistics(stats: SufficientStatistics) -> SufficientStatistics:
    """The statistics without the per-panel cross-products (what the client keeps)."""
    sums = {k: v for k, v in stats.panels.sums.items() if k not in ("ZtZ", "ZtW")}
    return replace(stats, panels=replace(stats.panels, sums=sums))


def split_statistics(stats: SufficientStatistics, clusters: pd.DataFrame, starts: np.ndarray) -> list:
    """``stats`` cut into the shards of the clusters (``clusters``: every top-level
    cluster's key, sorted; shard ``b`` holds clusters ``starts[b]`` to ``starts[b+1]-1``)."""
    path = list(clusters.columns)
    index = pd.MultiIndex.from_frame(clusters)

    def shard_of(keys: pd.DataFrame) -> np.ndarray:
        pos = index.get_indexer(pd.MultiIndex.from_frame(keys[path])) if len(keys) else np.zeros(0, dtype=np.intp)
        return np.searchsorted(starts, pos, side="right") - 1

    ps, cs = shard_of(stats.panels.keys), shard_of(stats.clusters.keys)
    out = []
    for b in range(starts.size):
        panels = stats.panels.take(np.flatnonzero(ps == b))
        n = int(panels.sums["count"].sum())
        out.append(replace(stats, n=n, n_rows=n, n_dropped=0, panels=panels,
                           clusters=stats.clusters.take(np.flatnonzero(cs == b))))
    return out


def can_shard(layout) -> Optional[str]:
    """Why the statistics cannot be sharded (None when they can)."""
    res = layout.spec.residual
    if layout.sparse:
        return "crossed random effects (their cross-products couple every group)"
    if not res.is_plain:
        return "a residuals() structure"
    if not layout.top_path:
        return "a model without a grouping level"
    if layout.weights == "pweight":
        return "sampling weights (their robust standard errors)"
    return None


@dataclass(frozen=True, eq=False)
class ShardedDesign(StatisticsDesign):
    """A :class:`StatisticsDesign` whose per-panel cross-products are on the workers (``shards``)."""

    shards: tuple = field(repr=False, default=())


def sharded_design(dask, light: SufficientStatistics, parts: list, n_shards: int) -> ShardedDesign:
    """The design of ``light`` (merged, without per-panel cross-products) whose shards
    are made on the workers from the persisted per-partition statistics ``parts``."""
    base = design_from_statistics(light)
    clusters = base.levels[0].keys[list(base.levels[0].path)]
    C = len(clusters)
    n_shards = max(1, min(n_shards, C))
    starts = np.unique(np.linspace(0, C, n_shards + 1).astype(np.intp)[:-1])
    keys, cut, metric = (dask.delayed(x, pure=True) for x in (clusters, starts, base.metric))
    pieces = [dask.delayed(split_statistics, nout=starts.size, pure=True)(p, keys, cut) for p in parts]
    shards = []
    for b in range(starts.size):
        merged = dask.delayed(sum, pure=True)([pc[b] for pc in pieces])
        shards.append(dask.delayed(Shard, pure=True)(merged, metric))
    shards = dask.persist(*shards)
    values = {f.name: getattr(base, f.name) for f in fields(base)}
    return ShardedDesign(**values, shards=tuple(shards))


class ShardedObjective(Objective):
    """The objective of a :class:`ShardedDesign`: every elimination is a map over the
    shards and a sum (the per-group factors stay on the workers)."""

    keeps_factors = False

    def eliminate(self, Lam, rho: np.ndarray, keep: bool = False) -> tuple[Elimination, float]:
        logdets, Bs, logdets_R = zip(*self.map_shards(shard_eliminate, Lam, rho))
        return Elimination(float(sum(logdets)), sum(Bs), None), float(sum(logdets_R))

    def gradient_pieces(self, theta: np.ndarray, coef_r2=None) -> tuple[Evaluation, np.ndarray]:
        """As :meth:`Objective.gradient_pieces`, in two maps over the shards: the
        elimination, then (with ``d f / d B`` of the summed Schur complement) each
        shard's share of ``d f / d Lambda``."""
        parts, rho = self.split_theta(theta)
        lam = self._factor_args(parts)
        elim, logdet_R = self.eliminate(lam, rho)
        ev = self._evaluation(elim.B, elim.logdet, logdet_R)
        if not self.n_theta_re:
            return ev, np.zeros(0)
        c = self.n_eff / ev.r2 if coef_r2 is None else coef_r2(ev)
        B_bar = b_adjoint(ev, c, self.reml)
        Lam_bar = sum(self.map_shards(shard_lambda_adjoint, lam, rho, B_bar))
        return ev, self._jacobians.theta_gradient(parts, block_factor_gradients(Lam_bar, self._positions))

    def map_shards(self, fn, *args) -> list:
        """``fn(shard, *args)`` on every shard, where it lives; the results in shard order."""
        dask, _ = import_dask()
        return list(dask.compute(*[dask.delayed(fn, pure=True)(s, *args) for s in self.design.shards]))
