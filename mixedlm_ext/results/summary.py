"""Stata-style output for :class:`MixedLMExtResults`: ``print(res.summary())``.

:class:`StataSummary` lays the output out as Stata's ``mixed`` prints it
(header, group table, coefficient table with factor variables grouped under
their heading, random-effects table, LR test) and keeps the same blocks as
SimpleTables for export (``as_latex()``, ``as_html()``, ``tables``).

Stata's display options: ``baselevels`` shows the base levels of factor
variables (``1  |  0  (base)``) and of interactions whose base is not
implied by their lower-order terms, ``allbaselevels`` every base cell,
``noomitted`` hides the columns omitted for collinearity, ``vsquish`` drops
the blank lines around factor-variable blocks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..core.distributions import t_ppf, t_sf
from .tables import TabularSummary, fmt_g, fmt_ll, simple_table

RULE = "-" * 78


@dataclass(frozen=True)
class TableRow:
    """One line of a coefficient table: a heading, a coefficient, or a base/omitted cell."""

    label: str
    values: Optional[tuple[str, ...]] = None  # formatted cells; None for a heading
    note: str = ""  # "(base)" or "(omitted)"
    under_heading: bool = False  # a level row of a factor-variable block


def wrap_label(label: str, width: int = 12) -> list[str]:
    """A long interaction label split after its ``#`` signs, as Stata wraps it."""
    if len(label) <= width or "#" not in label:
        return [label[-width:]]
    lines, cur = [], ""
    for piece in [p + "#" for p in label.split("#")[:-1]] + [label.split("#")[-1]]:
        if cur and len(cur + piece) > width:
            lines.append(cur)
            cur = piece
        else:
            cur += piece
    return lines + [cur]


def label_lines(row: TableRow) -> list[str]:
    """The stub lines of a row: ``"%12s |"``, a level label indented as Stata's."""
    if row.under_heading:
        return ["%11s  |" % row.label[-11:]]
    parts = wrap_label(row.label)
    return ["%13s|" % p for p in parts[:-1]] + ["%12s |" % parts[-1]]


def table_lines(rows: list[TableRow]) -> list[str]:
    """Stata's text of coefficient rows (values right of the stub)."""
    out = []
    for row in rows:
        stub = label_lines(row)
        if row.values is None and not row.note:
            out += stub
        elif row.note:
            out += stub[:-1] + ["%s %10s  %s" % (stub[-1], "0", row.note)]
        else:
            v = row.values
            out += stub[:-1] + ["%s %10s %10s %8s %7s    %10s  %10s" % ((stub[-1],) + tuple(v))]
    return out


