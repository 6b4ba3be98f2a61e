"""Summaries: Stata's layout of factor variables and groups, and export to LaTeX, HTML and CSV."""
from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from statsmodels.iolib.summary import Summary
from statsmodels.iolib.table import SimpleTable

import mixedlm_ext as mx
from mixedlm_ext.results.tables import fmt_g


@pytest.fixture(scope="module")
def prod_fv():
    return mx.mixed("mixed gsp private emp i.region##c.unemp c.hwy#c.hwy || state:", mx.load_dataset("productivity"))


def _rows(text: str) -> list[str]:
    return text.splitlines()


def test_factor_variable_block_layout(prod_fv):
    lines = _rows(prod_fv.summary().as_text())
    i = lines.index("      region |")
    assert lines[i - 1] == "             |", "a blank line before a factor-variable block"
    assert lines[i + 1].startswith("          2  |  -.0649995")
    assert lines.index("      region#|") == lines.index("     c.unemp |") - 1  # a long heading wraps at '#'
    assert any(line.startswith(" c.hwy#c.hwy |   .0019919") for line in lines)
    assert not any("(base)" in line for line in lines), "base levels only with baselevels"


def test_baselevels_options(prod_fv):
    base = _rows(prod_fv.summary(baselevels=True).as_text())
    assert base[base.index("      region |") + 1] == "          1  |          0  (base)"
    assert sum("(base)" in line for line in base) == 1, "interaction bases implied by main effects stay hidden"
    allb = prod_fv.summary(allbaselevels=True).as_text()
    assert allb.count("(base)") == 2
    squished = prod_fv.summary(vsquish=True).as_text()
    assert "\n             |\n" not in squished
    cmd = mx.mixed("mixed gsp private emp i.region || state:, baselevels", mx.load_dataset("productivity"))
    assert "          1  |          0  (base)" in str(cmd.summary())


def test_base_of_an_interaction_without_main_effects_is_shown_with_baselevels():
    d = mx.load_dataset("productivity").assign(big=lambda x: (x.emp > x.emp.median()).astype(int))
    res = mx.mixed("mixed gsp private i.region#i.big || state:", d)
    rows = res.coefficient_rows()
    assert [r.name for r in rows if r.status == "base"] == ["1b.region#0b.big"]
    assert "        1 0  |          0  (base)" in res.summary(baselevels=True).as_text()


def test_omitted_rows():
    pig = mx.load_dataset("pig").assign(week2=lambda d: 2 * d.week)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = mx.mixed("mixed weight week week2 || id:", pig)
    text = res.summary().as_text()
    assert "       week2 |          0  (omitted)" in text
    assert "note: week2 omitted because of collinearity." in text
    assert "(omitted)" not in res.summary(noomitted=True).as_text()
    assert "noomitted" in mx.parse_stata("mixed weight week || id:, noomitted").option_dict


