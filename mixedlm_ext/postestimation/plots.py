"""Plots after ``mixed``: caterpillar, spaghetti (growth curves), residual diagnostics, profile traces.

matplotlib is an optional dependency (``pip install mixedlm_ext[plot]``); it
is imported inside each function, so importing :mod:`mixedlm_ext` never
needs it.  Every function takes the fitted results and returns the
:class:`matplotlib.figure.Figure` it drew (nothing is shown; call
``fig.savefig`` or display it in a notebook).  Figures are created with
:class:`matplotlib.figure.Figure` directly, not through ``pyplot``, so no
window or global figure state is involved; in a notebook the returned
figure displays itself.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd

from ..core.distributions import norm_ppf


def _figure(figsize=None):
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("plotting needs matplotlib: pip install 'mixedlm_ext[plot]'") from exc
    return Figure(figsize=figsize, layout="constrained")


def _label(idx) -> str:
    return ", ".join(str(v) for v in idx) if isinstance(idx, tuple) else str(idx)


def caterpillar(res, level: Optional[str] = None, alpha: float = 0.05, se: str = "conditional",
                figsize=None):
    """Sorted BLUPs with ``1 - alpha`` intervals, one panel per (term, effect).

    Parameters
    ----------
    res : MixedLMExtResults (or its wrapper)
    level : str, optional
        Key of ``res.random_effects`` (default: all terms).
    alpha : float
    se : {"conditional", "comparative"}
        Conditional SDs (lme4's ``condVar``) or comparative SEs (Stata's ``reses``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    blups = res.random_effects
    if se == "conditional":
        ses = res.random_effects_se
    elif se == "comparative":
        ses = {}
        for key, cov in res.random_effects_cov("comparative").items():
            eff = list(cov.columns)
            k = len(eff)
            v = cov.to_numpy().reshape(-1, k, k)
            ses[key] = pd.DataFrame(np.sqrt(np.clip(np.diagonal(v, axis1=1, axis2=2), 0, None)),
                                    index=blups[key].index, columns=eff)
    else:
        raise ValueError("se must be 'conditional' or 'comparative', got %r" % (se,))
    keys = list(blups) if level is None else [level]
    for k in keys:
        if k not in blups:
            raise KeyError("no random-effects term %r; available: %s" % (k, ", ".join(blups)))
    panels = [(k, e) for k in keys for e in blups[k].columns]
    if not panels:
        raise ValueError("the model has no random effects")
    z = norm_ppf(1 - alpha / 2)
    ncol = min(len(panels), 3)
    nrow = int(np.ceil(len(panels) / ncol))
    nmax = max(len(blups[k]) for k, _ in panels)
    if figsize is None:
        figsize = (4.0 * ncol, max(3.0, min(0.18 * nmax + 1.2, 14.0)) * nrow)
    fig = _figure(figsize)
    axes = np.atleast_1d(fig.subplots(nrow, ncol, squeeze=False)).ravel()
    for ax, (k, e) in zip(axes, panels):
        b = blups[k][e].to_numpy()
        s = ses[k][e].to_numpy()
        order = np.argsort(b, kind="stable")
        ypos = np.arange(len(b))
        ax.errorbar(b[order], ypos, xerr=z * s[order], fmt="o", ms=3, color="C0", ecolor="0.5",
                    elinewidth=1, capsize=0)
        ax.axvline(0.0, color="0.3", lw=0.8, ls="--")
        if len(b) <= 60:
            labels = [_label(blups[k].index[i]) for i in order]
            ax.set_yticks(ypos)
            ax.set_yticklabels(labels, fontsize=7 if len(b) > 25 else 9)
        else:
            ax.set_yticks([])
        ax.set_ylim(-1, len(b))
        ax.set_title("%s: %s" % (k, e))
        ax.set_xlabel("BLUP (%d%% interval)" % round(100 * (1 - alpha)))
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    return fig


def spaghetti(res, time: str, response: Optional[str] = None, groups=None, fitted: bool = False,
              data: Optional[pd.DataFrame] = None, group: Optional[str] = None, figsize=None):
    """Response against ``time``, one connected line per group.

    Parameters
    ----------
    res : MixedLMExtResults (or its wrapper)
    time : str
    response : str, optional
        Default: the model's response.
    groups : iterable, optional
        Values of the grouping variable to draw (default all), e.g.
        ``range(1, 11)`` for Stata's ``if id<=10``.
    fitted : bool
        Overlay each group's fitted curve (fixed part plus BLUPs), dashed.
    data : pandas.DataFrame, optional
        Default: the estimation sample.
    group : str, optional
        Grouping variable; default the finest level's (the last variable of
        its path).

    Returns
    -------
    matplotlib.figure.Figure
    """
    d = res.model.design
    response = response or d.spec.response
    if group is None:
        paths = [lvl.path for lvl in d.levels if lvl.path]
        if not paths:
            raise ValueError("the model has no grouping variable; pass group=")
        group = paths[-1][-1]
        gcols = list(paths[-1])
    else:
        gcols = [group]
    if data is None:
        frame = d.data.copy()
        frame.index = d.row_index
        fit = res.predict(kind="fitted") if fitted else None
    else:
        frame = data
        fit = res.predict(data, kind="fitted") if fitted else None
    for c in [time, response] + gcols:
        if c not in frame.columns:
            raise ValueError("variable '%s' not found in the data to plot" % c)
    if groups is not None:
        wanted = set(groups)
        keep = frame[group].isin(wanted).to_numpy()
        frame = frame.loc[keep]
        if not len(frame):
            raise ValueError("none of the requested groups is in the data")
    fig = _figure(figsize or (7.0, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    for i, (key, sub) in enumerate(frame.groupby(gcols, sort=True)):
        sub = sub.sort_values(time, kind="stable")
        color = "C%d" % (i % 10)
        ax.plot(sub[time].to_numpy(), sub[response].to_numpy(), "-o", ms=3, lw=1, color=color,
                label=_label(key[0] if isinstance(key, tuple) and len(key) == 1 else key))
        if fit is not None:
            ax.plot(sub[time].to_numpy(), fit.loc[sub.index].to_numpy(), "--", lw=1, color=color)
    ax.set_xlabel(time)
    ax.set_ylabel(response)
    title = "%s by %s" % (response, group)
    if fitted:
        title += " (dashed: fitted)"
    ax.set_title(title)
    if frame[gcols].drop_duplicates().shape[0] <= 12:
        ax.legend(title=group, fontsize=8, ncol=2, frameon=False)
    return fig


def residuals_vs_fitted(res, figsize=None):
    """Residuals against fitted values (both including the BLUPs), with a zero line."""
    fit = res.predict(kind="fitted")
    resid = res.predict(kind="residuals")
    fig = _figure(figsize or (6.0, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    ax.scatter(fit.to_numpy(), resid.to_numpy(), s=10, alpha=0.7)
    ax.axhline(0.0, color="0.3", lw=0.8, ls="--")
    ax.set_xlabel("fitted values (xb + Zu)")
    ax.set_ylabel("residuals")
    ax.set_title("Residuals vs fitted")
    return fig


def qq(res, figsize=None):
    """Normal quantile plot of the standardized residuals (``predict(kind="rstandard")``)."""
    z = np.sort(res.predict(kind="rstandard").to_numpy())
    n = z.size
    pp = (np.arange(1, n + 1) - 0.5) / n
    q = norm_ppf(pp)
    fig = _figure(figsize or (5.0, 5.0))
    ax = fig.add_subplot(1, 1, 1)
    ax.scatter(q, z, s=10, alpha=0.7)
    lo, hi = min(q.min(), z.min()), max(q.max(), z.max())
    ax.plot([lo, hi], [lo, hi], color="0.3", lw=0.8, ls="--")
    ax.set_xlabel("normal quantiles")
    ax.set_ylabel("standardized residuals")
    ax.set_title("Normal Q-Q plot")
    return fig


def profile(traces, level: float = 95.0, figsize=None):
    """Profile traces: ``zeta`` against each parameter (lme4's ``xyplot(profile(fit))``).

    Parameters
    ----------
    traces : dict of DataFrame, or results
        ``res.profile()`` (name -> trace with columns ``zeta`` and the
        parameter), or fitted results (their profiles are computed).
    level : float
        Horizontal lines at ``zeta = +-z`` of this confidence level; where a
        trace crosses them are the profile interval's ends.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not isinstance(traces, dict):
        traces = traces.profile()
    k = len(traces)
    ncol = min(3, max(k, 1))
    nrow = int(np.ceil(k / ncol))
    fig = _figure(figsize or (3.2 * ncol, 2.6 * nrow))
    axes = fig.subplots(nrow, ncol, squeeze=False).ravel()
    z = float(norm_ppf(0.5 + level / 200.0))
    for ax, (name, tr) in zip(axes, traces.items()):
        ax.plot(tr[name], tr["zeta"], marker=".", color="C0")
        for v in (-z, 0.0, z):
            ax.axhline(v, color="0.6", lw=0.8, ls="--" if v else ":")
        ax.set_xlabel(name)
        ax.set_ylabel("zeta")
    for ax in axes[k:]:
        ax.set_visible(False)
    return fig
