"""Plots render to PNG without a display (matplotlib's Agg canvas)."""
from __future__ import annotations

import io

import pytest

import mixedlm_ext as mx

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def pig():
    return mx.load_dataset("pig")


@pytest.fixture(scope="module")
def res(pig):
    return mx.mixed("mixed weight week || id: week, covariance(unstructured)", pig)


@pytest.fixture(scope="module")
def prod():
    return mx.mixed("mixed gsp private emp hwy water other unemp || region: || state:",
                    mx.load_dataset("productivity"))


def render(fig) -> bytes:
    assert isinstance(fig, Figure)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=50)
    data = buf.getvalue()
    assert data.startswith(PNG) and len(data) > 1000
    return data


def test_caterpillar(res, prod):
    fig = res.plot_caterpillar()
    assert len([a for a in fig.axes if a.get_visible()]) == 2  # week, _cons
    render(fig)
    fig = prod.plot_caterpillar(level="state", se="comparative", alpha=0.1)
    assert [a.get_title() for a in fig.axes if a.get_visible()] == ["state: _cons"]
    render(fig)
    render(prod.plot_caterpillar())
    with pytest.raises(KeyError):
        res.plot_caterpillar(level="school")
    with pytest.raises(ValueError):
        res.plot_caterpillar(se="bayes")


def test_spaghetti_like_stata_twoway(res, pig):
    # twoway scatter weight week if id<=10, connect(L)
    fig = res.plot_spaghetti("week", groups=range(1, 11))
    ax = fig.axes[0]
    assert len(ax.lines) == 10
    assert ax.get_xlabel() == "week" and ax.get_ylabel() == "weight"
    render(fig)
    fig = res.plot_spaghetti("week", groups=[1, 2, 3], fitted=True)
    assert len(fig.axes[0].lines) == 6  # observed and fitted per pig
    render(fig)
    render(res.plot_spaghetti("week", data=pig, fitted=True))
    with pytest.raises(ValueError, match="not found"):
        res.plot_spaghetti("month")
    with pytest.raises(ValueError, match="none of the requested"):
        res.plot_spaghetti("week", groups=[999])


def test_spaghetti_nested(prod):
    render(prod.plot_spaghetti("year", groups=[1, 2], fitted=True, data=mx.load_dataset("productivity")))


def test_residual_plots(res):
    fig = res.plot_residuals()
    assert fig.axes[0].get_ylabel() == "residuals"
    render(fig)
    fig = res.plot_qq()
    assert len(fig.axes[0].collections[0].get_offsets()) == 432
    render(fig)


def test_profile_plot(pig):
    res = mx.mixed("mixed weight week || id:", pig)
    fig = res.plot_profile(stddeviations=True)
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 4
    assert {ax.get_xlabel() for ax in fig.axes if ax.get_visible()} == set(res.profile(stddeviations=True))
    render(fig)