def test_crossed_group_table():
    pen = mx.load_dataset("penicillin")
    for res in (mx.mixed("mixed diameter || _all: R.plate || sample:", pen),
                mx.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", pen, REML=False)):
        g = res.estat_group()
        assert list(g.index) == ["_all", "plate", "sample"]
        assert g.loc["_all"].tolist() == [1, 144, 144.0, 144]
        assert g.loc["plate"].tolist() == [24, 6, 6.0, 6] and g.loc["sample"].tolist() == [6, 24, 24.0, 24]
        text = res.summary().as_text()
        assert "           _all |          1        144      144.0        144" in text
        assert "          plate |         24          6        6.0          6" in text


def test_summary_is_a_statsmodels_summary_with_tables(prod_fv):
    s = prod_fv.summary()
    assert isinstance(s, Summary) and str(s) == s.as_text()
    assert all(isinstance(t, SimpleTable) for t in s.tables)
    assert [t.title for t in s.tables] == ["Mixed-effects ML regression", "gsp", "Random-effects parameters"]
    fe = s.tables[1]
    stubs = [str(row[0].data).strip() for row in fe[1:]]
    assert stubs[:4] == ["private", "emp", "region", "2"]
    b = prod_fv.fe_params["2.region"]
    assert fe[4][1].data.strip() == fmt_g(b)


def test_latex_export(prod_fv):
    latex = prod_fv.summary().as_latex()
    assert latex.count("\\begin{tabular}") == 3 and latex.count("\\end{tabular}") == 3
    assert fmt_g(prod_fv.fe_params["private"]) in latex
    assert "\\textbf{c.hwy\\#c.hwy}" in latex  # '#' escaped for LaTeX
    assert "chibar2(01)" in latex
    body = re.search(r"\\midrule\n(.*?)\\bottomrule", latex.split("\\begin{tabular}")[2], re.S).group(1)
    first = body.splitlines()[0]
    assert first.split("&")[1].strip() == fmt_g(prod_fv.fe_params["private"])


def test_html_and_csv_export(prod_fv):
    s = prod_fv.summary()
    html = s.as_html()
    assert html.count("<table") == 3
    assert "<th>private</th>" in html.replace(" ", "").replace("<th>private</th>", "<th>private</th>")
    assert fmt_g(prod_fv.bse_fe["emp"]) in html
    assert s._repr_html_() == html
    csv = s.as_csv()
    assert fmt_g(prod_fv.fe_params["emp"]) in csv


def test_seed_pig_layout_unchanged():
    """The seed's first example prints as before (no factor variables: no separators)."""
    res = mx.mixed("mixed weight week || id:", mx.load_dataset("pig"))
    lines = _rows(res.summary().as_text())
    i = lines.index("-------------+----------------------------------------------------------------")
    assert lines[i + 1].startswith("        week |   6.209896")
    assert lines[i + 2].startswith("       _cons |   19.35561")
    assert np.isclose(float(lines[i + 2].split()[2]), 19.35561)


# -- estimates table ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def pig_pair():
    pig = mx.load_dataset("pig")
    return mx.mixed("mixed weight week || id:", pig), mx.mixed("mixed weight week || id: week", pig)


def test_estimates_table_numbers(pig_pair):
    a, b = pig_pair
    t = mx.estimates_table({"randint": a, "randslope": b}, stats=["N", "ll", "aic", "bic", "k"], se=True)
    f = t.frame
    assert list(f.columns) == ["randint", "randslope"]
    assert f.loc[("weight", "week", "b"), "randslope"] == b.fe_params["week"]
    assert f.loc[("weight", "_cons", "se"), "randint"] == a.bse_fe["_cons"]
    assert f.loc[("id", "var(week)", "b"), "randslope"] == b.variance_components.loc[("id", "var(week)"), "estimate"]
    assert np.isnan(f.loc[("id", "var(week)", "b"), "randint"])  # not in the random-intercept model
    assert f.loc[("_stats", "ll", "stat")].tolist() == [a.llf, b.llf]
    assert f.loc[("_stats", "aic", "stat")].tolist() == [a.aic, b.aic]
    assert f.loc[("_stats", "k", "stat")].tolist() == [4, 5]
    assert list(f.index.get_level_values(0).unique()) == ["weight", "id", "Residual", "_stats"]


def test_estimates_table_text_and_exports(pig_pair):
    a, b = pig_pair
    t = mx.estimates_table(a, b, names=["randint", "randslope"], stats=["N", "ll"], se=True)
    lines = str(t).splitlines()
    assert lines[1].split() == ["Variable", "|", "randint", "randslope"]
    week = lines.index(next(line for line in lines if line.strip().startswith("week |")))
    assert lines[week].split()[2:] == ["6.2098958", "6.2098958"]
    assert lines[week + 1].split()[1] == ".03901239" and lines[week + 1].split()[2] == ".09068188"
    assert any(line.split() == ["N", "|", "432", "432"] for line in lines)
    assert any(line.split() == ["ll", "|", "-1014.9268", "-869.03825"] for line in lines)
    assert lines[-1].strip() == "legend: b/se"
    latex = t.as_latex()
    assert latex.count("\\begin{tabular}{lcc}") == 1 and "6.2098958" in latex and "legend: b/se" in latex
    html = t.as_html()
    assert "<th>randslope</th>" in html and "-869.03825" in html


def test_estimates_table_keep_drop_and_errors(pig_pair):
    a, b = pig_pair
    kept = mx.estimates_table(a, b, keep=["week", "id:var(_cons)"]).frame
    assert [k[1] for k in kept.index] == ["week", "var(_cons)"]
    dropped = mx.estimates_table(a, b, drop=["_cons"]).frame
    assert "_cons" not in dropped.index.get_level_values(1)
    with pytest.raises(ValueError, match="unknown statistic 'r2'"):
        mx.estimates_table(a, stats=["r2"])
    with pytest.raises(ValueError, match="names has 1 entries for 2 results"):
        mx.estimates_table(a, b, names=["x"])


def test_dfmethod_header_keeps_group_sizes():
    """The header's 'Obs per group' and 'DF' rows both have avg/max; neither overwrites the other."""
    res = mx.mixed("mixed reaction days || subject: days, cov(un) reml dfmethod(kroger)", mx.load_dataset("sleepstudy"))
    lines = res.summary().as_text().splitlines()
    assert lines[4].split()[-3:] == ["avg", "=", "10.0"] and lines[5].split()[-3:] == ["max", "=", "10"]
    assert any(line.split()[-3:] == ["avg", "=", "17.00"] for line in lines)
    header = res.summary().tables[0]
    stubs = [str(r[0].data).strip() for r in header[1:]]
    assert "Obs per group: avg" in stubs and "DF: avg" in stubs
