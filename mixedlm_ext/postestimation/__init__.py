"""postestimation."""
