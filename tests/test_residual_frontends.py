"""Residual structures from the Python front-ends build the same model as Stata's residuals()."""
from __future__ import annotations

import pytest

import mixedlm_ext as mx


@pytest.mark.parametrize("obj, opt", [
    (mx.AR(2, time="time"), "ar 2, t(time)"),
    (mx.MA(1, time="time"), "ma 1, t(time)"),
    (mx.Exponential(time="time"), "exponential, t(time)"),
])
def test_lme4_and_statsmodels_front_ends_take_residual_objects(obj, opt):
    ov = mx.load_dataset("ovary")
    ref = mx.mixed("mixed follicles sin1 cos1 || mare:, residuals(%s)" % opt, ov)
    a = mx.lmer("follicles ~ sin1 + cos1 + (1|mare)", ov, reml=False, residual=obj)
    b = mx.MixedLMExt.from_formula("follicles ~ sin1 + cos1", ov, groups="mare", reml=False, residual=obj).fit()
    assert a.model.spec.residual == ref.model.spec.residual == b.model.spec.residual
    assert abs(a.llf - ref.llf) < 1e-7 * abs(ref.llf) and abs(b.llf - ref.llf) < 1e-7 * abs(ref.llf)


def test_residual_must_be_a_structure():
    with pytest.raises(TypeError, match="residual structure"):
        mx.lmer("follicles ~ sin1 + (1|mare)", mx.load_dataset("ovary"), residual="ar1")
