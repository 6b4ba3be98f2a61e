"""Top-level entry points: :func:`mixed` (Stata syntax) and :func:`lmer` (lme4 syntax)."""
from __future__ import annotations

from typing import Optional

import pandas as pd

from .model import MixedLMExt
from .syntax.stata import parse_stata

_FIT_OPTIONS = ("log", "emlog", "em_iterations", "emonly", "maxiter", "level", "stream", "start_params",
                "df_method", "vce")


def mixed(command: str, data: pd.DataFrame, **options):
    """Fit a model written in Stata's ``mixed`` syntax.

    Parameters
    ----------
    command : str
        e.g. ``"mixed weight week || id: week, covariance(unstructured) reml"``
        (the leading word ``mixed`` is optional).
    data : pandas.DataFrame
    **options
        Fit options (``log=True`` prints the iteration log, ``emlog``,
        ``em_iterations``, ``emonly``, ``maxiter``, ``level``), or ``reml=True``
        / ``stddeviations=True`` as if written in the command.

    Returns
    -------
    MixedLMExtResultsWrapper
    """
    spec = parse_stata(command)
    extra = {}
    if "reml" in options:
        spec = spec.with_options(reml=bool(options.pop("reml")))
    for key in ("stddeviations", "nolrtest", "nogroup", "noretable", "nofetable"):
        if key in options:
            extra[key] = options.pop(key)
    if extra:
        spec = spec.with_options(options=tuple({**spec.option_dict, **extra}.items()))
    unknown = [k for k in options if k not in _FIT_OPTIONS]
    if unknown:
        raise TypeError("mixed() got unknown option(s): %s" % ", ".join(unknown))
    return MixedLMExt(spec, data).fit(**options)


def lmer(formula: str, data: pd.DataFrame, *, reml: bool = True, covariance: Optional[dict] = None,
         residual=None, **options):
    """Fit an lme4-style formula (``"y ~ x + (x | g)"``); REML by default, as lme4.

    ``covariance`` maps a grouping label to a covariance type; ``residual`` is
    a residual structure object (``AR(2, time="time")``, ``Exponential(time="t")``...).
    """
    return MixedLMExt.from_lme4(formula, data, reml=reml, covariance=covariance, residual=residual).fit(**options)
