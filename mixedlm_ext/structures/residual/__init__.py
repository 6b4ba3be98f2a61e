"""Residual (level-one) structures within the lowest-level panels (``residuals()``).

* :mod:`.structure` -- :class:`~.structure.ResidualStructure` (the plain
  residual) and :class:`~.structure.PanelResidual` (by-groups, link to the
  design), :func:`~.structure.make_residual`;
* :mod:`.kernel` -- the :class:`~.kernel.Kernel` base class, one correlation
  structure bound to a set of panels;
* one module per kind of kernel: :mod:`.independent`, :mod:`.exchangeable`,
  :mod:`.stationary` (AR, MA, Toeplitz), :mod:`.exponential`, :mod:`.indexed`
  (unstructured, banded); :mod:`.autocorrelation` holds the AR/MA algebra;
* :mod:`.registry` -- :data:`~.registry.KERNELS`, the kernels by type;
* :mod:`.whitening` -- the panel rows and the dense, Markov and AR-band whiteners.
"""
