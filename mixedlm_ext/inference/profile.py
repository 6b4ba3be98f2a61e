"""Profile-likelihood confidence intervals and profile traces.

For one scalar parameter ``c`` (a fixed effect, a variance, a covariance, a
standard deviation, a correlation, a residual-structure parameter) the
profiled deviance ``D(c)`` is the minimum of -2 log-likelihood over every
other parameter with ``c`` held fixed.  lme4's signed square root
``zeta(c) = sign(c - c_hat) sqrt(D(c) - D(c_hat))`` is close to linear
when the Wald interval is good; the profile interval at level ``1 - alpha``
is ``{c : |zeta(c)| <= z_{1 - alpha/2}}``.

* Variance-component parameters: ``D`` minimises -2 log-likelihood (REML:
  the restricted one) over ``psi = (theta, log sigma2)`` (``beta``
  profiled) subject to ``phi_j(psi) = c`` (SLSQP, started from a feasible
  point: variances and covariances scale with ``sigma2``).
* Fixed effects: with ``beta_j = c`` the penalised residual sum of squares
  grows by ``(c - beta_hat_j)^2 / [(X'V^-1 X)^-1]_jj`` (units of
  ``sigma2``), so ``D`` is a closed form in ``theta`` minimised over
  ``theta`` alone.  The restricted likelihood has no ``beta``: after a REML
  fit the fixed effects are profiled on the ML deviance (around the ML
  estimate), as lme4 does for every parameter.
* Intervals that reach the edge of the parameter space (a standard
  deviation whose profile never rises above the cut-off down to 0, a
  correlation up to +-1) end there and are labelled ``boundary``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import pandas as pd

from ..core.distributions import norm_ppf
from ..core.threads import single_thread_blas
from ..fit.objective import Objective
from ..fit.optimizer import optimize
from .replicates import interior_starts
from .vc import to_sd_metric

_SCALE_POWER = {"var": 1.0, "cov": 1.0, "sd": 0.5}  # parameter ~ sigma2 ** power
_LIMITS = {"var": (0.0, np.inf), "sd": (0.0, np.inf), "corr": (-1.0, 1.0), "rho": (0.0, 1.0)}


@dataclass
class ProfilePoint:
    """The constrained optimum at one value of the profiled parameter."""

    value: float
    deviance: float
    x: np.ndarray  # optimiser's variables: psi (variance components) or theta (fixed effects)


class ParameterProfile:
    """The profiled deviance of one parameter (see the module docstring).

    ``solve(c, x0)`` returns ``(deviance, x)`` of the constrained optimum;
    ``params(x)`` all reported parameters there.
    """

    def __init__(self, name: str, kind: str, estimate: float, se: float, dev_min: float, x_hat: np.ndarray,
                 solve: Callable, params: Callable, criterion: str, scale: float):
        self.name, self.kind, self.estimate, self.criterion = name, kind, float(estimate), criterion
        self.se = float(se) if np.isfinite(se) and se > 0 else np.nan
        self.dev_min = float(dev_min)
        self.solve = solve
        self.params = params
        self.scale = scale  # typical size, for steps when there is no standard error
        self.limits = _LIMITS.get(kind, (-np.inf, np.inf))
        self.points = [ProfilePoint(self.estimate, self.dev_min, np.asarray(x_hat, dtype=float))]

    # -- evaluation ----------------------------------------------------------
    def point(self, c: float) -> ProfilePoint:
        """The constrained optimum at ``c``, started from the nearest point computed so far."""
        near = min(self.points, key=lambda p: abs(p.value - c))
        if near.value == c:
            return near
        dev, x = self.solve(c, near.x)
        pt = ProfilePoint(float(c), float(dev), x)
        if np.isfinite(dev) and dev < self.dev_min:  # a better optimum than the fit's (optimiser noise)
            self.dev_min = float(dev)
        self.points.append(pt)
        return pt

    def zeta(self, c: float) -> float:
        pt = self.point(c)
        if not np.isfinite(pt.deviance):
            return np.inf if c > self.estimate else -np.inf
        return float(np.sign(c - self.estimate) * np.sqrt(max(pt.deviance - self.dev_min, 0.0)))

    def _step(self) -> float:
        if np.isfinite(self.se):
            return self.se
        return 0.1 * max(abs(self.estimate), self.scale)

    def _edge(self, side: int) -> float:
        """The value just inside the parameter space at that side (a standard
        deviation of exactly 0 is reached by a tiny positive value)."""
        lim = self.limits[0] if side < 0 else self.limits[1]
        if not np.isfinite(lim):
            return lim
        room = abs(self.estimate - lim)
        return lim - side * max(1e-7 * max(room, self.scale), 1e-12)

    def bracket(self, side: int, z: float) -> tuple[float, Optional[float], Optional[float]]:
        """``(inside, outside, boundary)``: values around the crossing of ``zeta = side * z``,
        or the edge of the parameter space (or of where the model is defined) reached
        before any crossing."""
        inside, step = self.estimate, self._step()
        edge = self._edge(side)
        two_sided = bool(np.all(np.isfinite(self.limits)))  # correlations: approach +-1 gradually
        for _ in range(60):
            c = self.estimate + side * step
            hit_edge = np.isfinite(edge) and side * (c - edge) >= 0
            if hit_edge and two_sided and abs(edge - inside) > 1e-3 * (self.limits[1] - self.limits[0]):
                c, hit_edge = inside + 0.5 * (edge - inside), False  # halfway: the optimum is hard at +-1
            elif hit_edge:
                c = edge
            if not np.isfinite(self.point(c).deviance):  # beyond where the model is defined
                c, hit_edge = self._feasible_edge(inside, c), True
            if side * self.zeta(c) >= z:
                return inside, c, None
            if hit_edge:
                return inside, None, self._edge_value(side) if c == edge else c
            inside, step = c, 2.0 * step
        return inside, None, None

    def _feasible_edge(self, inside: float, outside: float) -> float:
        """The last value (bisection) between ``inside`` and ``outside`` where the profile is finite."""
        for _ in range(40):
            mid = 0.5 * (inside + outside)
            if np.isfinite(self.point(mid).deviance):
                inside = mid
            else:
                outside = mid
        return inside

    def limit(self, side: int, z: float) -> tuple[float, bool]:
        """The interval's end on ``side`` (-1 lower, +1 upper) and whether it is at the boundary."""
        import scipy.optimize as so  # on use: about 0.1 s to import

        if np.isfinite(self.limits[0 if side < 0 else 1]) and self.estimate == self._edge_value(side):
            return self._edge_value(side), True  # estimate on the boundary
        inside, outside, boundary = self.bracket(side, z)
        if boundary is not None:
            return boundary, True
        if outside is None:
            return np.nan, False
        f = lambda c: self.zeta(c) - side * z  # noqa: E731
        return float(so.brentq(f, min(inside, outside), max(inside, outside), xtol=1e-10 * max(1.0, abs(inside)),
                               rtol=1e-10)), False

    def _edge_value(self, side: int) -> float:
        return self.limits[0] if side < 0 else self.limits[1]

    def interval(self, level: float) -> tuple[float, float, str]:
        z = float(norm_ppf(0.5 + level / 200.0))
        lo, lo_b = self.limit(-1, z)
        hi, hi_b = self.limit(1, z)
        label = {(True, True): "both", (True, False): "lower", (False, True): "upper"}.get((lo_b, hi_b), "")
        return lo, hi, label

    def trace(self, zmax: float, n_steps: int = 8) -> pd.DataFrame:
        """zeta over a grid from the lower to the upper end at ``|zeta| = zmax``."""
        values = [self.estimate]
        for side in (-1, 1):
            end, _ = self.limit(side, zmax)
            if not np.isfinite(end):
                end = max(p.value for p in self.points) if side > 0 else min(p.value for p in self.points)
            values += list(np.linspace(self.estimate, end, n_steps + 1)[1:])
        values = sorted(set(v for v in values if np.isfinite(v)))
        rows = []
        for c in values:
            pt = self.point(c)
            if not np.isfinite(pt.deviance):
                continue
            rows.append({"zeta": self.zeta(c), **self.params(pt.x, c)})
        out = pd.DataFrame(rows)
        return out[["zeta", self.name] + [k for k in out.columns if k not in ("zeta", self.name)]]


