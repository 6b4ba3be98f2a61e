"""Stata's ``predict`` after ``mixed``, kind by kind, on the estimation sample or new data.

* :func:`fixed_prediction` -- ``xb`` and ``stdp`` (the fixed part alone);
* :func:`fitted_prediction` -- ``fitted``, ``residuals``, ``rstandard``
  (fixed part plus the BLUPs of the levels down to ``relevel``);
* :func:`reffects_prediction` -- ``reffects``, ``reses`` (the BLUPs that
  apply to each row, or their comparative standard errors).

On new data a row whose group was not in the estimation sample has no
BLUP: it adds 0 to the random part and gets NaN in ``reffects``/``reses``;
every result's ``attrs["unseen"]`` lists those rows per term.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import numpy as np
import pandas as pd

from ..design.random import effect_column, effect_variables
from ..design.types import Design
from ..syntax.lme4 import parse_lme4
from .estimates import Estimates
from .terms import TermLayout, require_columns

KINDS = ("xb", "stdp", "fitted", "residuals", "rstandard", "reffects", "reses")


def check_kind(kind: str, unexpected: dict) -> None:
    """TypeError for unexpected keyword arguments, ValueError for an unknown kind."""
    if unexpected:
        raise TypeError("predict() got unexpected argument(s): %s" % ", ".join(unexpected))
    if kind not in KINDS:
        raise ValueError("kind must be one of %s, got %r" % (", ".join(KINDS), kind))


def _is_na(value) -> bool:
    if isinstance(value, str):
        return value.replace(" ", "") in ("NA", "~0", "0", "~-1")
    if isinstance(value, bool) or value is pd.NA:
        return value is pd.NA or value is False
    try:
        return bool(value == 0) or bool(np.isnan(value))
    except (TypeError, ValueError):
        return False


def re_form_blocks(layout: TermLayout, re_form) -> Optional[tuple]:
    """lme4's ``re.form``: None (every term), ``()`` (none: NA, ``~0``) or the
    blocks (``(term key, block position)``) of the formula's terms."""
    if re_form is None:
        return None
    if _is_na(re_form):
        return ()
    if not isinstance(re_form, str):
        raise TypeError("re_form must be None, an NA-like value or a formula such as '~(1 | g)', got %r"
                        % (re_form,))
    wanted = parse_lme4("_y ~ 0 + " + re_form.strip().lstrip("~")).random
    out = []
    for eq in wanted:
        hits = [(t.key, k) for t in layout.terms for k, (blk, _) in enumerate(t.blocks)
                if blk.equation.group == eq.group and set(blk.equation.columns) == set(eq.columns)
                and blk.equation.constant == eq.constant]
        if not hits:
            raise ValueError("re_form: the term (%s | %s) is not a random-effects term of the model"
                             % (" + ".join(("1",) * eq.constant + eq.columns) or "0", ":".join(eq.group) or "_all"))
        out += hits
    return tuple(out)


def only_blocks(layout: TermLayout, b: dict[str, np.ndarray], blocks: tuple) -> dict[str, np.ndarray]:
    """The BLUP tables ``b`` with every block not in ``blocks`` set to zero."""
    out = {}
    for t in layout.terms:
        vals = np.array(b[t.key], copy=True)
        col = 0
        for k, (blk, _) in enumerate(t.blocks):
            width = vals.shape[1] if t.expanded else blk.q
            if (t.key, k) not in blocks:
                vals[:, col:col + width] = 0.0
            col += width
        out[t.key] = vals
    return out


def relevel_index(design: Design, relevel: Optional[str]) -> int:
    """Index of the level named ``relevel`` (default: the finest level)."""
    if relevel is None:
        return len(design.levels) - 1
    labels = [lvl.label for lvl in design.levels]
    if relevel not in labels:
        raise ValueError("relevel(%s): no such level; levels are %s" % (relevel, ", ".join(labels)))
    return labels.index(relevel)


