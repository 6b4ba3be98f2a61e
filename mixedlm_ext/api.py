"""Top-level entry points: :func:`mixed` (Stata syntax) and :func:`lmer` (lme4 syntax)."""
from __future__ import annotations

from typing import Optional

import pandas as pd

from .core.keywords import check_keywords
from .model import FIT_KEYWORDS, MixedLMExt
from .syntax.lme4 import updated_formula
from .syntax.stata import parse_stata

_COMMAND_OPTIONS = ("reml", "stddeviations", "nolrtest", "nogroup", "noretable", "nofetable")


def mixed(command: str, data: pd.DataFrame, **options):
    """Fit a model written in Stata's ``mixed`` syntax.

    Parameters
    ----------
    command : str
        e.g. ``"mixed weight week || id: week, covariance(unstructured) reml"``
        (the leading word ``mixed`` is optional).
    data : pandas.DataFrame
    **options
        Fit options of :meth:`MixedLMExt.fit` (``log=True`` prints the
        iteration log, ``emlog``, ``em_iterations``, ``emonly``, ``maxiter``,
        ``level``, ``df_method``, ``vce``, ``start_params``), or ``reml=True``
        / ``stddeviations=True`` ... as if written in the command.  Unknown
        keywords raise ``TypeError``.

    Returns
    -------
    MixedLMExtResultsWrapper
    """
    check_keywords(options, _COMMAND_OPTIONS + tuple(k for k in FIT_KEYWORDS if k not in ("reml", "method")),
                   "mixed()")
    spec = parse_stata(command)
    if "reml" in options:
        spec = spec.with_options(reml=bool(options.pop("reml")))
    extra = {key: options.pop(key) for key in _COMMAND_OPTIONS[1:] if key in options}
    if extra:
        spec = spec.with_options(options=tuple({**spec.option_dict, **extra}.items()))
    return MixedLMExt(spec, data, formula=command.strip()).fit(**options)


def lmer(formula: str, data: pd.DataFrame, REML: Optional[bool] = None, *, reml: Optional[bool] = None,
         weights=None, covariance: Optional[dict] = None, residual=None, **options):
    """Fit an lme4-style formula (``"y ~ x + (x | g)"``); REML by default, as lme4.

    Parameters
    ----------
    formula : str
    data : pandas.DataFrame
    REML, reml : bool, optional
        lme4's ``REML`` (either spelling; default True).  ``REML=False`` fits by ML.
    weights : str or array-like, optional
        lme4's precision weights (a column name or one value per row):
        observation ``i`` has residual variance ``sigma2 / w_i``.
    covariance : dict, optional
        Grouping label -> covariance type (``{"id": "exchangeable"}``).
    residual : optional
        A residual structure object (``AR(2, time="time")``, ``Exponential(time="t")``...).
    **options
        Fit options of :meth:`MixedLMExt.fit`.  Unknown keywords raise ``TypeError``.
    """
    check_keywords(options, ("REML", "weights", "covariance", "residual") + FIT_KEYWORDS, "lmer()")
    if REML is not None and reml is not None and bool(REML) != bool(reml):
        raise ValueError("REML=%r and reml=%r disagree" % (REML, reml))
    method = REML if REML is not None else (reml if reml is not None else True)
    model = MixedLMExt.from_lme4(formula, data, reml=bool(method), covariance=covariance, residual=residual,
                                 weights=weights)
    return model.fit(**options)


def update(result, formula: Optional[str] = None, data: Optional[pd.DataFrame] = None, **options):
    """Refit a model with a changed formula (lme4's ``update``).

    Parameters
    ----------
    result
        A fit of :func:`lmer` or :func:`mixed` (or ``MixedLMExt.from_lme4``/``from_stata``).
    formula : str, optional
        For an lme4-style fit, the new formula, where ``.`` stands for the
        old side (``". ~ . + x"``, ``". ~ . - (1 | g) + (x | g)"``); for a
        Stata-syntax fit, the new command.  Default: the same formula.
    data : pandas.DataFrame, optional
        New data (default: the fit's).
    **options
        Fit options (as :func:`lmer` / :func:`mixed`), e.g. ``REML=False``.

    Returns
    -------
    The new fit.  REML/ML, precision weights and the residual structure are
    kept unless given again.
    """
    model = result.model
    old = model.formula
    if old is None:
        raise ValueError("update() needs a fit made from a formula or command (lmer(), mixed())")
    frame = model.frame if data is None else data
    if "~" not in old:  # a Stata command
        return mixed(formula or old, frame, **options)
    new = old if formula is None else updated_formula(old, formula)
    from .syntax.lme4 import parse_lme4

    reml = options.pop("REML", options.pop("reml", model.spec.reml))
    spec = parse_lme4(new, reml=bool(reml)).with_options(weights=model.spec.weights,
                                                          residual=model.spec.residual)
    check_keywords(options, FIT_KEYWORDS, "update()")
    return MixedLMExt(spec, frame, formula=new).fit(**options)
