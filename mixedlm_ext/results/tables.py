"""Summaries as text laid out as their home package prints them, and as tables.

:class:`TabularSummary` is a statsmodels :class:`~statsmodels.iolib.summary.Summary`:
``tables`` is a list of :class:`~statsmodels.iolib.table.SimpleTable`
(one per block of the output: header, groups, fixed effects, random
effects), ``extra_txt`` the notes below them.  ``as_text()`` is the
layout of the package the summary imitates (Stata's ``mixed``, lme4's
``summary.merMod``); ``as_latex()`` gives one ``tabular`` per table,
``as_html()`` and ``as_csv()`` the tables as statsmodels renders them.

Also here: the number formats the layouts share (Stata's ``%9.0g`` as its
coefficient tables print it).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from statsmodels.iolib.summary import Summary
from statsmodels.iolib.table import SimpleTable


def fmt_g(x: Optional[float], width: int = 9) -> str:
    """Stata's ``%9.0g`` as it prints coefficient tables: 7 digits, no leading zero."""
    if x is None or not np.isfinite(x):
        return "."
    if x == 0:
        return "0"
    ax = abs(x)
    if ax >= 1e7 or ax < 1e-5:
        return "%.2e" % x if width <= 9 else "%.3e" % x
    int_digits = len(str(int(ax))) if ax >= 1 else 0
    s = "%.*f" % (max(0, 7 - int_digits), x)
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    if s.startswith("0."):
        s = s[1:]
    elif s.startswith("-0."):
        s = "-" + s[2:]
    return s


def fmt_ll(x: float) -> str:
    """Log likelihoods: 8 significant digits."""
    return "%.8g" % x


def simple_table(rows: Sequence[Sequence[str]], headers: Optional[Sequence[str]], stubs: Sequence[str],
                 title: str = "") -> SimpleTable:
    """A SimpleTable of formatted cells (right-aligned data, left-aligned stubs); ``headers``
    None for a table of labelled values."""
    width = len(headers) if headers is not None else max((len(r) for r in rows), default=1)
    data = [list(r) for r in rows] if rows else [[""] * width]
    return SimpleTable(data, headers=list(headers) if headers is not None else None,
                       stubs=list(stubs) if rows else [""], title=title,
                       txt_fmt={"data_aligns": "r", "stub_align": "l"})


class TabularSummary(Summary):
    """A summary: the home package's text layout plus exportable tables.

    Parameters
    ----------
    text : str
        What ``print`` shows.
    tables : list of SimpleTable
    notes : list of str
        Lines below the tables (tests, notes); ``extra_txt``.
    """

    def __init__(self, text: str, tables: list, notes: Sequence[str] = ()):
        super().__init__()
        self.text = text
        self.tables = list(tables)
        self.extra_txt = "\n".join(notes) if notes else None

    def as_text(self) -> str:
        return self.text

    def as_latex(self) -> str:
        """One LaTeX ``tabular`` per table (with its title as caption), then the notes."""
        parts = [t.as_latex_tabular() for t in self.tables]
        if self.extra_txt:
            parts.append(_latex_escape(self.extra_txt).replace("\n", " \\newline\n"))
        return "\n\n".join(parts)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return self.as_html()


def _latex_escape(text: str) -> str:
    for a, b in (("\\", "\\textbackslash{}"), ("&", "\\&"), ("%", "\\%"), ("_", "\\_"), ("#", "\\#"),
                 ("$", "\\$"), ("{", "\\{"), ("}", "\\}")):
        if a == "\\":
            text = text.replace(a, "\0")
        else:
            text = text.replace(a, b)
    return text.replace("\0", "\\textbackslash{}")