@dataclass(frozen=True)
class PredictionRows:
    """The rows to predict for: the estimation sample or new data."""

    frame: pd.DataFrame
    index: pd.Index  # labels of the result
    estimation: bool

    @classmethod
    def of(cls, design: Design, data: Optional[pd.DataFrame]) -> "PredictionRows":
        """The estimation sample when ``data`` is None, else ``data``."""
        if data is None:
            if not design.holds_rows:
                raise ValueError("the model was fitted from sufficient statistics: give the data to predict for")
            return cls(design.data, design.row_index, True)
        if not isinstance(data, pd.DataFrame):
            raise TypeError("data must be a pandas DataFrame")
        return cls(data, data.index, False)

    def fixed_design(self, design: Design) -> np.ndarray:
        """``X`` of the rows (new data: the estimation sample's coding)."""
        return design.X if self.estimation else design.fixed.matrix(self.frame)

    def linear_predictor(self, design: Design, beta: np.ndarray) -> np.ndarray:
        """``X beta`` plus the offset of the rows: the fixed part of a prediction."""
        return self.fixed_design(design) @ beta + self.offset(design)

    def offset(self, design: Design) -> np.ndarray:
        """lme4's ``offset()`` of the rows (0 without one)."""
        if design.offset is None:
            return np.zeros(len(self.frame))
        if self.estimation:
            return design.offset
        require_columns(self.frame, effect_variables(design.spec.offset, design.data.columns), "offset")
        return effect_column(design.spec.offset, self.frame, "the offset")

    def finish(self, obj: Union[pd.Series, pd.DataFrame], unseen: dict):
        """The result in its documented order, with ``attrs["unseen"]``."""
        if self.estimation and pd.api.types.is_integer_dtype(obj.index.dtype) and obj.index.is_unique:
            obj = obj.sort_index()
        obj.attrs["unseen"] = dict(unseen)
        return obj


def fixed_prediction(est: Estimates, rows: PredictionRows, kind: str) -> pd.Series:
    """``xb`` (``X beta_hat``) or ``stdp`` (``sqrt(diag(X Var(beta_hat) X'))``)."""
    X = rows.fixed_design(est.design)
    if kind == "stdp":
        val = np.sqrt(np.clip(np.einsum("ij,jk,ik->i", X, est.cov_beta, X), 0.0, None))
    else:
        val = rows.linear_predictor(est.design, est.beta)
    return rows.finish(pd.Series(val, index=rows.index, name=kind), {})


def _standardized(est: Estimates, rows: PredictionRows, r: np.ndarray) -> np.ndarray:
    """Residuals whitened by the residual correlation, divided by ``sigma``."""
    res_struct = est.objective.residual
    if rows.estimation:
        w = np.asarray(res_struct.whiten_rows(est.rho, r[:, None]), dtype=float)[:, 0]
    else:
        if not res_struct.is_plain:
            raise ValueError("rstandard with a residual structure is available on the "
                             "estimation sample only (data=None)")
        w = r
    return w / np.sqrt(est.sigma2)


def fitted_prediction(est: Estimates, b: dict[str, np.ndarray], rows: PredictionRows, kind: str,
                      upto: int) -> pd.Series:
    """``fitted``, ``residuals`` or ``rstandard`` with the BLUPs ``b`` (per term,
    :meth:`TermLayout.tables`) of the levels ``<= upto``."""
    layout = est.layout
    xb = rows.linear_predictor(est.design, est.beta)
    term_rows = layout.rows(rows.frame, estimation=rows.estimation)
    unseen = {t.key: tuple(rows.index[term_rows[t.key].pos < 0])
              for t in layout.terms if t.level_index <= upto}
    zb = layout.random_part(term_rows, b, upto)
    fit = xb + (zb if zb is not None else 0.0)
    if kind == "fitted":
        return rows.finish(pd.Series(fit, index=rows.index, name="fitted"), unseen)
    yname = est.design.spec.response
    if rows.estimation:  # the design's y is the response minus the offset
        y = est.design.y + rows.offset(est.design)
    else:
        require_columns(rows.frame, [yname], "dependent variable (needed for %s)" % kind)
        y = rows.frame[yname].to_numpy(dtype=float)
    r = y - fit
    if kind == "residuals":
        return rows.finish(pd.Series(r, index=rows.index, name="residuals"), unseen)
    return rows.finish(pd.Series(_standardized(est, rows, r), index=rows.index, name="rstandard"), unseen)