# -- the constrained optima --------------------------------------------------
def _metric_values(ob: Objective, sd: bool) -> Callable[[np.ndarray], np.ndarray]:
    names, kinds = ob.natural_names(), ob.natural_kinds()
    k = len(names)
    zero = np.zeros((k, k))

    def values(psi: np.ndarray) -> np.ndarray:
        phi = ob.natural_from_estimation(psi)
        return to_sd_metric(names, phi, zero, kinds)[1] if sd else phi
    return values


def _safe_neg2ll(ob: Objective) -> Callable[[np.ndarray], float]:
    def f(psi):
        try:
            return ob.neg2ll_estimation(psi)
        except (ZeroDivisionError, OverflowError):
            return np.inf
    return f


def _metric_labels(ob: Objective, sd: bool) -> tuple[list[str], list[str]]:
    """``(labels, kinds)`` of the variance components in the variance or SD metric."""
    names, kinds = ob.natural_names(), ob.natural_kinds()
    if sd:
        k = len(names)
        phi = np.ones(k)  # the names and kinds do not depend on the values
        names, _, _, kinds = to_sd_metric(names, phi, np.zeros((k, k)), kinds)
    return ["%s:%s" % nm for nm in names], list(kinds)


def block_theta_slices(ob: Objective) -> list[tuple[slice, slice]]:
    """``(natural parameters, theta)`` positions of each random-effects block."""
    out, i, k = [], 0, 0
    for blk in ob.blocks:
        n_nat, n_th = blk.structure.n_natural, blk.structure.n_theta
        out.append((slice(i, i + n_nat), slice(k, k + n_th)))
        i, k = i + n_nat, k + n_th
    return out


