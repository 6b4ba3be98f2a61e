"""Covariance structures: random effects (:mod:`.covariance`) and residuals (:mod:`.residual`)."""