def reffects_prediction(layout: TermLayout, values: dict[str, np.ndarray], rows: PredictionRows,
                        kind: str, level: Optional[int]) -> pd.DataFrame:
    """``reffects`` (``values``: BLUPs per term) or ``reses`` (``values``:
    comparative covariances per term), one column per random effect; only the
    terms of level ``level`` when given."""
    term_rows = layout.rows(rows.frame, estimation=rows.estimation)
    n = len(rows.frame)
    cols, data_cols, unseen = [], [], {}
    for t in layout.terms:
        if level is not None and t.level_index != level:
            continue
        pos = term_rows[t.key].pos
        unseen[t.key] = tuple(rows.index[pos < 0])
        vals = values[t.key]
        if kind == "reses":
            vals = np.sqrt(np.clip(np.diagonal(vals, axis1=1, axis2=2), 0.0, None))
        per_row = np.full((n, vals.shape[1]), np.nan)
        seen = pos >= 0
        per_row[seen] = vals[pos[seen]]
        for j, e in enumerate(t.effects):
            same = e == t.key or t.key.endswith(":" + e)
            cols.append(t.key if same else "%s:%s" % (t.key, e))
            data_cols.append(per_row[:, j])
    mat = np.column_stack(data_cols) if data_cols else np.zeros((n, 0))
    return rows.finish(pd.DataFrame(mat, index=rows.index, columns=cols), unseen)


def prediction_tables(layout: TermLayout, blups: dict, kind: str) -> dict[str, dict]:
    """The BLUP tables a kind of prediction reads (``"b"``: BLUPs, ``"comp"``:
    comparative covariances), per term (:meth:`TermLayout.tables`)."""
    if kind in ("xb", "stdp"):
        return {}
    which = "comp" if kind == "reses" else "b"
    return {which: layout.tables(blups, which)}


def predict_rows(data: Optional[pd.DataFrame], est: Estimates, tables: dict, kind: str,
                 relevel: Optional[str] = None, re_form=None):
    """Stata's ``predict`` of one kind for the rows of ``data`` (None: the estimation
    sample), from the estimates and the BLUP tables of :func:`prediction_tables`
    (``re_form``: lme4's, see :func:`re_form_blocks`)."""
    rows = PredictionRows.of(est.design, data)
    upto = relevel_index(est.design, relevel)
    blocks = re_form_blocks(est.layout, re_form)
    if kind in ("xb", "stdp") or (blocks == () and kind == "fitted"):
        return fixed_prediction(est, rows, kind).rename("fitted" if kind == "fitted" else kind)
    if blocks is not None and kind in ("fitted", "residuals"):
        return fitted_prediction(est, only_blocks(est.layout, tables["b"], blocks), rows, kind, upto)
    if kind in ("reffects", "reses"):
        values = tables["b" if kind == "reffects" else "comp"]
        return reffects_prediction(est.layout, values, rows, kind, upto if relevel is not None else None)
    return fitted_prediction(est, tables["b"], rows, kind, upto)


def unseen_table(layout: TermLayout, data: pd.DataFrame) -> pd.DataFrame:
    """Per term, whether each row's group (or factor level) has no BLUP."""
    term_rows = layout.rows(data)
    return pd.DataFrame({t.key: term_rows[t.key].pos < 0 for t in layout.terms}, index=data.index)


def in_data_order(design: Design, values: np.ndarray, predict_index: pd.Index, name: str) -> pd.Series:
    """Values on the estimation sample (in ``predict``'s order, labels
    ``predict_index``) as a Series in the order of the user's data."""
    by_label = pd.Series(values, index=predict_index)
    order = np.argsort(design.row_pos, kind="stable")
    if predict_index.is_unique:
        vals = by_label.reindex(design.row_index[order]).to_numpy()
    else:
        vals = values
    return pd.Series(vals, index=design.row_index[order], name=name)