def feasible_starts(x0: np.ndarray, v0: float, c: float, j: int, power: Optional[float],
                    blocks: list[tuple[slice, slice]]) -> list[np.ndarray]:
    """Starting points that satisfy ``phi_j = c`` for a parameter that scales with
    ``sigma2 ** power``: ``sigma2`` rescaled (every variance moves), and for a
    random-effects block's parameter the block's ``theta`` rescaled instead (only
    that block moves: far better when ``c`` is near 0)."""
    if power is None or not v0 * c > 0:
        return [x0]
    ratio = c / v0
    by_sigma = x0.copy()
    by_sigma[-1] += np.log(ratio) / power
    out = [by_sigma]
    for nat, th in blocks:
        if nat.start <= j < nat.stop:
            by_block = x0.copy()
            by_block[th] *= ratio ** (0.5 / power)  # phi ~ theta^2 sigma2
            out.insert(0, by_block)
    return out


def _vc_solver(ob: Objective, values: Callable, j: int, kind: str, log_sigma2: float) -> Callable:
    # log sigma2 within e^{+-30} of the estimate: SLSQP's trial steps stay finite
    bounds = list(ob.theta_bounds()) + [(log_sigma2 - 30.0, log_sigma2 + 30.0)]
    power = _SCALE_POWER.get(kind)
    f = _safe_neg2ll(ob)
    blocks = block_theta_slices(ob)

    def solve(c: float, x0: np.ndarray) -> tuple[float, np.ndarray]:
        import scipy.optimize as so

        x0 = np.array(x0, dtype=float)
        cons = {"type": "eq", "fun": lambda x: values(x)[j] - c}
        best = (np.inf, x0)
        for feasible in feasible_starts(x0, values(x0)[j], c, j, power, blocks):
            for start in interior_starts(feasible, bounds):
                r = so.minimize(f, start, method="SLSQP", bounds=bounds, constraints=[cons],
                                options=dict(ftol=1e-12, maxiter=500))
                if abs(values(r.x)[j] - c) <= 1e-6 * max(1.0, abs(c)) and r.fun < best[0]:
                    best = (float(r.fun), r.x)
            if np.isfinite(best[0]) and r.success:
                break  # the first kind of start that converges (the others are fallbacks)
        return best
    return solve


def _fe_deviance(ob: Objective, theta: np.ndarray, j: int, c: float) -> tuple[float, np.ndarray, float]:
    """-2 log-likelihood (ML) at ``theta`` with ``beta_j = c`` and the other
    fixed effects and ``sigma2`` at their optimum; also returns that ``beta`` and ``sigma2``."""
    prof = ob.profile(theta)
    cinv = np.linalg.inv(prof.xtvx)
    d = c - prof.beta[j]
    r2 = prof.r2 + d * d / cinv[j, j]
    beta = prof.beta + cinv[:, j] * (d / cinv[j, j])
    dev = prof.logdet_L + prof.logdet_R + ob.weight_constant + ob.n_eff * (1.0 + np.log(2.0 * np.pi * r2 / ob.n_eff))
    return float(dev), beta, r2 / ob.n_eff


def _fe_solver(ob: Objective, j: int) -> Callable:
    bounds = ob.theta_bounds()

    def f(theta, c):
        try:
            return _fe_deviance(ob, theta, j, c)[0]
        except (np.linalg.LinAlgError, ValueError, FloatingPointError):
            return np.inf

    def solve(c: float, x0: np.ndarray) -> tuple[float, np.ndarray]:
        import scipy.optimize as so

        if not len(x0):
            return f(x0, c), x0
        runs = [so.minimize(f, start, args=(c,), method="L-BFGS-B", bounds=bounds,
                            options=dict(ftol=1e-14, gtol=1e-9)) for start in interior_starts(x0, bounds)]
        r = min(runs, key=lambda run: run.fun)
        return float(r.fun), r.x
    return solve


