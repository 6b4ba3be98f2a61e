"""What postestimation reads from a fit: the design, the objective and the estimates."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..design.types import Design
from ..fit.objective import Objective
from .blups import LevelBLUP, level_blups
from .terms import TermLayout


@dataclass(frozen=True, eq=False)
class Estimates:
    """A fitted model as postestimation sees it (built once per results object)."""

    design: Design
    objective: Objective
    layout: TermLayout  # the random-effects terms of ``design``
    theta: np.ndarray  # the objective's parameters at the estimates
    beta: np.ndarray  # fixed effects
    cov_beta: np.ndarray  # their covariance
    sigma2: float  # residual variance

    @property
    def rho(self) -> np.ndarray:
        """Parameters of the residual structure."""
        return self.objective.split_theta(self.theta)[1]

    def blups(self) -> dict[int, LevelBLUP]:
        """BLUPs with their conditional and comparative covariances, per level."""
        return level_blups(self.objective, self.theta, self.cov_beta)
