"""Residual structures from per-panel sufficient statistics.

With ``W = [Z X y]`` the rows of a panel, a residual structure enters the
likelihood through ``W' C^{-1} W`` and ``log|C|`` per panel.  Three kinds
have sufficient statistics whose size does not grow with the panel:

* ``independent`` with ``by()``: ``C`` is diagonal with one variance ratio
  per by-group, so ``W'W`` per (panel, by-group) suffices;
* ``exchangeable``: ``C^{-1} = (I - g 11') / (1 - r)``, so ``W'W``, ``W'1``
  and the size of each panel suffice;
* ``ar #`` on integer ``t()`` without gaps within panels: the first ``p``
  rows of a panel are whitened by the stationary ``p x p`` correlation and
  the rest by the AR filter, so the products of the first ``p`` rows and
  the lag-``a``/lag-``b`` sums ``sum_t w_{t-a} w_{t-b}'`` suffice (the
  lagged cross-products; a panel's rows must then be in one chunk);
* ``ar 1`` and ``exponential``, gaps allowed: per-gap sums
  (:mod:`.statistics_markov`).

MA, Toeplitz, banded and unstructured residuals have no such statistics:
their inverse correlation is dense within a panel, so every evaluation
needs the rows themselves (products of every pair of a panel's rows are as
large as the rows); they and AR(p > 1) with gaps in ``t`` are refused out of
core with an error that names them.

:func:`residual_table` computes a chunk's statistics;
:class:`StatisticsResidual` is the residual structure of a design made from
statistics (:mod:`.statistics_design`).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd

from ..core.errors import ModelSpecificationError
from ..core.linalg import group_starts, grouped_crossprod
from ..structures.residual.autocorrelation import ar_acf
from ..structures.residual.exchangeable import ExchangeableKernel
from ..structures.residual.kernel import format_time
from ..structures.residual.registry import KERNELS
from ..structures.residual.structure import PanelResidual, panel_label
from ..structures.residual.whitening import ARBandWhitener, PanelRows
from .groups import group_codes
from .statistics import KeyedTable
from .statistics_markov import (GAP, MarkovStatistics, check_distinct_times, check_integer_times, empty_markov,
                                is_markov, markov_table, median_gap)

SUPPORTED = ("independent", "exchangeable", "ar", "exponential")


def check_residual_supported(spec) -> None:
    """Refuse the residual structures that have no per-panel sufficient statistics here."""
    res = spec.residual
    if res.kind in SUPPORTED:
        return
    text = res.kind + (" %d" % res.order if res.order is not None else "")
    why = ("its inverse residual correlation is dense within a panel, so each evaluation of the likelihood "
           "needs the panel's rows, not a fixed set of per-panel statistics")
    raise ModelSpecificationError(
        "residuals(%s) is not available out of core (Dask, sufficient statistics): %s. Out of core: "
        "residuals(independent[, by()]), residuals(exchangeable), residuals(exponential), residuals(ar 1) and "
        "residuals(ar #) with integer t() without gaps; otherwise fit the data in memory (a pandas "
        "DataFrame)" % (text, why))


def _ar_order(res) -> int:
    """The order of ``residuals(ar #)`` (its default when not given)."""
    return int(res.order) if res.order is not None else KERNELS["ar"].default_order


def _empty(layout, cols: list) -> KeyedTable:
    res = layout.spec.residual
    K = layout.Q + layout.k
    keys = layout.meta[cols].iloc[:0].reset_index(drop=True)
    if is_markov(res):
        return empty_markov(keys, K)
    sums = {"count": np.zeros(0), "F": np.zeros((0, K, K))}
    if res.kind == "exchangeable":
        sums["s"] = np.zeros((0, K))
    if res.kind == "ar":
        p = _ar_order(res)
        sums = {"count": np.zeros(0), "H": np.zeros((0, p, p, K, K)), "S": np.zeros((0, p + 1, p + 1, K, K))}
    return KeyedTable(keys, sums, complete=res.kind == "ar")


def _ar_statistics(spec, keys: pd.DataFrame, codes: np.ndarray, t: np.ndarray, V: np.ndarray) -> dict:
    """Per panel: products of the first ``p`` rows and the lagged cross-products (rows sorted by t)."""
    p, name = _ar_order(spec.residual), spec.residual.time
    text = "residuals(ar %d)" % p
    check_integer_times(text, name, t)
    same = check_distinct_times(text, name, t, codes, keys)
    gap = np.flatnonzero(same & (t[1:] - t[:-1] != 1.0))
    if gap.size:
        i = gap[0]
        raise ModelSpecificationError(
            "%s out of core needs t(%s) without gaps within panels (the lagged cross-products are its "
            "sufficient statistics); panel %s has %s=%s followed by %s=%s"
            % (text, name, panel_label(keys, codes[i]), name, format_time(t[i]), name, format_time(t[i + 1])))
    G, n = len(keys), len(codes)
    starts = group_starts(codes)
    sizes = np.diff(np.append(starts, n))
    pos = starts[:, None] + np.arange(p)[None, :]
    head = np.where((np.arange(p)[None, :] < sizes[:, None])[:, :, None], V[np.minimum(pos, n - 1)], 0.0)
    K = V.shape[1]
    S = np.zeros((G, p + 1, p + 1, K, K))
    long = np.flatnonzero(sizes > p)
    if long.size:
        S[long] = ARBandWhitener(PanelRows(np.arange(n), codes, t, V), p, long).S
    return {"count": sizes.astype(float), "H": np.einsum("eik,ejl->eijkl", head, head), "S": S}


def residual_table(layout, df: Optional[pd.DataFrame], V: Optional[np.ndarray]) -> Optional[KeyedTable]:
    """The residual structure's statistics of a chunk (rows of ``df`` sorted by panel,
    by-group and time; ``V = [Z X y]`` of its rows); None for the plain residual."""
    spec = layout.spec
    res = spec.residual
    if res.is_plain:
        return None
    cols = list(layout.panel_path) + ([res.by] if res.by is not None else [])
    if df is None:
        return _empty(layout, cols)
    codes, keys = group_codes(df, tuple(cols))
    if is_markov(res):
        t = df[res.time].to_numpy(dtype=float)
        if res.kind == "ar":
            check_integer_times("residuals(ar 1)", res.time, t)
        return markov_table(res, keys, codes, t, V)
    if res.kind == "ar":
        return KeyedTable(keys, _ar_statistics(spec, keys, codes, df[res.time].to_numpy(dtype=float), V),
                          complete=True)
    starts = group_starts(codes)
    sums = {"count": np.diff(np.append(starts, len(codes))).astype(float),
            "F": grouped_crossprod(V, V, codes, len(keys))}
    if res.kind == "exchangeable":
        sums["s"] = np.add.reduceat(V, starts, axis=0)
    return KeyedTable(keys, sums)


def _parameter_kernel(kind: str, order: Optional[int], time_name: Optional[str], gap: float = 1.0):
    """A kernel made on one small panel with successive times ``gap`` apart: its
    parameters (names, bounds, metrics) do not depend on the data for the kinds
    with statistics, but for the exponential start (the median gap)."""
    cls = KERNELS[kind]
    m = (order or 1) + 1
    rows = PanelRows(np.arange(m), np.zeros(m, dtype=np.intp), gap * np.arange(m, dtype=float), np.zeros((m, 1)))
    return cls(rows, order, time_name)


class _ARStatistics:
    """AR(p) evaluation from head products and lagged cross-products."""

    def __init__(self, p: int, H: np.ndarray, S: np.ndarray, sizes: np.ndarray):
        self.p, self.H, self.sizes = p, H, sizes
        long = np.flatnonzero(sizes > p)
        self.band = ARBandWhitener.from_statistics(p, H[long], S[long], sizes[long], long) if long.size else None
        self.short = [(m, np.flatnonzero(sizes == m)) for m in np.unique(sizes[sizes <= p])]

    def full(self, rho: np.ndarray) -> tuple[np.ndarray, float]:
        acf, phi, innov = ar_acf(np.tanh(rho), self.p)
        K = self.H.shape[-1]
        F = np.zeros((self.sizes.size, K, K))
        ld = self.band.compute(acf, phi, innov, F) if self.band is not None else 0.0
        for m, ids in self.short:  # panels of at most p rows: their own stationary correlation
            m = int(m)
            C = acf[np.abs(np.arange(m)[:, None] - np.arange(m)[None, :])]
            sign, lg = np.linalg.slogdet(C)
            if sign <= 0:
                raise np.linalg.LinAlgError("AR correlation is not positive definite")
            F[ids] += np.tensordot(np.linalg.inv(C), self.H[ids, :m, :m], axes=([0, 1], [1, 2]))
            ld += ids.size * lg
        return F, float(ld)


class StatisticsResidual(PanelResidual):
    """A :class:`PanelResidual` bound to a design made from sufficient statistics:
    the kernels' parameters as in memory, their cross-products from the
    per-panel statistics (``design.residual_table``, in the working metric)."""

    def _bind_kernels(self, design) -> tuple[list, list]:
        spec = self.spec
        table = design.residual_table
        path = list(design.levels[-1].path) if design.levels else []
        panel_keys = design.levels[-1].keys if design.levels else None
        if path:
            panel_of = pd.MultiIndex.from_frame(panel_keys[path]).get_indexer(pd.MultiIndex.from_frame(table.keys[path]))
        else:
            panel_of = np.zeros(len(table), dtype=np.intp)
        by_vals = table.keys[spec.by].to_numpy() if spec.by is not None else np.zeros(len(table))
        sub = pd.DataFrame({"p": panel_of, "b": by_vals}).drop_duplicates()["p"].to_numpy()
        if spec.by is not None and not self.kernel_cls.by_may_vary and np.unique(sub).size < sub.size:
            dup = np.sort(sub)[np.flatnonzero(np.diff(np.sort(sub)) == 0)[0]]
            lvl = design.levels[-1].label if design.levels else "_all"
            raise self._error("by(%s) varies within panels of level %s (panel %s); by() must be constant within "
                              "panels except with residuals(independent)" % (spec.by, lvl, panel_label(panel_keys, dup)))
        values = np.unique(by_vals) if spec.by is not None else np.array([None], dtype=object)
        kernels, self._groups = [], []
        for value in values:
            sel = np.flatnonzero(by_vals == value) if spec.by is not None else np.arange(len(table))
            kern, evaluator = self._kernel(table, sel, value)
            kernels.append(kern)
            self._groups.append((panel_of[sel], float(table.sums["count"][sel].sum()), evaluator))
        self._check_identified(design, None, None, kernels)
        return list(values), kernels

    def _kernel(self, table: KeyedTable, sel: np.ndarray, by_value):
        """The kernel of one by-group (parameters) and what evaluates its cross-products."""
        spec, kind = self.spec, self.spec.kind
        sizes = table.sums["count"][sel]
        where = "" if spec.by is None else " (by %s=%s)" % (spec.by, by_value)
        if kind == "exchangeable":
            try:
                kern = ExchangeableKernel.from_statistics(table.sums["F"][sel], table.sums["s"][sel], sizes)
            except ValueError as exc:
                raise ModelSpecificationError(str(exc) + where) from None
            return kern, kern
        if is_markov(spec):
            gaps, count = table.keys[GAP].to_numpy(dtype=float)[sel], table.sums["count"][sel]
            if not np.any(gaps > 0):
                raise self._error("every panel has a single observation%s" % where)
            kern = _parameter_kernel(kind, 1 if kind == "ar" else None, spec.time, median_gap(gaps, count))
            return kern, MarkovStatistics(kern, gaps, table.sums["S0"][sel], table.sums["S1"][sel],
                                          table.sums["S2"][sel], count)
        if kind == "ar":
            p = _ar_order(spec)
            if p >= sizes.max():
                raise self._error("the order must be smaller than the largest panel (%d observations)%s"
                                  % (sizes.max(), where))
            return (_parameter_kernel(kind, p, spec.time),
                    _ARStatistics(p, table.sums["H"][sel], table.sums["S"][sel], sizes.astype(int)))
        F = table.sums["F"][sel]
        return _parameter_kernel(kind, None, spec.time), _Constant(F)

    def full(self, rho: np.ndarray) -> tuple[np.ndarray, float]:
        parts, ratios = self._split(rho)
        d = self.design
        K = self._Q + d.p + 1
        F = np.zeros((d.n_panels, K, K))
        ld = 0.0
        for (panels, n_rows, evaluator), p, r in zip(self._groups, parts, ratios):
            Fg, lg = evaluator.full(p)
            np.add.at(F, panels, Fg / r)
            ld += lg + n_rows * np.log(r)
        if not np.isfinite(ld):
            raise np.linalg.LinAlgError("residual covariance is not positive definite")
        return F, float(ld)

    def correlation(self, rho: np.ndarray, panel: int) -> np.ndarray:
        raise NotImplementedError("the residual correlation of one panel needs its rows; the design was made "
                                  "from sufficient statistics (rows_correlation takes them)")

    def rows_correlation(self, rho: np.ndarray, panel: np.ndarray, by: Optional[np.ndarray],
                         t: Optional[np.ndarray]) -> np.ndarray:
        """Relative covariance ``C`` of given rows (sorted by ``panel``; their by() values
        and times), block diagonal over the panels, as the fitted structure implies."""
        parts, ratios = self._split(rho)
        n = panel.size
        g = np.zeros(n, dtype=np.intp) if by is None else np.searchsorted(np.asarray(self.by_values), by)
        if self.spec.kind == "independent":
            return np.diag(ratios[g])
        C = np.zeros((n, n))
        starts = group_starts(panel)
        for a, b in zip(starts, np.append(starts[1:], n)):
            k = int(g[a])
            if is_markov(self.spec):
                block = self._groups[k][2].correlation(parts[k], t[a:b])
            elif self.spec.kind == "ar":
                lag = np.abs(t[a:b, None] - t[None, a:b]).astype(np.intp)
                block = ar_acf(np.tanh(parts[k]), int(lag.max()))[0][lag]
            else:  # exchangeable: the correlation is cov(e) / var(e)
                r = self.kernels[k].natural(parts[k], 1.0)[1]
                block = np.full((b - a, b - a), r)
                np.fill_diagonal(block, 1.0)
            C[a:b, a:b] = block * ratios[k]
        return C

    def whiten_rows(self, rho: np.ndarray, M: np.ndarray) -> np.ndarray:
        raise NotImplementedError("whitening rows needs the rows; the design was made from sufficient statistics")


class _Constant:
    """Independent errors within a by-group: the cross-products do not depend on ``rho``."""

    def __init__(self, F: np.ndarray):
        self.F = F

    def full(self, rho: np.ndarray) -> tuple[np.ndarray, float]:
        return self.F, 0.0
