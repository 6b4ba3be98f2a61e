"""Residual (level-one) error structures within the lowest-level panels.

A structure describes ``R = sigma2 * C(rho)`` inside each panel, with
``sigma2`` profiled out of the likelihood by the objective.  Its interface:

* ``n_params``, ``start()``, ``bounds()`` -- the optimisation metric ``rho``;
* ``bind(design)`` -- a new structure bound to ``design``: validated against
  the data (``t()``, ``by()``...) with everything that does not depend on
  ``rho`` precomputed; a structure never changes once made;
* ``crossproducts(rho)`` -- ``(Wzz, Wzx, Bxx, logdet_C)``: the design's
  cross-products after whitening by ``C^{-1/2}`` and ``log|C|`` summed over
  panels; the plain residual (``is_plain``) returns the design's own;
* ``natural(rho, sigma2)`` / ``from_natural(nat)`` -- reported metric
  (Stata's ``phi1``, ``var(e)``, ...), ``names()``, ``kinds()`` (CI scale);
* ``title`` -- the heading of the results table (``None`` for the plain
  ``var(Residual)`` row).

Every type except the plain independent residual is a :class:`PanelResidual`:
it binds one correlation *kernel* (:class:`~mixedlm_ext.structures.residual.kernel.Kernel`)
per by-group to the rows of its panels, sorted by ``t`` within panel, and
combines their whitened cross-products (whiteners in
:mod:`mixedlm_ext.structures.residual.whitening`).  Adding a structure means
writing one kernel class and registering it in
:data:`mixedlm_ext.structures.residual.registry.KERNELS`.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import scipy.sparse as sp

from ...core.errors import ModelSpecificationError, ResidualDataError
from ...spec.model import ResidualSpec
from .kernel import Kernel, SingleVariance, format_time
from .registry import KERNELS
from .whitening import PanelRows


class ResidualStructure(SingleVariance):
    """Base class; also the plain independent homoskedastic residual.

    Parameters
    ----------
    spec : ResidualSpec
        The ``residuals()`` specification.
    design : Design, optional
        The design the structure is bound to; made from ``spec`` alone the
        structure is unbound, and :meth:`bind` makes a bound one.
    """

    title: Optional[str] = None
    is_plain = True  # independent, homoskedastic: the cross-products are the design's own

    def __init__(self, spec: ResidualSpec, design=None):
        self.spec = spec
        self.design = design

    def bind(self, design) -> "ResidualStructure":
        """A new structure of this type bound to ``design`` (``self`` is unchanged)."""
        return type(self)(self.spec, design)

    @property
    def n_params(self) -> int:
        return 0

    def start(self) -> np.ndarray:
        return np.zeros(0)

    def bounds(self) -> list:
        return []

    def crossproducts(self, rho: np.ndarray):
        d = self.design
        return d.ZtZ, d.ZtXY, d.XYtXY, 0.0

    def names(self) -> list[str]:
        return ["var(Residual)"]

    def correlation(self, rho: np.ndarray, panel: int) -> np.ndarray:
        """Dense ``C`` for one panel (tests, ``estat wcorrelation``)."""
        n = int(np.sum(self.design.panel_codes == panel))
        return np.eye(n)

    def whiten_rows(self, rho: np.ndarray, M: np.ndarray) -> np.ndarray:
        """``C^{-1/2} M`` panel by panel for a row-aligned matrix ``M``."""
        return M


def _by_name(name: str, by: str, value) -> str:
    """``var(e)`` -> ``var(e:region=1)``; ``phi1`` -> ``phi1:region=1``."""
    lab = "%s=%s" % (by, format_time(value) if isinstance(value, (int, float, np.integer, np.floating)) else value)
    if name.endswith(")"):
        return "%s:%s)" % (name[:-1], lab)
    return "%s:%s" % (name, lab)


def panel_label(keys, g: int) -> str:
    """``g``-th panel of the key table ``keys`` as error messages name it (``id=3, t=2``;
    no keys: ``all data``)."""
    if keys is None or not len(keys.columns):
        return "all data"
    row = keys.iloc[int(g)]
    return ", ".join("%s=%s" % (c, _fmt_value(row[c])) for c in keys.columns)


def _panel_label(design, panel: int) -> str:
    if not design.levels or not design.levels[-1].path:
        return "all data"
    return panel_label(design.levels[-1].keys, panel)


def _fmt_value(v) -> str:
    try:
        return format_time(float(v))
    except (TypeError, ValueError):
        return str(v)


class PanelResidual(ResidualStructure):
    """A correlated (or by-group heteroskedastic) residual structure.

    One :class:`~mixedlm_ext.structures.residual.kernel.Kernel` per by-group
    (one in all when there is no ``by()``), made when the structure is bound.
    The parameters ``rho`` are the kernels' own, group after group, followed
    by ``log(var_g / var_1)`` for groups ``2..G``; ``sigma2`` is the first
    group's variance.
    """

    is_plain = False

    def __init__(self, spec: ResidualSpec, design=None):
        super().__init__(spec, design)
        self.kernel_cls: type[Kernel] = KERNELS[spec.kind]
        self.kernels: list[Kernel] = []
        self.by_values: list = []
        self._Q = 0  # columns of Z in the kernels' rows [Z Xw yw]
        if design is not None:
            self._Q = design.Z.shape[1]
            self.by_values, self.kernels = self._bind_kernels(design)

    # -- binding -------------------------------------------------------------
    def _kind_text(self) -> str:
        s = self.spec
        return "%s %d" % (s.kind, s.order) if s.order is not None and self.kernel_cls.has_order else s.kind

    def _error(self, msg: str) -> ModelSpecificationError:
        return ModelSpecificationError("residuals(%s): %s" % (self._kind_text(), msg))

    def _bind_kernels(self, design) -> tuple[list, list[Kernel]]:
        """The by() values and one kernel per by-group, checked against ``design``."""
        spec, cls = self.spec, self.kernel_cls
        panel = np.asarray(design.panel_codes)
        t = None
        if cls.needs_time:
            if spec.time is None:
                raise self._error("the time variable t(varname) is required")
            t = design.data[spec.time].to_numpy(dtype=float)
            self._check_time(t)
        if design.weights is not None:
            raise self._error("weights are not supported together with a residual structure")
        Z = design.Z.toarray() if sp.issparse(design.Z) else np.asarray(design.Z)  # sparse Z (crossed)
        W = np.column_stack([Z, design.Xw, design.yw])
        values, codes = self._by_groups(design, panel)
        kernels = []
        for g, value in enumerate(values):
            rows = np.flatnonzero(codes == g)
            pr = PanelRows(rows, panel[rows], None if t is None else t[rows], W[rows])
            kernels.append(self._make_kernel(design, pr, value))
        self._check_identified(design, t, Z, kernels)
        return list(values), kernels

    def _by_groups(self, design, panel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The distinct by() values and each row's group (one group without by())."""
        if self.spec.by is None:
            return np.array([None], dtype=object), np.zeros(design.n, dtype=np.intp)
        values, codes = np.unique(design.data[self.spec.by].to_numpy(), return_inverse=True)
        codes = codes.reshape(-1)
        if not self.kernel_cls.by_may_vary:
            self._check_by_constant(design, codes, panel)
        return values, codes

    def _make_kernel(self, design, rows: PanelRows, by_value) -> Kernel:
        """The kernel of one by-group, its data errors reported as specification errors."""
        spec = self.spec
        if rows.repeated is not None:
            i = rows.repeated
            raise self._error("t(%s) has repeated values within a panel: %s=%s appears more than once "
                              "in panel %s" % (spec.time, spec.time, format_time(rows.t[i]),
                                               _panel_label(design, rows.panel_ids[rows.panel[i]])))
        try:
            return self.kernel_cls(rows, spec.order, spec.time)
        except ResidualDataError as exc:
            where = "" if spec.by is None else " (by %s=%s)" % (spec.by, _fmt_value(by_value))
            msg = str(exc) if str(exc).startswith("residuals(") else "residuals(%s): %s" % (self._kind_text(), exc)
            raise ModelSpecificationError(msg + where) from None

    def _check_time(self, t: np.ndarray) -> None:
        cls, name = self.kernel_cls, self.spec.time
        if cls.integer_time:
            bad = np.flatnonzero(t != np.round(t))
            if bad.size:
                raise self._error("t(%s) must hold integers; found %s=%g" % (name, name, t[bad[0]]))
        if cls.nonneg_time and t.size and t.min() < 0:
            raise self._error("t(%s) must hold non-negative integers; found %s=%s" % (name, name, format_time(t.min())))

    def _check_by_constant(self, design, codes: np.ndarray, panel: np.ndarray) -> None:
        lo = np.full(design.n_panels, np.iinfo(np.intp).max)
        hi = np.full(design.n_panels, -1)
        np.minimum.at(lo, panel, codes)
        np.maximum.at(hi, panel, codes)
        bad = np.flatnonzero(lo != hi)
        if bad.size:
            lvl = design.levels[-1].label if design.levels else "_all"
            raise self._error("by(%s) varies within panels of level %s (panel %s); by() must be constant "
                              "within panels except with residuals(independent)"
                              % (self.spec.by, lvl, _panel_label(design, bad[0])))

    def _check_identified(self, design, t: Optional[np.ndarray], Z: np.ndarray, kernels: list[Kernel]) -> None:
        """Refuse residual structures that absorb the panel level's random effects (:attr:`Kernel.absorbs`)."""
        if not design.levels:
            return
        lvl = design.levels[-1]
        if lvl.q == 0:
            return
        kind = self.spec.kind
        absorbs = {k.absorbs for k in kernels}
        full = False
        if absorbs == {"intercept"}:
            full = any("_cons" in b.effects and b.expand_by is None for b in lvl.blocks)
        elif absorbs == {"time"}:
            # the random effects' covariance is absorbed when their design depends on t only
            Zl = Z[:, : lvl.q]
            tl = np.searchsorted(np.unique(t), t)
            first = np.zeros((tl.max() + 1, lvl.q))
            first[tl] = Zl
            full = bool(np.all(first[tl] == Zl))
        if full:
            raise ModelSpecificationError(
                "residuals(%s) is not identified together with the random effects at the panel level %s: "
                "the %s residual covariance already contains their covariance. Remove them (for example "
                "|| %s:, noconstant) or choose another residual structure."
                % (self._kind_text(), lvl.label, kind, lvl.label))

    # -- parameters ------------------------------------------------------------
    @property
    def title(self) -> str:
        base = self.kernels[0].title if self.kernels else self.spec.kind
        return base if self.spec.by is None else "%s, by %s" % (base, self.spec.by)

    @property
    def n_params(self) -> int:
        return sum(k.n_params for k in self.kernels) + max(len(self.kernels) - 1, 0)

    def _split(self, rho: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        rho = np.asarray(rho, dtype=float)
        parts, i = [], 0
        for k in self.kernels:
            parts.append(rho[i:i + k.n_params])
            i += k.n_params
        ratios = np.exp(np.concatenate([[0.0], rho[i:]]))
        return parts, ratios

    def start(self) -> np.ndarray:
        return np.concatenate([k.start() for k in self.kernels] + [np.zeros(len(self.kernels) - 1)])

    def bounds(self) -> list:
        out = []
        for k in self.kernels:
            out += list(k.bounds())
        return out + [(-30.0, 30.0)] * (len(self.kernels) - 1)

    def names(self) -> list[str]:
        if self.spec.by is None:
            return self.kernels[0].names()
        out = []
        for k, v in zip(self.kernels, self.by_values):
            out += [_by_name(nm, self.spec.by, v) for nm in k.names()]
        return out

    def kinds(self) -> list[str]:
        out = []
        for k in self.kernels:
            out += k.kinds()
        return out

    def natural(self, rho: np.ndarray, sigma2: float) -> np.ndarray:
        parts, ratios = self._split(rho)
        return np.concatenate([k.natural(p, sigma2 * r) for k, p, r in zip(self.kernels, parts, ratios)])

    def from_natural(self, nat: np.ndarray) -> tuple[np.ndarray, float]:
        nat = np.asarray(nat, dtype=float)
        parts, s2s, i = [], [], 0
        for k in self.kernels:
            m = len(k.names())
            r, s2 = k.from_natural(nat[i:i + m])
            parts.append(np.asarray(r, dtype=float))
            s2s.append(s2)
            i += m
        s2s = np.asarray(s2s, dtype=float)
        if not np.all(s2s > 0):
            return np.zeros(self.n_params), float("nan")
        return np.concatenate(parts + [np.log(s2s[1:] / s2s[0])]), float(s2s[0])

    # -- evaluation --------------------------------------------------------------
    def full(self, rho: np.ndarray) -> tuple[np.ndarray, float]:
        """Per-panel ``[Z X y]' C^{-1} [Z X y]`` ``(P, k, k)`` and ``log|C|``."""
        parts, ratios = self._split(rho)
        if len(self.kernels) == 1:
            F, ld = self.kernels[0].full(parts[0])
        else:
            d = self.design
            k = self.kernels[0].rows.k
            F = np.zeros((d.n_panels, k, k))
            ld = 0.0
            for kern, p, r in zip(self.kernels, parts, ratios):
                Fg, lg = kern.full(p)
                F[kern.rows.panel_ids] += Fg / r
                ld += lg + kern.rows.n * np.log(r)
        if not np.isfinite(ld):
            raise np.linalg.LinAlgError("residual covariance is not positive definite")
        return F, float(ld)

    def crossproducts(self, rho: np.ndarray):
        F, ld = self.full(rho)
        Q = self._Q
        P, k = F.shape[0], F.shape[1]
        tot = F.reshape(P, k * k).sum(axis=0).reshape(k, k)
        return F[:, :Q, :Q], F[:, :Q, Q:], tot[Q:, Q:], ld

    def correlation(self, rho: np.ndarray, panel: int) -> np.ndarray:
        """Relative covariance ``C`` of design panel ``panel`` (rows in design order)."""
        pos = np.flatnonzero(np.asarray(self.design.panel_codes) == panel)
        out = np.zeros((pos.size, pos.size))
        parts, ratios = self._split(rho)
        for kern, p, r in zip(self.kernels, parts, ratios):
            ids = kern.rows.panel_ids
            j = np.searchsorted(ids, panel)
            if j >= ids.size or ids[j] != panel:
                continue
            C = kern.panel_corr(p, j) * r
            loc = np.searchsorted(pos, kern.rows.rows[kern.rows.panel_rows(j)])
            out[np.ix_(loc, loc)] = C
        return out

    def whiten_rows(self, rho: np.ndarray, M: np.ndarray) -> np.ndarray:
        """``C^{-1/2} M`` panel by panel (Cholesky in ``t`` order), rows in design order."""
        M = np.asarray(M, dtype=float)
        out = np.empty_like(M)
        parts, ratios = self._split(rho)
        for kern, p, r in zip(self.kernels, parts, ratios):
            idx = kern.rows.rows
            out[idx] = kern.whiten(p, M[idx]) / np.sqrt(r)
        return out


RESIDUAL_TYPES: dict[str, type[ResidualStructure]] = {"independent": ResidualStructure}
RESIDUAL_TYPES.update({k: PanelResidual for k in KERNELS if k != "independent"})
RESIDUAL_TYPES["independent_by"] = PanelResidual


def make_residual(spec: ResidualSpec) -> ResidualStructure:
    """The (unbound) residual structure object for a :class:`ResidualSpec`."""
    kind = "independent_by" if spec.kind == "independent" and spec.by is not None else spec.kind
    try:
        cls = RESIDUAL_TYPES[kind]
    except KeyError:
        raise NotImplementedError("residuals(%s) is not available" % spec.kind) from None
    return cls(spec)