class StataSummary(TabularSummary):
    """The printed output of a fit, laid out as Stata's ``mixed`` prints it."""

    def __init__(self, res, *, stddeviations=False, level=95.0, noretable=False, nofetable=False,
                 nolrtest=False, nogroup=False, noheader=False, baselevels=False, allbaselevels=False,
                 noomitted=False, vsquish=False):
        self.res = res
        self.stddeviations = stddeviations
        self.level = level
        self.noretable, self.nofetable = noretable, nofetable
        self.nolrtest, self.nogroup, self.noheader = nolrtest, nogroup, noheader
        self.baselevels, self.allbaselevels = baselevels, allbaselevels
        self.noomitted, self.vsquish = noomitted, vsquish
        lines, tables = [], []
        if not noheader:
            head, head_tables = self._header()
            lines += head + [""]
            tables += head_tables
        if not nofetable:
            rows = self.fe_rows()
            lines += self._fe_text(rows)
            tables.append(self._fe_table(rows))
        show_re = not noretable and res.model.objective.n_natural
        if show_re:
            re_rows = self._re_rows()
            lines += self._re_text(re_rows)
            shown = [r for r in re_rows if r[2] is not None or r[0] is not None]
            tables.append(simple_table([r[2] or [""] * 4 for r in shown],
                                       ["Estimate", self._se_label(), "[%g%% conf." % level, "interval]"],
                                       [r[1] if r[2] is None else "  " + r[1] for r in shown],
                                       "Random-effects parameters"))
        notes = self._lr_line() if show_re and self._has_lr_test() else []
        lines += notes
        extra = self._notes()
        if extra:
            lines += [""] + extra
        super().__init__("\n".join(lines), tables, notes + extra)

    # -- header ------------------------------------------------------------------------
    def _header_pairs(self, grp) -> list[tuple[str, str]]:
        """The header's numbers as (label, value), in Stata's order (``grp``: :meth:`estat_group`)."""
        r = self.res
        pairs = [("Number of obs", "{:,}".format(r.nobs))]
        if len(grp) == 1 and not self.nogroup:
            g = grp.iloc[0]
            pairs += [("Group variable", str(grp.index[0])), ("Number of groups", "{:,}".format(int(g["n_groups"]))),
                      ("Obs per group: min", "{:,}".format(int(g["min"]))), ("Obs per group: avg", "%.1f" % g["avg"]),
                      ("Obs per group: max", "{:,}".format(int(g["max"])))]
        ss, w = r.small_sample, r.wald_chi2
        if ss is not None:
            pairs += [("DF method", ss.label), ("DF: min", "%.2f" % ss.df.min()), ("DF: avg", "%.2f" % ss.df.mean()),
                      ("DF: max", "%.2f" % ss.df.max())]
            f = r.ftest_model
            if f is not None:
                pairs += [("F(%d, %.2f)" % (f.df_num, f.df_denom), "%.2f" % f.statistic),
                          ("Prob > F", "%.4f" % f.pvalue)]
        elif w is not None:
            pairs += [("Wald chi2(%d)" % w.df, "%.2f" % w.statistic), ("Prob > chi2", "%.4f" % w.pvalue)]
        pairs.append((self._ll_label(), fmt_ll(r.llf)))
        return pairs

    def _ll_label(self) -> str:
        if self.res.is_pseudo:  # sampling weights
            return "Log pseudolikelihood"
        return "Log restricted-likelihood" if self.res.reml else "Log likelihood"

    def _header(self) -> tuple[list[str], list]:
        r = self.res
        title = "Mixed-effects %s regression" % r.method
        grp = r.estat_group()
        pairs = self._header_pairs(grp)
        vals = dict(pairs)

        def kv(k, v):
            return "%-16s = %10s" % (k, v)

        lines = ["%-49s%s" % (title, kv("Number of obs", vals["Number of obs"]))]
        if "Group variable" in vals:
            lines += ["%-49s%s" % ("Group variable: %s" % vals["Group variable"],
                                   kv("Number of groups", vals["Number of groups"])),
                      "%-49s%s" % ("", "Obs per group:")]
            lines += ["%-49s%16s = %10s" % ("", k, vals["Obs per group: " + k]) for k in ("min", "avg", "max")]
        else:
            if len(grp) and not self.nogroup:
                lines += [""] + self._group_lines(grp)
            lines.append("")
        lines += self._test_lines(kv)
        if r.vce != "oim":
            lines.append("%78s" % "(Std. err. adjusted for {:,} clusters in {})".format(r.n_clusters,
                                                                                          r.cluster_label))
        tables = [simple_table([[v] for _, v in pairs], None, [k for k, _ in pairs], title)]
        if len(grp) > 1 and not self.nogroup:
            tables.append(simple_table([["{:,}".format(int(g["n_groups"])), "{:,}".format(int(g["min"])),
                                         "%.1f" % g["avg"], "{:,}".format(int(g["max"]))] for _, g in grp.iterrows()],
                                       ["No. of groups", "Minimum", "Average", "Maximum"],
                                       [str(i) for i in grp.index], "Observations per group"))
        return lines, tables

    @staticmethod
    def _group_lines(grp) -> list[str]:
        lines = ["-" * 61, "                |     No. of       Observations per group",
                 " Group variable |     groups    Minimum    Average    Maximum",
                 "----------------+--------------------------------------------"]
        for name, g in grp.iterrows():
            lines.append("%15s |%11s%11s%11s%11s" % (str(name)[-15:], "{:,}".format(int(g["n_groups"])),
                                                    "{:,}".format(int(g["min"])), "%.1f" % g["avg"],
                                                    "{:,}".format(int(g["max"]))))
        return lines + ["-" * 61]

    def _test_lines(self, kv) -> list[str]:
        r = self.res
        left_ll = "%s = %s" % (self._ll_label(), fmt_ll(r.llf))
        ss, w = r.small_sample, r.wald_chi2
        if ss is not None:  # dfmethod(): DF summary and the model F test
            df = ss.df
            lines = ["%-49s%-4s%12s = %10s" % ("DF method: %s" % ss.label, "DF:", "min", "%.2f" % df.min()),
                     "%-49s%-4s%12s = %10s" % ("", "", "avg", "%.2f" % df.mean()),
                     "%-49s%-4s%12s = %10s" % ("", "", "max", "%.2f" % df.max())]
            f = r.ftest_model
            if f is None:
                return lines + [left_ll]
            return lines + ["%-49s%s" % ("", kv("F(%d, %.2f)" % (f.df_num, f.df_denom), "%.2f" % f.statistic)),
                            "%-49s%s" % (left_ll, kv("Prob > F", "%.4f" % f.pvalue))]
        if w is not None:
            return ["%-49s%s" % ("", kv("Wald chi2(%d)" % w.df, "%.2f" % w.statistic)),
                    "%-49s%s" % (left_ll, kv("Prob > chi2", "%.4f" % w.pvalue))]
        return [left_ll]

    # -- fixed effects -------------------------------------------------------------------
    def _se_label(self) -> str:
        return "Robust std. err." if self.res.vce != "oim" else "Std. err."

    def _shown(self, row) -> bool:
        if row.status == "base":
            return self.allbaselevels or (self.baselevels and not row.inferable)
        return not (row.status == "omitted" and self.noomitted)

    def fe_rows(self) -> list[TableRow]:
        """The coefficient table's rows, factor variables grouped under their heading."""
        r = self.res
        ss = r.small_sample  # dfmethod(): t with per-coefficient DF
        dfs = dict(zip(r.fe_params.index, ss.df)) if ss is not None else {}
        blocks: list[list[TableRow]] = []
        heading = object()
        for cr in r.coefficient_rows():
            if not self._shown(cr):
                continue
            group = cr.header if cr.header is not None else (cr.name if "#" in cr.name else None)
            if group is None or group != heading:
                blocks.append([])
                if cr.header is not None:
                    blocks[-1].append(TableRow(cr.header))
            heading = group
            note = {"base": "(base)", "omitted": "(omitted)"}.get(cr.status, "")
            values = None if note else self._coef_cells(cr.name, dfs.get(cr.name, np.inf))
            blocks[-1].append(TableRow(cr.label, values, note, cr.header is not None))
        rows: list[TableRow] = []
        for k, blk in enumerate(blocks):
            grouped = len(blk) > 1 or "#" in blk[0].label or blk[0].under_heading
            if grouped and rows and not self.vsquish and rows[-1].label != "":
                rows.append(TableRow(""))
            rows += blk
            if grouped and k + 1 < len(blocks) and not self.vsquish:
                rows.append(TableRow(""))
        return rows

    def _coef_cells(self, name: str, dfk: float) -> tuple[str, ...]:
        r = self.res
        b, s = r.fe_params[name], r.bse_fe[name]
        z = t_ppf(0.5 + self.level / 200.0, dfk)
        zv = b / s if s > 0 else np.nan
        p = 2 * t_sf(abs(zv), dfk) if np.isfinite(zv) else np.nan
        return (fmt_g(b), fmt_g(s), "%.2f" % zv if np.isfinite(zv) else ".", "%.3f" % p if np.isfinite(p) else ".",
                fmt_g(b - z * s), fmt_g(b + z * s))

    def _stat(self) -> str:
        return "t" if self.res.small_sample is not None else "z"

    def _fe_text(self, rows: list[TableRow]) -> list[str]:
        r = self.res
        robust = r.vce != "oim"
        lines = [RULE] + (["%12s |               Robust" % ""] if robust else [])
        lines += ["%12s | Coefficient  %s.      %s    P>|%s|     [%g%% conf. interval]"
                  % (r.model.spec.response[-12:], "std. err" if robust else "Std. err", self._stat(), self._stat(),
                     self.level), "-" * 13 + "+" + "-" * 64]
        return lines + table_lines(rows) + [RULE]

    def _fe_table(self, rows: list[TableRow]):
        data, stubs = [], []
        for row in rows:
            if row.label == "" and row.values is None:
                continue
            stubs.append(("  " if row.under_heading else "") + row.label)
            data.append(list(row.values) if row.values else (["0", row.note, "", "", "", ""] if row.note
                                                              else [""] * 6))
        s = self._stat()
        return simple_table(data, ["Coefficient", self._se_label(), s, "P>|%s|" % s, "[%g%% conf." % self.level,
                                   "interval]"], stubs, self.res.model.spec.response)

    # -- random effects ------------------------------------------------------------------
    def _re_rows(self) -> list[tuple[Optional[str], str, Optional[list[str]]]]:
        """(heading or None, label, cells) of the random-effects table; a heading row has no cells."""
        r = self.res
        ob = r.model.objective
        tab = r.variance_component_table(sd=self.stddeviations, level=self.level)
        headings = []
        for blk in ob.blocks:
            headings += ["%s: %s" % (blk.label, blk.title)] * blk.structure.n_natural
        res_title = ob.residual.title
        headings += [("Residual: %s" % res_title) if res_title else None] * len(ob.residual.names())
        out, prev = [], object()
        for (lvl, par), row, head in zip(tab.index, tab.itertuples(index=False), headings):
            if head != prev:
                out.append((head, head or "", None))
                prev = head
            out.append((head, par, [fmt_g(v) for v in row]))
        return out

    def _re_text(self, rows) -> list[str]:
        robust = self.res.vce != "oim"
        lines = ["", RULE] + (["%28s |               Robust" % ""] if robust else []) + [
            "  Random-effects parameters  |   Estimate   %s.     [%g%% conf. interval]"
            % ("std. err" if robust else "Std. err", self.level), "-" * 29 + "+" + "-" * 48]
        for head, label, cells in rows:
            if cells is None:
                if lines[-1][:5] != "-----":
                    lines.append("-" * 29 + "+" + "-" * 48)
                if head is not None and len(head) > 28 and ", by " in head:  # "Residual: AR(1)," / "    by g"
                    first, by = head.split(", by ", 1)
                    lines += ["%-29s|" % (first + ","), "%-29s|" % ("    by " + by)]
                elif head is not None:
                    lines.append("%-29s|" % head)
                continue
            est, se, lo, hi = cells
            lines.append("%28s | %10s %10s     %10s  %10s" % (label[-28:], est, se, lo, hi))
        return lines + [RULE]

    # -- tests and notes -------------------------------------------------------------------
    def _has_lr_test(self) -> bool:
        m = self.res.model
        return not self.nolrtest and self.res.vce == "oim" and bool(m.design.levels or m.objective.residual.n_params)

    def _lr_line(self) -> list[str]:
        t = self.res.lrtest_linear
        if t.kind.startswith("chibar2"):
            return ["LR test vs. linear model: chibar2(01) = %.2f" % t.statistic
                    + " " * 8 + "Prob >= chibar2 = %.4f" % t.pvalue]
        return ["LR test vs. linear model: %s = %.2f" % (t.kind, t.statistic) + " " * 12
                + "Prob > chi2 = %.4f" % t.pvalue, "", "Note: " + t.note]

    def _notes(self) -> list[str]:
        r = self.res
        d = r.model.design
        out = []
        if d.n_dropped:
            out.append("Note: %d observation%s with missing values dropped."
                       % (d.n_dropped, "s" if d.n_dropped > 1 else ""))
        out += ["note: %s omitted because of collinearity." % nm for nm in d.omitted]
        if not r.converged:
            out.append("Warning: convergence not achieved; estimates may be unreliable.")
        return out
