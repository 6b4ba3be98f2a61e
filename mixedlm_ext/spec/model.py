"""The model specification: a frozen description every front-end builds.

A :class:`ModelSpec` says *what* to fit, never *how*: the fixed part as a
patsy right-hand side, a list of random-effects equations, the residual
structure, the estimation method and an optional row filter.  Stata-style
commands (``mixed(...)``), lme4-style formulas and the statsmodels-style
``from_formula`` all reduce to one of these, so every later stage (design,
objective, optimizer, results) sees the same thing.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional

from .vocabulary import COVARIANCE_TYPES


@dataclass(frozen=True)
class REEquation:
    """One random-effects equation (one ``|| level: ...`` of Stata).

    Parameters
    ----------
    group : tuple of str
        Grouping path.  The group of a row is the combination of the values of
        these columns (``("region", "state")`` for ``|| region: || state:``).
        The empty tuple is Stata's ``_all``: one group holding all data.
    columns : tuple of str
        Variables with a random coefficient, in Stata's order (constant last).
    constant : bool
        Whether the equation has a random intercept (``_cons``), listed after
        ``columns``.
    covariance : str
        One of ``identity``, ``independent``, ``exchangeable``,
        ``unstructured``.
    factor : str or None
        For Stata's ``R.var``: a factor expanded into one indicator per level
        (``columns`` and ``constant`` are then unused).
    label : str or None
        Level name used in output (``id``, ``region``, ``_all``); defaults to
        the last element of ``group``.
    """

    group: tuple[str, ...]
    columns: tuple[str, ...] = ()
    constant: bool = True
    covariance: str = "identity"
    factor: Optional[str] = None
    label: Optional[str] = None

    def __post_init__(self) -> None:
        if self.covariance not in COVARIANCE_TYPES:
            raise ValueError(
                "covariance must be one of %s, got %r" % (", ".join(COVARIANCE_TYPES), self.covariance)
            )

    @property
    def level_name(self) -> str:
        if self.label is not None:
            return self.label
        return self.group[-1] if self.group else "_all"

    @property
    def effect_names(self) -> tuple[str, ...]:
        """Names of the random effects (without the factor expansion)."""
        if self.factor is not None:
            return ("R.%s" % self.factor,)
        return tuple(self.columns) + (("_cons",) if self.constant else ())


@dataclass(frozen=True)
class ResidualSpec:
    """Residual structure within the lowest-level panels (Stata ``residuals()``).

    ``kind`` is one of ``independent``, ``exchangeable``, ``ar``, ``ma``,
    ``unstructured``, ``banded``, ``toeplitz``, ``exponential``; ``order`` is
    the ``#`` of ``ar #``, ``ma #``, ``banded #``, ``toeplitz #``; ``time``
    and ``by`` are the ``t()`` and ``by()`` variables.
    """

    kind: str = "independent"
    order: Optional[int] = None
    time: Optional[str] = None
    by: Optional[str] = None

    @property
    def is_plain(self) -> bool:
        """Independent residuals with one variance (no structure, no ``by()``)."""
        return self.kind == "independent" and self.by is None


@dataclass(frozen=True)
class WeightSpec:
    """Weights at one level.

    ``kind`` is ``"fweight"`` or ``"pweight"`` (Stata's ``[fw=w]``/``[pw=w]``,
    ``fweight(w)``/``pweight(w)``) or ``"precision"`` (lme4's ``weights=``:
    observation ``i`` has residual variance ``sigma2 / w_i``; observation
    level only); ``var`` a numeric column;
    ``level`` the level label (``"school"``) or ``None`` for the observation
    level.  Weights at a level are conditional on the selection of the
    groups above it and must be constant within the level's groups (see
    :mod:`mixedlm_ext._weights`).
    """

    kind: str
    var: str
    level: Optional[str] = None

    def __post_init__(self) -> None:
        if self.kind not in ("fweight", "pweight", "precision"):
            raise ValueError("weight kind must be 'fweight', 'pweight' or 'precision', got %r" % (self.kind,))
        if self.kind == "precision" and self.level is not None:
            raise ValueError("precision weights are observation-level weights (level must be None)")


@dataclass(frozen=True)
class ModelSpec:
    """Complete description of a linear mixed model.

    Parameters
    ----------
    response : str
        Name of the dependent variable (a column of the data).
    fixed : str
        patsy right-hand side of the fixed part, e.g. ``"week + C(region)"``.
        The intercept is controlled by ``constant`` (``fixed`` must not add or
        remove it).
    constant : bool
        Include the fixed constant ``_cons``.
    random : tuple of REEquation
        Random-effects equations, coarsest first.
    residual : ResidualSpec
    reml : bool
    subset : str or None
        A pandas ``DataFrame.eval`` expression selecting the estimation rows.
    in_range : (int, int) or None
        Stata's ``in f/l``: the rows ``f`` to ``l`` (1-based, inclusive; a
        negative number counts from the end, -1 the last row) of the data
        as given, combined with ``subset``.
    offset : str or None
        A patsy expression (lme4's ``offset()``) added to the linear
        predictor with coefficient 1.
    """

    response: str
    fixed: str = ""
    constant: bool = True
    random: tuple[REEquation, ...] = ()
    residual: ResidualSpec = field(default_factory=ResidualSpec)
    reml: bool = False
    subset: Optional[str] = None
    in_range: Optional[tuple[int, int]] = None
    offset: Optional[str] = None
    options: tuple[tuple[str, object], ...] = ()
    # sampling/frequency weights (observation level and higher levels) and
    # Stata's pwscale(size|effective|gk); see mixedlm_ext._weights
    weights: tuple[WeightSpec, ...] = ()
    pwscale: Optional[str] = None

    def with_options(self, **kw) -> "ModelSpec":
        return replace(self, **kw)

    @property
    def option_dict(self) -> dict:
        return dict(self.options)
