"""Stata-style text output for :class:`MixedLMExtResults`."""
from __future__ import annotations

import numpy as np
from scipy import stats


def fmt_g(x: float, width: int = 9) -> str:
    """Stata's ``%9.0g`` as it prints coefficient tables: 7 digits, no leading zero."""
    if x is None or not np.isfinite(x):
        return "."
    if x == 0:
        return "0"
    ax = abs(x)
    if ax >= 1e7 or ax < 1e-5:
        s = "%.2e" % x if width <= 9 else "%.3e" % x
        return s
    int_digits = len(str(int(ax))) if ax >= 1 else 0
    dec = max(0, 7 - int_digits)
    s = "%.*f" % (dec, x)
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    if s.startswith("0."):
        s = s[1:]
    elif s.startswith("-0."):
        s = "-" + s[2:]
    return s


def fmt_ll(x: float) -> str:
    """Log likelihoods: 8 significant digits."""
    s = "%.8g" % x
    return s


class StataSummary:
    """The printed output of a fit, laid out as Stata's ``mixed`` prints it."""

    def __init__(self, res, *, stddeviations=False, level=95.0, noretable=False, nofetable=False,
                 nolrtest=False, nogroup=False, noheader=False):
        self.res = res
        self.stddeviations = stddeviations
        self.level = level
        self.noretable, self.nofetable = noretable, nofetable
        self.nolrtest, self.nogroup, self.noheader = nolrtest, nogroup, noheader

    # ---------------------------------------------------------------------------
    def _header(self) -> list[str]:
        r = self.res
        d = r.model.design
        title = "Mixed-effects %s regression" % r.method
        lines = []
        right = []
        grp = r.estat_group()
        levels = [l for l in d.levels if l.path]
        llab = "Log restricted-likelihood" if r.reml else "Log likelihood"
        if r.is_pseudo:  # sampling weights
            llab = "Log pseudolikelihood"
        left_ll = "%s = %s" % (llab, fmt_ll(r.llf))

        def kv(k, v):
            return "%-16s = %10s" % (k, v)

        right.append(kv("Number of obs", "{:,}".format(r.nobs)))
        if len(levels) == 1 and not self.nogroup:
            g = grp.iloc[0]
            lines.append("%-49s%s" % (title, right[0]))
            lines.append("%-49s%s" % ("Group variable: %s" % grp.index[0], kv("Number of groups", "{:,}".format(int(g["n_groups"])))))
            lines.append("%-49s%s" % ("", "Obs per group:"))
            lines.append("%-49s%s" % ("", "%16s = %10s" % ("min", "{:,}".format(int(g["min"])))))
            lines.append("%-49s%s" % ("", "%16s = %10s" % ("avg", "%.1f" % g["avg"])))
            lines.append("%-49s%s" % ("", "%16s = %10s" % ("max", "{:,}".format(int(g["max"])))))
        else:
            lines.append("%-49s%s" % (title, right[0]))
            if levels and not self.nogroup:
                lines.append("")
                lines.append("-" * 61)
                lines.append("                |     No. of       Observations per group")
                lines.append(" Group variable |     groups    Minimum    Average    Maximum")
                lines.append("----------------+--------------------------------------------")
                for name, g in grp.iterrows():
                    lines.append("%15s |%11s%11s%11s%11s" % (name[-15:], "{:,}".format(int(g["n_groups"])),
                                                            "{:,}".format(int(g["min"])), "%.1f" % g["avg"],
                                                            "{:,}".format(int(g["max"]))))
                lines.append("-" * 61)
            lines.append("")
        ss = r.small_sample
        w = r.wald_chi2
        if ss is not None:  # dfmethod(): DF summary and the model F test
            df = ss.df
            lines.append("%-49s%-4s%12s = %10s"
                         % ("DF method: %s" % ss.label, "DF:", "min", "%.2f" % df.min()))
            lines.append("%-49s%-4s%12s = %10s" % ("", "", "avg", "%.2f" % df.mean()))
            lines.append("%-49s%-4s%12s = %10s" % ("", "", "max", "%.2f" % df.max()))
            f = r.ftest_model
            if f is not None:
                fk = "F(%d, %.2f)" % (f.df_num, f.df_denom)
                lines.append("%-49s%s" % ("", kv(fk, "%.2f" % f.statistic)))
                lines.append("%-49s%s" % (left_ll, kv("Prob > F", "%.4f" % f.pvalue)))
            else:
                lines.append(left_ll)
        elif w is not None:
            lines.append("%-49s%s" % ("", kv("Wald chi2(%d)" % w.df, "%.2f" % w.statistic)))
            lines.append("%-49s%s" % (left_ll, kv("Prob > chi2", "%.4f" % w.pvalue)))
        else:
            lines.append(left_ll)
        if r.vce != "oim":
            note = "(Std. err. adjusted for {:,} clusters in {})".format(r.n_clusters, r.cluster_label)
            lines.append("%78s" % note)
        return lines

    def _fe_table(self) -> list[str]:
        r = self.res
        dep = r.model.spec.response
        ss = r.small_sample  # dfmethod(): t with per-coefficient DF
        dfs = ss.df if ss is not None else np.full(len(r.fe_params), np.inf)
        robust = r.vce != "oim"
        lines = ["-" * 78]
        if robust:
            lines.append("%12s |               Robust" % "")
        lines += ["%12s | Coefficient  %s.      %s    P>|%s|     [%g%% conf. interval]"
                  % (dep[-12:], "std. err" if robust else "Std. err", "t" if ss is not None else "z",
                     "t" if ss is not None else "z", self.level),
                  "-" * 13 + "+" + "-" * 64]
        for name, b, s, dfk in zip(r.fe_params.index, r.fe_params.values, r.bse_fe.values, dfs):
            z = stats.t.ppf(0.5 + self.level / 200.0, dfk)
            zv = b / s if s > 0 else np.nan
            p = 2 * stats.t.sf(abs(zv), dfk) if np.isfinite(zv) else np.nan
            lines.append("%12s | %10s %10s %8s %7s    %10s  %10s" % (
                name[-12:], fmt_g(b), fmt_g(s), "%.2f" % zv if np.isfinite(zv) else ".",
                "%.3f" % p if np.isfinite(p) else ".", fmt_g(b - z * s), fmt_g(b + z * s)))
        lines.append("-" * 78)
        return lines

    def _re_table(self) -> list[str]:
        r = self.res
        ob = r.model.objective
        tab = r.variance_component_table(sd=self.stddeviations, level=self.level)
        robust = r.vce != "oim"
        lines = ["", "-" * 78] + (["%28s |               Robust" % ""] if robust else []) + [
                 "  Random-effects parameters  |   Estimate   %s.     [%g%% conf. interval]"
                 % ("std. err" if robust else "Std. err", self.level),
                 "-" * 29 + "+" + "-" * 48]
        # headings: one per block (level: Structure), then the residual block
        headings = []
        for blk in ob.blocks:
            headings += [("%s: %s" % (blk.label, blk.title))] * blk.structure.n_natural
        res_title = ob.residual.title
        headings += [("Residual: %s" % res_title) if res_title else None] * len(ob.residual.names())
        prev = object()
        for (lvl, par), row, head in zip(tab.index, tab.itertuples(index=False), headings):
            if head != prev:
                if prev is not object and lines[-1][:5] != "-----":
                    lines.append("-" * 29 + "+" + "-" * 48)
                if head is not None:
                    if len(head) > 28 and ", by " in head:  # Stata: "Residual: AR(1)," / "    by region"
                        first, by = head.split(", by ", 1)
                        lines.append("%-29s|" % (first + ","))
                        lines.append("%-29s|" % ("    by " + by))
                    else:
                        lines.append("%-29s|" % head)
                prev = head
            est, se, lo, hi = row
            lines.append("%28s | %10s %10s     %10s  %10s" % (par[-28:], fmt_g(est), fmt_g(se), fmt_g(lo), fmt_g(hi)))
        lines.append("-" * 78)
        return lines

    def _lr_line(self) -> list[str]:
        t = self.res.lrtest_linear
        if t.kind.startswith("chibar2"):
            out = ["LR test vs. linear model: chibar2(01) = %.2f" % t.statistic
                   + " " * 8 + "Prob >= chibar2 = %.4f" % t.pvalue]
        else:
            out = ["LR test vs. linear model: %s = %.2f" % (t.kind, t.statistic) + " " * 12
                   + "Prob > chi2 = %.4f" % t.pvalue, "", "Note: " + t.note]
        return out

    def _notes(self) -> list[str]:
        r = self.res
        out = []
        d = r.model.design
        if d.n_dropped:
            out.append("Note: %d observation%s with missing values dropped." % (d.n_dropped, "s" if d.n_dropped > 1 else ""))
        for nm in d.omitted:
            out.append("note: %s omitted because of collinearity." % nm)
        if not r.converged:
            out.append("Warning: convergence not achieved; estimates may be unreliable.")
        return out

    def as_text(self) -> str:
        lines: list[str] = []
        if not self.noheader:
            lines += self._header() + [""]
        if not self.nofetable:
            lines += self._fe_table()
        if not self.noretable and self.res.model.objective.n_natural:
            lines += self._re_table()
            if not self.nolrtest and self.res.model.design.levels or self.res.model.objective.residual.n_params:
                if not self.nolrtest and self.res.vce == "oim":  # none after robust SEs
                    lines += self._lr_line()
        notes = self._notes()
        if notes:
            lines += [""] + notes
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.as_text()

    def __repr__(self) -> str:
        return self.as_text()

    def _repr_html_(self) -> str:
        return "<pre>%s</pre>" % self.as_text()
