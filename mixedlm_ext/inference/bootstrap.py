"""The parametric bootstrap and the bootstrap likelihood-ratio test.

Replicates are simulated from the fitted model (:mod:`.simulate`) and
refitted (:mod:`.replicates`) in chunks (:func:`chunk_size`: bounded memory); every replicate
has its own random stream spawned from the seed and every chunk is computed
the same way whatever the number of jobs, so the draws are identical for
any ``n_jobs``.  With ``n_jobs > 1`` the chunks run in worker processes
(joblib).  A progress bar (tqdm, if installed) shows on long runs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import pandas as pd

from ..core.distributions import norm_ppf
from ..core.errors import warn_user
from ..core.keywords import refuse_unknown_keywords
from ..core.threads import single_thread_blas
from ..design.types import Design
from ..fit.objective import Objective
from .replicates import SingleLevelBatch, interior_starts, refit_one
from .simulate import (design_for_response, replicate_seeds, response_crossproducts, seed_sequence, simulate_responses,
                       working_response)
from .vc import to_sd_metric

CHUNK = 100  # replicates per chunk at most (the chunks do not depend on n_jobs)
CHUNK_ELEMS = 8_000_000  # and at most this many simulated values (rows x replicates) per chunk
PROGRESS_MIN = 200  # replicates from which a progress bar shows by default


def refit_many(objective: Objective, theta0: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Refit ``objective``'s model to each column of ``Y`` (design row order) from ``theta0``.

    Returns ``(params (B, K), deviance (B,), converged (B,))``; a replicate
    whose refit fails has NaN parameters.
    """
    design = objective.design
    B = Y.shape[1]
    yw, b_ols = working_response(design, Y)
    Zty = np.moveaxis(response_crossproducts(design, yw), 2, 0) if design.ZtXY is not None else None
    K = design.p + objective.n_natural
    params, dev, conv = np.full((B, K), np.nan), np.full(B, np.nan), np.zeros(B, dtype=bool)
    batch = SingleLevelBatch.of(objective)
    todo = np.arange(B)
    if batch is not None:
        yty = np.einsum("nb,nb->b", yw, yw)
        # from the estimate; a parameter at its bound moved inward (Newton cannot leave theta = 0,
        # where the deviance is flat)
        starts = interior_starts(np.asarray(theta0, float), objective.theta_bounds())
        T0 = np.tile(starts[min(1, len(starts) - 1)], (B, 1))
        Theta, ok = batch.newton(T0, Zty, yty)
        if ok.any():
            params[ok] = batch.finish(Theta[ok], Zty[ok], yty[ok], b_ols[:, ok])
            dev[ok] = batch.deviance(Theta[ok], Zty[ok], yty[ok])
            conv[ok] = True
        todo = np.flatnonzero(~ok)
    for i in todo:
        d = design_for_response(design, Y[:, i], yw[:, i], b_ols[:, i], None if Zty is None else Zty[i])
        try:
            params[i], conv[i], dev[i] = refit_one(objective, d, theta0)
        except (np.linalg.LinAlgError, ValueError, FloatingPointError):
            pass
    return params, dev, conv


@dataclass
class SimulationSource:
    """What simulating from a fit needs (picklable for worker processes)."""

    objective: Objective
    theta: np.ndarray
    beta: np.ndarray
    sigma2: float
    zb: Optional[np.ndarray] = None  # conditional on the BLUPs: their Z b_hat

    def responses(self, seeds) -> np.ndarray:
        return simulate_responses(self.objective.design, self.objective, self.theta, self.beta, self.sigma2,
                                  [np.random.default_rng(s) for s in seeds], self.zb)


def _bootstrap_chunk(source: SimulationSource, seeds) -> tuple:
    with single_thread_blas(), np.errstate(all="ignore"):
        Y = source.responses(seeds)
        params, _, conv = refit_many(source.objective, source.theta, Y)
    return params, conv


