"""Top-level entry points: :func:`mixed` (Stata syntax), :func:`lmer` (lme4 syntax), and
:func:`sufficient_statistics` / :func:`fit_statistics` (fits from mergeable summaries)."""
from __future__ import annotations

from typing import Optional

import pandas as pd

from .core.keywords import check_keywords
from .design.statistics import SufficientStatistics
from .design.statistics_chunk import frame_statistics
from .design.statistics_design import design_from_statistics
from .model import FIT_KEYWORDS, MixedLMExt
from .scale.frames import is_dask_frame
from .spec.model import ModelSpec
from .syntax.lme4 import parse_lme4, updated_formula
from .syntax.stata import parse_stata

_COMMAND_OPTIONS = ("reml", "stddeviations", "nolrtest", "nogroup", "noretable", "nofetable")


def mixed(command: str, data: pd.DataFrame, **options):
    """Fit a model written in Stata's ``mixed`` syntax.

    Parameters
    ----------
    command : str
        e.g. ``"mixed weight week || id: week, covariance(unstructured) reml"``
        (the leading word ``mixed`` is optional).
    data : pandas.DataFrame or dask.dataframe.DataFrame
        A Dask DataFrame is fitted from its sufficient statistics, partition by
        partition, under the active scheduler (see ``docs/scale.md``).
    **options
        ``statistics_on`` (Dask only): ``"auto"``, ``"client"`` or ``"workers"``,
        where the per-group statistics are kept.
        Fit options of :meth:`MixedLMExt.fit` (``log=True`` prints the
        iteration log, ``emlog``, ``em_iterations``, ``emonly``, ``maxiter``,
        ``level``, ``df_method``, ``vce``, ``start_params``), or ``reml=True``
        / ``stddeviations=True`` ... as if written in the command.  Unknown
        keywords raise ``TypeError``.

    Returns
    -------
    MixedLMExtResults
    """
    check_keywords(options, _COMMAND_OPTIONS + ("statistics_on",)
                   + tuple(k for k in FIT_KEYWORDS if k not in ("reml", "method")), "mixed()")
    statistics_on = options.pop("statistics_on", "auto")
    spec = parse_stata(command)
    if "reml" in options:
        spec = spec.with_options(reml=bool(options.pop("reml")))
    extra = {key: options.pop(key) for key in _COMMAND_OPTIONS[1:] if key in options}
    if extra:
        spec = spec.with_options(options=tuple({**spec.option_dict, **extra}.items()))
    return MixedLMExt(spec, data, formula=command.strip(), statistics_on=statistics_on).fit(**options)


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
    check_keywords(options, ("REML", "weights", "covariance", "residual", "statistics_on") + FIT_KEYWORDS, "lmer()")
    statistics_on = options.pop("statistics_on", "auto")
    if REML is not None and reml is not None and bool(REML) != bool(reml):
        raise ValueError("REML=%r and reml=%r disagree" % (REML, reml))
    method = REML if REML is not None else (reml if reml is not None else True)
    model = MixedLMExt.from_lme4(formula, data, reml=bool(method), covariance=covariance, residual=residual,
                                 weights=weights, statistics_on=statistics_on)
    return model.fit(**options)


def _model_spec(model, reml: Optional[bool]) -> ModelSpec:
    """A :class:`ModelSpec` from a Stata command, an lme4-style formula (with ``~``) or a spec."""
    if isinstance(model, ModelSpec):
        return model if reml is None else model.with_options(reml=bool(reml))
    if not isinstance(model, str):
        raise TypeError("the model must be a Stata command, an lme4-style formula or a ModelSpec, got %s"
                        % type(model).__name__)
    if "~" in model:
        return parse_lme4(model, reml=True if reml is None else bool(reml))
    spec = parse_stata(model)
    return spec if reml is None else spec.with_options(reml=bool(reml))


def sufficient_statistics(model, data, *, levels: Optional[dict] = None, groups: Optional[pd.DataFrame] = None,
                          reml: Optional[bool] = None) -> SufficientStatistics:
    """The model's sufficient statistics of the rows of ``data``: a mergeable summary.

    Parameters
    ----------
    model : str or ModelSpec
        A Stata ``mixed`` command, or an lme4-style formula (``"y ~ x + (1 | g)"``).
    data : pandas.DataFrame or dask.dataframe.DataFrame
        One chunk of the rows (a site's data, a batch of a stream), or a whole
        Dask DataFrame (reduced partition by partition).
    levels : dict, optional
        Factor variable -> every one of its levels.  Chunks are coded by
        their own levels otherwise, and only chunks with the same levels can
        be added; give ``levels`` when chunks may lack some.
    groups : pandas.DataFrame, optional
        Every combination of the grouping variables, for crossed designs
        (their groups are numbered once for all chunks).
    reml : bool, optional
        Override the command's (or formula's) estimation method.

    Returns
    -------
    SufficientStatistics
        ``s1 + s2`` are the statistics of both chunks' rows; :func:`fit_statistics`
        fits from them.  Their size does not grow with the number of rows.
    """
    spec = _model_spec(model, reml)
    if is_dask_frame(data):
        if levels is not None or groups is not None:
            raise TypeError("levels= and groups= are found from a Dask DataFrame itself (one scan)")
        from .scale.statistics import dask_statistics

        return dask_statistics(spec, data)
    if not isinstance(data, pd.DataFrame):
        raise TypeError("data must be a pandas or Dask DataFrame, got %s" % type(data).__name__)
    return frame_statistics(spec, data, levels, groups)


def fit_statistics(statistics: SufficientStatistics, **options):
    """Fit the model from its sufficient statistics alone (see :func:`sufficient_statistics`).

    ``options`` are those of :meth:`MixedLMExt.fit`.  The results are those of
    the in-memory fit of the same rows (log-likelihood, estimates, standard
    errors, tests, BLUPs); what needs the rows themselves (predictions on the
    estimation sample, ``estat_wcorrelation``, ``dfmethod(kroger)``) is
    refused with an error that says so.
    """
    if not isinstance(statistics, SufficientStatistics):
        raise TypeError("fit_statistics needs SufficientStatistics (from sufficient_statistics), got %s"
                        % type(statistics).__name__)
    check_keywords(options, FIT_KEYWORDS, "fit_statistics()")
    spec = statistics.spec
    return MixedLMExt(spec, None, design=design_from_statistics(statistics)).fit(**options)


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
    reml = options.pop("REML", options.pop("reml", model.spec.reml))
    spec = parse_lme4(new, reml=bool(reml)).with_options(weights=model.spec.weights,
                                                          residual=model.spec.residual)
    check_keywords(options, FIT_KEYWORDS, "update()")
    return MixedLMExt(spec, frame, formula=new).fit(**options)