# -- the profiles of a fit ---------------------------------------------------
@dataclass
class FitPoint:
    """One fit's optimum: objective, theta, sigma2, deviance, beta, reported parameters."""

    objective: Objective
    theta: np.ndarray
    deviance: float
    sigma2: float
    beta: np.ndarray

    @classmethod
    def of(cls, objective: Objective, theta: np.ndarray, deviance: float) -> "FitPoint":
        prof = objective.profile(theta)
        return cls(objective, np.asarray(theta, float), float(deviance), prof.sigma2, prof.beta)

    @property
    def psi(self) -> np.ndarray:
        return np.append(self.theta, np.log(self.sigma2))


def ml_point(design, residual=None) -> FitPoint:
    """The ML optimum of a design (the fixed effects' profiles after a REML fit)."""
    ob = Objective(design, reml=False, residual=residual)
    opt = optimize(ob)
    return FitPoint.of(ob, opt.theta, opt.deviance)


def vc_profiles(fit: FitPoint, se: np.ndarray, sd: bool, criterion: str) -> list[ParameterProfile]:
    """A profile for every variance-component parameter (``sd``: SDs and correlations)."""
    ob = fit.objective
    labels, kinds = _metric_labels(ob, sd)
    values = _metric_values(ob, sd)
    est = values(fit.psi)
    scale = float(np.sqrt(fit.sigma2))

    def params(x, c):
        return dict(zip(labels, values(x)))

    return [ParameterProfile(labels[j], kinds[j], est[j], se[j], fit.deviance, fit.psi,
                             _vc_solver(ob, values, j, kinds[j], np.log(fit.sigma2)), params, criterion,
                             scale if kinds[j] in ("sd", "cov") else (fit.sigma2 if kinds[j] == "var" else 1.0))
            for j in range(len(labels))]


def fe_profiles(fit: FitPoint, names: list[str], se: np.ndarray, sd: bool) -> list[ParameterProfile]:
    """A profile for every fixed effect (ML deviance); the traces also carry the
    variance components (``sd``: as SDs and correlations) at each constrained optimum."""
    ob = fit.objective
    values = _metric_values(ob, sd)
    vc_labels, _ = _metric_labels(ob, sd)

    def params_for(j):
        def params(theta, c):
            _, beta, sigma2 = _fe_deviance(ob, theta, j, c)
            return {**dict(zip(names, beta)), **dict(zip(vc_labels, values(np.append(theta, np.log(sigma2)))))}
        return params

    return [ParameterProfile(nm, "fe", fit.beta[j], se[j], fit.deviance, fit.theta, _fe_solver(ob, j),
                             params_for(j), "ML", 1.0 + abs(fit.beta[j]))
            for j, nm in enumerate(names)]


class ProfileResult:
    """Profiles of every parameter of a fit (:meth:`MixedLMExtResults.profile`).

    ``traces[name]`` is a DataFrame with ``zeta``, the parameter, and every
    other parameter at the constrained optimum (lme4's ``profile()``);
    :meth:`conf_int` the intervals by root-finding on ``zeta``.
    """

    def __init__(self, profiles: list[ParameterProfile]):
        self.profiles = {p.name: p for p in profiles}

    def traces(self, alphamax: float = 0.01, n_steps: int = 8) -> dict[str, pd.DataFrame]:
        zmax = float(norm_ppf(1.0 - alphamax / 2.0))
        with single_thread_blas(), np.errstate(all="ignore"):
            return {name: p.trace(zmax, n_steps) for name, p in self.profiles.items()}

    def conf_int(self, level: float = 95.0) -> pd.DataFrame:
        rows = {}
        for name, p in self.profiles.items():
            with single_thread_blas(), np.errstate(all="ignore"):
                lo, hi, label = p.interval(level)
            rows[name] = {"estimate": p.estimate, "lower": lo, "upper": hi, "boundary": label,
                          "criterion": p.criterion}
        out = pd.DataFrame.from_dict(rows, orient="index")
        out.index.name = "parameter"
        return out


def profile_fit(res, stddeviations: bool = False, ml: bool = False) -> ProfileResult:
    """The profiles of a fitted model's parameters.

    ``stddeviations``: the variance components as SDs and correlations;
    ``ml``: after a REML fit, profile everything on the ML deviance (lme4's
    ``profile()``, which refits by ML first) instead of the variance
    components on the restricted one.
    """
    ob = res.model.objective
    fit = FitPoint.of(ob, res.opt.theta, res.opt.deviance)
    with single_thread_blas():
        ml_fit = ml_point(ob.design) if ob.reml else fit
    vc_fit, criterion = (ml_fit, "ML") if (ml or not ob.reml) else (fit, "REML")
    table = res.sd_components if stddeviations else res.variance_components
    fe_names = list(ob.design.fe_names)
    se_fe = np.asarray(res.bse)[: len(fe_names)]
    return ProfileResult(fe_profiles(ml_fit, fe_names, se_fe, stddeviations)
                         + vc_profiles(vc_fit, table["std_err"].to_numpy(), stddeviations, criterion))