def _lr_chunk(null: SimulationSource, alt: Objective, alt_theta: np.ndarray, order: np.ndarray, seeds) -> tuple:
    with single_thread_blas(), np.errstate(all="ignore"):
        Y = null.responses(seeds)
        _, d0, c0 = refit_many(null.objective, null.theta, Y)
        _, d1, c1 = refit_many(alt, alt_theta, Y[order])
    return np.maximum(d0 - d1, 0.0), c0 & c1


def chunk_size(n_rows: int) -> int:
    """Replicates per chunk: at most :data:`CHUNK`, and a chunk's responses
    (``n_rows`` x replicates) within :data:`CHUNK_ELEMS` (memory)."""
    return int(min(CHUNK, max(1, CHUNK_ELEMS // max(1, n_rows))))


def run_chunks(task, args: tuple, n: int, seed, n_rows: int, n_jobs: int = 1,
               progress: Optional[bool] = None) -> list:
    """Run ``task(*args, seeds)`` over chunks of ``n`` replicate seeds (in order)."""
    seeds = replicate_seeds(seed, n)
    size = chunk_size(n_rows)
    chunks = [seeds[i:i + size] for i in range(0, n, size)]
    bar = _progress_bar(n, progress)
    out = []
    if n_jobs == 1 or len(chunks) == 1:
        for c in chunks:
            out.append(task(*args, c))
            if bar is not None:
                bar.update(len(c))
    else:
        from joblib import Parallel, delayed

        for c, r in zip(chunks, Parallel(n_jobs=n_jobs, return_as="generator")(delayed(task)(*args, c)
                                                                                for c in chunks)):
            out.append(r)
            if bar is not None:
                bar.update(len(c))
    if bar is not None:
        bar.close()
    return out


def _progress_bar(n: int, progress: Optional[bool]):
    if progress is False or (progress is None and n < PROGRESS_MIN):
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        if progress:
            warn_user("progress=True needs tqdm (pip install 'mixedlm_ext[progress]'); no progress bar")
        return None
    return tqdm(total=n, desc="bootstrap", unit="fit")


class BootstrapResult:
    """Parametric bootstrap of a fit (:meth:`MixedLMExtResults.bootstrap`).

    Attributes
    ----------
    draws : DataFrame
        One row per replicate, one column per parameter (named as
        ``res.params``); a failed refit is a row of NaN.
    estimate : Series
        The fit's parameters.
    converged : ndarray of bool
    seed : int
        The seed's entropy (``SeedSequence(seed).entropy``): pass it back as
        ``seed`` to reproduce the draws.
    """

    def __init__(self, draws: pd.DataFrame, estimate: pd.Series, converged: np.ndarray, seed: int,
                 vc_labels: list, vc_kinds: list):
        self.draws, self.estimate, self.converged, self.seed = draws, estimate, converged, seed
        self._vc_labels, self._vc_kinds = vc_labels, vc_kinds

    @property
    def n_boot(self) -> int:
        return len(self.draws)

    @property
    def n_failed(self) -> int:
        return int(self.draws.isna().any(axis=1).sum())

    @property
    def std_err(self) -> pd.Series:
        return self.draws.std(ddof=1).rename("std_err")

    @property
    def bias(self) -> pd.Series:
        return (self.draws.mean() - self.estimate).rename("bias")

    def sd_draws(self) -> pd.DataFrame:
        """The draws with the variance components as SDs and correlations (lme4's
        ``as.data.frame(VarCorr(fit))$sdcor``)."""
        k = len(self._vc_labels)
        names = None
        rows = []
        vc = self.draws.iloc[:, -k:].to_numpy() if k else np.zeros((len(self.draws), 0))
        for v in vc:
            nm, est, _, _ = to_sd_metric(self._vc_labels, v, np.zeros((k, k)), self._vc_kinds)
            names = ["%s:%s" % lp for lp in nm]
            rows.append(est)
        fe = self.draws.iloc[:, : self.draws.shape[1] - k]
        return pd.concat([fe, pd.DataFrame(np.array(rows), columns=names, index=self.draws.index)], axis=1)

    @refuse_unknown_keywords
    def conf_int(self, alpha: float = 0.05, method: str = "percentile") -> pd.DataFrame:
        """Bootstrap intervals: ``"percentile"`` (quantiles of the draws, numpy's
        default interpolation = R's type 7), ``"basic"`` (``2 est - quantiles``) or
        ``"normal"`` (``est - bias +- z * std_err``, boot's ``norm.ci``)."""
        ok = self.draws.dropna()
        lo, hi = ok.quantile(alpha / 2), ok.quantile(1 - alpha / 2)
        if method == "percentile":
            out = (lo, hi)
        elif method == "basic":
            out = (2 * self.estimate - hi, 2 * self.estimate - lo)
        elif method == "normal":
            z = norm_ppf(1 - alpha / 2)
            centre = self.estimate - self.bias
            out = (centre - z * self.std_err, centre + z * self.std_err)
        else:
            raise ValueError("method must be 'percentile', 'basic' or 'normal', got %r" % (method,))
        return pd.DataFrame({"lower": np.asarray(out[0], float), "upper": np.asarray(out[1], float)},
                            index=self.draws.columns)

    def __repr__(self) -> str:
        return "<BootstrapResult: %d replicates, %d failed>" % (self.n_boot, self.n_failed)


def parametric_bootstrap(source: SimulationSource, names: list[str], n_boot: int = 1000, seed=None,
                         n_jobs: int = 1, progress: Optional[bool] = None) -> BootstrapResult:
    """Simulate ``n_boot`` responses from ``source`` and refit each (see the module docstring)."""
    if n_boot < 1:
        raise ValueError("n_boot must be at least 1, got %r" % (n_boot,))
    ss = seed_sequence(seed)
    parts = run_chunks(_bootstrap_chunk, (source,), int(n_boot), ss, source.objective.design.n, n_jobs, progress)
    params = np.concatenate([p for p, _ in parts])
    conv = np.concatenate([c for _, c in parts])
    ob = source.objective
    est = pd.Series(np.concatenate([source.beta, ob.natural_from_theta(source.theta, source.sigma2)]), index=names)
    draws = pd.DataFrame(params, columns=names)
    draws.index.name = "replicate"
    return BootstrapResult(draws, est, conv, int(ss.entropy), ob.natural_names(), ob.natural_kinds())


def row_order(from_design: Design, to_design: Design) -> np.ndarray:
    """Indices taking rows in ``from_design``'s order to ``to_design``'s (the same sample)."""
    if from_design.n != to_design.n or not np.array_equal(np.sort(from_design.row_pos), np.sort(to_design.row_pos)):
        raise ValueError("the models were fit on different samples")
    where = np.empty(int(max(from_design.row_pos.max(), to_design.row_pos.max())) + 1, dtype=np.intp)
    where[from_design.row_pos] = np.arange(from_design.n)
    return where[to_design.row_pos]


def bootstrap_lr_pvalue(null: SimulationSource, alt: Objective, alt_theta: np.ndarray, observed: float,
                        n_boot: int, seed=None, n_jobs: int = 1, progress: Optional[bool] = None) -> tuple:
    """``(p, statistics)``: the parametric-bootstrap p-value of an LR statistic,
    ``(1 + #{LR* >= LR}) / (1 + B)`` over the replicates whose two refits converged."""
    order = row_order(null.objective.design, alt.design)
    parts = run_chunks(_lr_chunk, (null, alt, alt_theta, order), int(n_boot), seed, alt.design.n, n_jobs, progress)
    lr = np.concatenate([s for s, _ in parts])
    ok = np.concatenate([c for _, c in parts]) & np.isfinite(lr)
    lr = lr[ok]
    return float((1 + np.sum(lr >= observed - 1e-8 * max(1.0, abs(observed)))) / (1 + lr.size)), lr
