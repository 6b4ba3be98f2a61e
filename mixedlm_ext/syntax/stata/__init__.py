"""Parse Stata ``mixed`` commands into a :class:`~mixedlm_ext.spec.model.ModelSpec`.

Syntax accepted (see ``STATA_MIXED.md``)::

    [mixed] depvar [indepvars] [if exp] [, fe_opts] || level: [varlist] [, re_opts] || ... [, opts]

* The fixed part may use ``i.var`` (-> ``C(var)``), ``ib#.var`` / ``ib(#).var``
  (-> ``C(var, Treatment(reference=#))``) and ``c.var`` (-> ``var``).
* ``if exp`` is translated to a pandas ``DataFrame.eval`` string.
* Every ``|| level: ...`` segment becomes one :class:`REEquation`; levels nest
  from left to right, ``_all`` is the single all-data group and ``R.var`` a
  factor random effect.
* Global options (``reml``, ``residuals()``, display and maximisation
  options) may follow the comma of any segment.

Options and covariance/residual types accept Stata's minimal abbreviations
(``cov(un)``, ``res(ar 1, t(time))``, ``stddev``, ``nocons`` ...).

Modules: :mod:`.command` (the entry point ``parse_stata``) checks and splits
the command with :mod:`.scan`, then parses the fixed part
(:mod:`.fixed_segment`) and each ``||`` segment (:mod:`.random_segment`).
Their option lists go through :mod:`.option_table`, which uses
:mod:`.options` (option tokens), :mod:`.arguments` (option arguments) and
:mod:`.weights`, collecting into :mod:`.settings`.  ``if exp`` is parsed by
:mod:`.if_parser` and translated by :mod:`.if_translator` (``translate_if``).
"""
from __future__ import annotations

from ...core.errors import StataSyntaxError
from .command import parse_stata
from .if_translator import translate_if

__all__ = ["StataSyntaxError", "parse_stata", "translate_if"]
