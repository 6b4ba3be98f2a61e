"""structures.residual."""
