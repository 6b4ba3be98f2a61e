"""Inference after the fit, as methods of the results: profiles, bootstrap,
simulation, margins, predictions with intervals.

:class:`InferenceMethodsMixin` is a base class of ``MixedLMExtResults``; each
method delegates to the module that does the work:
:mod:`mixedlm_ext.inference.profile` (profile likelihood),
:mod:`mixedlm_ext.inference.bootstrap` (simulation, parametric bootstrap),
:mod:`mixedlm_ext.inference.margins` (Stata's ``margins`` and contrasts),
:mod:`.prediction` (``get_prediction``).
"""
from __future__ import annotations

from typing import Optional

import pandas as pd

from ..inference.profile import ProfileResult, profile_fit


class InferenceMethodsMixin:
    """Profile likelihood, parametric bootstrap, simulation, margins, prediction intervals."""

    # -- profile likelihood ----------------------------------------------------------
    def profile_result(self, stddeviations: Optional[bool] = None, ml: bool = False) -> ProfileResult:
        """The :class:`~mixedlm_ext.inference.profile.ProfileResult` of every parameter
        (computed once per metric; see :meth:`profile`)."""
        sd = self._stddeviations(stddeviations)
        cache = self.__dict__.setdefault("_profile_cache", {})
        key = (sd, bool(ml))
        if key not in cache:
            cache[key] = profile_fit(self, stddeviations=sd, ml=ml)
        return cache[key]

    def profile(self, stddeviations: Optional[bool] = None, ml: bool = False, alphamax: float = 0.01,
                n_steps: int = 8) -> dict[str, pd.DataFrame]:
        """Profile traces of every parameter, lme4's ``profile()``.

        Parameters
        ----------
        stddeviations : bool, optional
            Variance components as SDs and correlations (default: as the
            model was specified, Stata's ``stddeviations``).
        ml : bool
            After a REML fit, profile the variance components on the ML
            deviance as lme4 does (default: on the restricted one; the fixed
            effects are always profiled on the ML deviance).
        alphamax : float
            The traces reach ``|zeta| = z(1 - alphamax/2)`` on each side.
        n_steps : int
            Points per side.

        Returns
        -------
        dict of DataFrame
            Parameter name -> columns ``zeta``, the parameter, and every other
            parameter at the constrained optimum.  ``plots.profile`` draws them.
        """
        return self.profile_result(stddeviations, ml).traces(alphamax, n_steps)

    def profile_conf_int(self, alpha: float = 0.05, stddeviations: Optional[bool] = None,
                         ml: bool = False) -> pd.DataFrame:
        """Profile-likelihood intervals with the estimate, a ``boundary`` label
        (``"lower"``, ``"upper"`` or ``"both"``: the interval ends at the edge of
        the parameter space) and the ``criterion`` profiled (ML or REML)."""
        return self.profile_result(stddeviations, ml).conf_int(100.0 * (1.0 - alpha))

    def plot_profile(self, stddeviations: Optional[bool] = None, level: Optional[float] = None, figsize=None):
        """Draw the profile traces (:func:`mixedlm_ext.postestimation.plots.profile`)."""
        from .plots import profile

        return profile(self.profile(stddeviations), level=self.level if level is None else level, figsize=figsize)

    def _stddeviations(self, stddeviations: Optional[bool]) -> bool:
        if stddeviations is None:
            return bool(self.model.spec.option_dict.get("stddeviations", False))
        return bool(stddeviations)
