"""Bind a :class:`ModelSpec` to data: the design stage.

:func:`build_design` validates the data, drops incomplete rows (and counts
them), builds the fixed-effects matrix with Stata's names, the grouping codes
of every level, the random-effects design of every level, sorts the rows so
groups are contiguous, and computes the cross-products the objective needs
once.  Nothing here depends on the parameters.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import pandas as pd
import patsy

from ..structures.covariance import CovStruct, make_structure
from ..core.linalg import grouped_crossprod, orthonormalize
from ..spec.model import ModelSpec, REEquation
from ..core.errors import warn_user


class ModelSpecificationError(ValueError):
    """The model cannot be built from this data (names the problem)."""


@dataclass
class Block:
    """One random-effects equation inside a level.

    The block's random effects are ``effects`` (base columns), repeated once
    per level of ``expand_by`` when that is set (Stata's ``R.x`` and crossed
    lme4 terms): its relative factor is ``kron(I_k, Lambda)``.
    """

    equation: REEquation
    structure: CovStruct
    effects: tuple[str, ...]
    label: str
    expand_by: Optional[tuple[str, ...]] = None
    expand_levels: Optional[list] = None

    @property
    def n_expand(self) -> int:
        return 1 if self.expand_levels is None else len(self.expand_levels)

    @property
    def q(self) -> int:
        return self.structure.q * self.n_expand

    def expand(self, M: np.ndarray) -> np.ndarray:
        """``kron(I_k, M)``: a per-level ``q x q`` matrix repeated over the factor's levels."""
        M = np.asarray(M, dtype=float)
        return M if self.n_expand == 1 else np.kron(np.eye(self.n_expand), M)

    def relative_factor(self, theta: np.ndarray) -> np.ndarray:
        return self.expand(self.structure.relative_factor(theta))

    def factor_from_natural(self, nat: np.ndarray, sigma2: float) -> np.ndarray:
        return self.expand(self.structure.factor_from_natural(nat, sigma2))

    @property
    def title(self) -> str:
        return self.structure.title


@dataclass
class Level:
    """A grouping level: one group per distinct value of its path."""

    label: str
    path: tuple[str, ...]
    blocks: list[Block]
    codes: np.ndarray  # row -> group index (rows sorted)
    n_groups: int
    parent: Optional[np.ndarray] = None  # group -> parent group at the coarser level
    keys: Optional[pd.DataFrame] = None  # group -> values of the path columns

    @property
    def q(self) -> int:
        return sum(b.q for b in self.blocks)

    def sizes(self) -> np.ndarray:
        return np.bincount(self.codes, minlength=self.n_groups)


@dataclass
class Design:
    """Data bound to a model: matrices, codes and cross-products."""

    spec: ModelSpec
    y: np.ndarray
    X: np.ndarray
    fe_names: list[str]
    omitted: list[str]
    levels: list[Level]  # coarsest first
    Z: np.ndarray  # (n, Q) columns ordered finest level first
    row_index: pd.Index  # original index of the (sorted) estimation rows
    n_dropped: int
    data: pd.DataFrame  # the estimation rows (sorted), used columns only
    Wzz: np.ndarray = field(repr=False, default=None)  # (G, Q, Q)
    Wzx: np.ndarray = field(repr=False, default=None)  # (G, Q, p+1)
    Bxx: np.ndarray = field(repr=False, default=None)  # (p+1, p+1)
    crossed: bool = False
    row_pos: np.ndarray = field(repr=False, default=None)  # positions of the rows in the user's data
    # working fixed part: X = Xw @ Rx (Xw orthonormal), y = yw + X @ b_ols.  The
    # cross-products use (Xw, yw) so the Schur complements do not cancel.
    Xw: np.ndarray = field(repr=False, default=None)
    yw: np.ndarray = field(repr=False, default=None)
    Rx: np.ndarray = field(repr=False, default=None)
    b_ols: np.ndarray = field(repr=False, default=None)
    # frequency/sampling weights bound to the rows (_weights.WeightInfo), or None
    weights: Optional[object] = field(repr=False, default=None)

    @property
    def Rx_inv(self) -> np.ndarray:
        """``Rx^-1`` (cached for the current ``Rx``)."""
        return self._rx_derived()[0]

    @property
    def logdet_Rx2(self) -> float:
        """``log|Rx|^2 = log|X'X|`` (cached for the current ``Rx``)."""
        return self._rx_derived()[1]

    def _rx_derived(self):
        cache = self.__dict__.get("_rx_cache")
        if cache is None or cache[0] is not self.Rx:
            p = self.Rx.shape[0]
            inv = np.linalg.inv(self.Rx) if p else np.zeros((0, 0))
            ld = 2.0 * float(np.log(np.abs(np.diag(self.Rx))).sum()) if p else 0.0
            cache = (self.Rx, inv, ld)
            self.__dict__["_rx_cache"] = cache
        return cache[1], cache[2]

    @property
    def n(self) -> int:
        return self.y.shape[0]

    @property
    def p(self) -> int:
        return self.X.shape[1]

    @property
    def Q(self) -> int:
        return self.Z.shape[1]

    @property
    def panel_codes(self) -> np.ndarray:
        """Row -> lowest-level group (the panels of residual structures)."""
        if not self.levels:
            return np.zeros(self.n, dtype=np.intp)
        return self.levels[-1].codes

    def set_working_fixed_part(self, row_scale: Optional[np.ndarray] = None) -> None:
        """``Xw``, ``Rx``, ``b_ols``, ``yw`` for rows scaled by ``row_scale`` (weights: sqrt(a))."""
        X, y = self.X, self.y
        if row_scale is not None:
            X, y = X * row_scale[:, None], y * row_scale
        if X.shape[1]:
            self.Xw, self.Rx = _orthonormalize(X)
            self.b_ols = np.linalg.solve(self.Rx, self.Xw.T @ y)
        else:
            self.Xw, self.Rx, self.b_ols = X, np.zeros((0, 0)), np.zeros(0)
        self.yw = y - X @ self.b_ols

    def re_level_indices(self) -> list[int]:
        """Indices into ``levels`` of the levels with random effects, finest first
        (the engine's level order)."""
        return [li for li in range(len(self.levels) - 1, -1, -1) if self.levels[li].q > 0]

    def re_levels(self) -> list[Level]:
        """The levels with random effects, finest first (the engine's level order)."""
        return [self.levels[li] for li in self.re_level_indices()]

    @property
    def n_panels(self) -> int:
        return self.levels[-1].n_groups if self.levels else 1

    @property
    def has_constant(self) -> bool:
        return "_cons" in self.fe_names

    def compute_crossproducts(self, Zw=None, Xw=None, yw=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-panel ``Z'Z``, ``Z'[X y]`` and the global ``[X y]'[X y]``."""
        Z = self.Z if Zw is None else Zw
        X = self.Xw if Xw is None else Xw
        y = self.yw if yw is None else yw
        XY = np.column_stack([X, y])
        codes = self.panel_codes
        G = self.n_panels
        return grouped_crossprod(Z, Z, codes, G), grouped_crossprod(Z, XY, codes, G), XY.T @ XY


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _formula_variables(rhs: str, data: pd.DataFrame) -> tuple[list[str], set[str]]:
    """Column names used in a patsy RHS, and those used inside ``C(...)``."""
    used, in_factor = [], set()
    for m in _IDENT.finditer(rhs):
        name = m.group(0)
        if name in data.columns and name not in used:
            used.append(name)
    for m in re.finditer(r"C\(\s*([A-Za-z_][A-Za-z0-9_]*)", rhs):
        in_factor.add(m.group(1))
    return used, in_factor


def _check_columns(data: pd.DataFrame, names, what: str) -> None:
    for nm in names:
        if nm not in data.columns:
            raise ModelSpecificationError("variable '%s' not found (%s)" % (nm, what))


def _check_group_types(df: pd.DataFrame, names) -> None:
    """Grouping variables must be sortable: one type of value per column."""
    for c in dict.fromkeys(names):
        if df[c].dtype == object and df[c].map(type).nunique() > 1:
            raise ModelSpecificationError(
                "grouping variable '%s' mixes values of different types (e.g. numbers and strings); "
                "convert it to one type" % c)


def _check_finite(data: pd.DataFrame, names) -> None:
    """Infinite values are not data: say which variable holds them."""
    for nm in dict.fromkeys(names):
        col = data[nm]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            v = col.to_numpy(dtype=float)
            if np.isinf(v).any():
                raise ModelSpecificationError("variable '%s' has %d infinite value(s)" % (nm, int(np.isinf(v).sum())))


def _check_numeric(data: pd.DataFrame, names, what: str) -> None:
    for nm in names:
        if not pd.api.types.is_numeric_dtype(data[nm]) or pd.api.types.is_bool_dtype(data[nm]):
            if pd.api.types.is_bool_dtype(data[nm]):
                continue
            raise ModelSpecificationError(
                "variable '%s' is not numeric (%s); use i.%s (or C(%s)) for a factor variable"
                % (nm, what, nm, nm)
            )


_FACTOR_NAME = re.compile(r"^C\((?P<var>[A-Za-z_][A-Za-z0-9_]*)(?:,[^\]]*)?\)\[T\.(?P<lev>.*)\]$")


def stata_name(patsy_name: str) -> str:
    """patsy column name -> Stata's name (``C(region)[T.2]`` -> ``2.region``)."""
    if patsy_name == "Intercept":
        return "_cons"
    m = _FACTOR_NAME.match(patsy_name)
    if m:
        return "%s.%s" % (m.group("lev"), m.group("var"))
    return patsy_name


def _fixed_matrix(spec: ModelSpec, data: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    rhs = spec.fixed.strip() or "1"
    rhs = ("1 + " if spec.constant else "0 + ") + rhs
    try:
        X = patsy.dmatrix(rhs, data, NA_action="raise", return_type="dataframe")
    except patsy.PatsyError as exc:
        raise ModelSpecificationError("cannot build the fixed part %r: %s" % (spec.fixed, exc)) from None
    names = [stata_name(c) for c in X.columns]
    arr = X.to_numpy(dtype=float)
    if "_cons" in names:  # Stata lists the constant last
        k = names.index("_cons")
        order = [i for i in range(len(names)) if i != k] + [k]
        arr = arr[:, order]
        names = [names[i] for i in order]
    return arr, names


def _drop_collinear(X: np.ndarray, names: list[str], tol: float = 1e-9) -> tuple[np.ndarray, list[str], list[str]]:
    """Omit columns in the span of earlier ones, as Stata does (constant kept)."""
    if X.shape[1] == 0:
        return X, names, []
    order = list(range(X.shape[1]))
    if "_cons" in names:  # check the constant first so Stata keeps it
        k = names.index("_cons")
        order = [k] + [i for i in order if i != k]
    Xo = X[:, order]
    norms = np.linalg.norm(Xo, axis=0)
    r = np.abs(np.diag(np.linalg.qr(Xo, mode="r")))
    keep_o = (norms > 0) & (r > tol * np.maximum(norms, 1e-300))
    keep = np.zeros(X.shape[1], dtype=bool)
    keep[np.asarray(order)[keep_o]] = True
    omitted = [n for n, k in zip(names, keep) if not k]
    return X[:, keep], [n for n, k in zip(names, keep) if k], omitted


def _group_codes(df: pd.DataFrame, cols: tuple[str, ...]) -> tuple[np.ndarray, pd.DataFrame]:
    if not cols:
        return np.zeros(len(df), dtype=np.intp), pd.DataFrame(index=[0])
    g = df.groupby(list(cols), sort=True, observed=True)
    codes = g.ngroup().to_numpy().astype(np.intp)
    keys = g.size().reset_index()[list(cols)]
    return codes, keys


def _merge_equations(eqs: tuple[REEquation, ...]) -> list[tuple[tuple[str, ...], list[REEquation]]]:
    """Group equations by grouping path, keeping first-appearance order."""
    out: list[tuple[tuple[str, ...], list[REEquation]]] = []
    for eq in eqs:
        for path, lst in out:
            if path == eq.group and eq.factor is None and all(e.factor is None for e in lst):
                lst.append(eq)
                break
        else:
            if eq.group == () and out and out[-1][0] == ():
                out[-1][1].append(eq)  # _all: R.a || _all: R.b -> one level, block diagonal
            else:
                out.append((eq.group, [eq]))
    return out


def _re_columns(eq: REEquation) -> list[str]:
    return list(eq.columns)


def _base_matrix(eq: REEquation, df: pd.DataFrame) -> np.ndarray:
    cols = [df[c].to_numpy(dtype=float) for c in eq.columns]
    if eq.constant or eq.factor is not None:
        cols.append(np.ones(len(df)))
    return np.column_stack(cols) if cols else np.zeros((len(df), 0))


def _expand(base: np.ndarray, codes: np.ndarray, k: int) -> np.ndarray:
    """Row-wise Kronecker of a level indicator with the base columns."""
    n, qe = base.shape
    out = np.zeros((n, k * qe))
    idx = codes[:, None] * qe + np.arange(qe)[None, :]
    np.put_along_axis(out, idx, base, axis=1)
    return out


# ---------------------------------------------------------------------------
def build_design(spec: ModelSpec, data: pd.DataFrame) -> Design:
    """Validate ``data`` against ``spec`` and build the :class:`Design`."""
    if not isinstance(data, pd.DataFrame):
        raise TypeError("data must be a pandas DataFrame, got %s" % type(data).__name__)
    _check_columns(data, [spec.response], "dependent variable")
    fixed_vars, factor_vars = _formula_variables(spec.fixed, data)
    unknown = [t for t in _IDENT.findall(_strip_calls(spec.fixed)) if t not in data.columns and t not in _PATSY_WORDS]
    if unknown:
        raise ModelSpecificationError("variable '%s' not found (fixed part)" % unknown[0])
    re_vars, group_vars, factor_re = [], [], []
    for eq in spec.random:
        _check_columns(data, eq.columns, "random effects at level %s" % eq.level_name)
        _check_columns(data, eq.group, "grouping variable")
        re_vars += list(eq.columns)
        group_vars += list(eq.group)
        if eq.factor is not None:
            _check_columns(data, [eq.factor], "R. factor at level %s" % eq.level_name)
            factor_re.append(eq.factor)
    res = spec.residual
    resid_vars = [v for v in (res.time, res.by) if v is not None]
    _check_columns(data, resid_vars, "residuals() option")
    weight_vars = [w.var for w in getattr(spec, "weights", ())]
    _check_columns(data, weight_vars, "weights")

    df = data.set_axis(pd.RangeIndex(len(data)))  # positions; labels restored below
    if spec.subset:
        try:
            mask = df.eval(spec.subset)
        except Exception as exc:
            raise ModelSpecificationError("cannot evaluate the if condition %r: %s" % (spec.subset, exc)) from None
        mask = np.asarray(mask, dtype=bool)
        df = df.loc[mask]
    used = list(dict.fromkeys([spec.response] + fixed_vars + re_vars + group_vars + factor_re + resid_vars
                              + weight_vars))
    df = df[used]
    complete = df.notna().all(axis=1).to_numpy()
    n_dropped = int((~complete).sum())
    df = df.loc[complete]
    if n_dropped:
        warn_user("%d observation%s with missing values in the model's variables dropped"
                  % (n_dropped, "s" if n_dropped > 1 else ""))
    if len(df) == 0:
        if len(data) == 0:
            raise ModelSpecificationError("no observations: the data has no rows")
        if n_dropped == 0:
            raise ModelSpecificationError("no observations: the if condition %r selects no rows" % spec.subset)
        raise ModelSpecificationError("no observations: every row has a missing value in a used variable")
    _check_finite(df, [spec.response] + fixed_vars + re_vars + resid_vars)

    if not pd.api.types.is_numeric_dtype(df[spec.response]) or pd.api.types.is_bool_dtype(df[spec.response]):
        raise ModelSpecificationError("dependent variable '%s' is not numeric" % spec.response)
    _check_numeric(df, [v for v in fixed_vars if v not in factor_vars], "fixed part")
    _check_numeric(df, re_vars, "random effects")
    _check_numeric(df, [res.time] if res.time is not None else [], "residuals() option t()")

    # -- levels: nesting order and sort -----------------------------------
    merged = _merge_equations(spec.random)
    paths: list[tuple[str, ...]] = []
    crossed = False
    prev: tuple[str, ...] = ()
    for path, _ in merged:
        if path[: len(prev)] == prev or path == ():
            full = path
        else:
            full = tuple(dict.fromkeys(prev + path))
        paths.append(full)
        prev = full
    # verify nesting in the data for paths that are not prefixes of each other
    prefix_chain = all(b[: len(a)] == a for (a, _), (b, _) in zip(merged, merged[1:]))
    if len(merged) > 1 and not prefix_chain:
        crossed = not _nested_in_data(df, [p for p, _ in merged])
    if crossed:
        merged, paths = _as_crossed(merged), [()]
    # crossed effects and R.x factors at the _all level: sparse Z, blocked engine (_crossed.py)
    from ..engines.crossed import finish_Z, hstack_columns, sparse_expand, uses_sparse_design
    sparse_re = crossed or uses_sparse_design(merged)

    _check_group_types(df, group_vars + factor_re)
    sort_cols = list(paths[-1]) if paths else []
    if sort_cols:
        df = df.sort_values(sort_cols, kind="stable")
    row_pos = df.index.to_numpy()
    row_index = data.index[row_pos]
    df = df.reset_index(drop=True)

    y = df[spec.response].to_numpy(dtype=float)
    X, fe_names = _fixed_matrix(spec, df)
    X, fe_names, omitted = _drop_collinear(X, fe_names)
    for nm in omitted:
        warn_user("note: %s omitted because of collinearity" % nm)

    levels: list[Level] = []
    Z_by_level: list[np.ndarray] = []
    parent_codes = None
    for (path, eqs), full in zip(merged, paths):
        codes, keys = _group_codes(df, full)
        G = int(codes.max()) + 1 if len(codes) else 0
        blocks, cols = [], []
        for eq in eqs:
            expand_by = (eq.factor,) if eq.factor is not None else (eq.group if crossed else None)
            base = _base_matrix(eq, df)
            if base.shape[1] == 0:
                continue  # a level with no random effects only defines panels (residuals())
            effects = eq.effect_names
            if eq.factor is not None:
                effects = ("R.%s" % eq.factor,)
            struct = make_structure(eq.covariance, base.shape[1])
            if expand_by:
                ecodes, ekeys = _group_codes(df, expand_by)
                levels_list = [tuple(r) if len(r) > 1 else r[0] for r in ekeys.itertuples(index=False)]
                mat = (sparse_expand(base, ecodes, len(levels_list)) if sparse_re
                       else _expand(base, ecodes, len(levels_list)))
                blk = Block(eq, struct, effects, eq.level_name, tuple(expand_by), levels_list)
            else:
                mat = base
                blk = Block(eq, struct, effects, eq.level_name)
            blocks.append(blk)
            cols.append(mat)
        _check_level_effects(eqs[0].level_name, blocks, df)
        if sparse_re:
            Zl = hstack_columns(cols, len(df))
        else:
            Zl = np.column_stack(cols) if cols else np.zeros((len(df), 0))
        parent = None
        if parent_codes is not None:
            parent = np.zeros(G, dtype=np.intp)
            parent[codes] = parent_codes
        label = eqs[0].level_name if not crossed else "_all"
        levels.append(Level(label, full, blocks, codes, G, parent, keys))
        Z_by_level.append(Zl)
        parent_codes = codes

    if sparse_re:  # dense when small (other modules index it), CSC otherwise
        Z = finish_Z(hstack_columns(Z_by_level[::-1], len(df)))
    else:
        Z = np.column_stack(Z_by_level[::-1]) if Z_by_level else np.zeros((len(df), 0))
    design = Design(spec, y, X, fe_names, omitted, levels, Z, row_index, n_dropped, df,
                    crossed=crossed or sparse_re)
    design.row_pos = row_pos
    _check_identified(design)
    design.set_working_fixed_part()
    if sparse_re:  # the crossed engine builds its own sparse cross-products of Z
        XY = np.column_stack([design.Xw, design.yw])
        design.Bxx = XY.T @ XY
    else:
        design.Wzz, design.Wzx, design.Bxx = design.compute_crossproducts()
    if getattr(spec, "weights", ()) or getattr(spec, "pwscale", None):
        from ..design.weights import apply_weights  # weighted cross-products (design.weights)

        _check_numeric(df, weight_vars, "weights")
        apply_weights(design)
    return design


_PATSY_WORDS = {"C", "Treatment", "Sum", "Poly", "I", "np", "log", "exp", "center", "standardize", "reference", "Diff", "Helmert", "bs", "cr", "cc", "te"}


def _strip_calls(rhs: str) -> str:
    """Remove string literals so identifiers inside quotes are not checked."""
    return re.sub(r"(['\"]).*?\1", " ", rhs)


def _nested_in_data(df: pd.DataFrame, paths: list[tuple[str, ...]]) -> bool:
    """Whether each grouping (in order) nests within the previous one."""
    prev = None
    for path in paths:
        if not path:
            if prev is not None:
                return False
            prev = path
            continue
        if prev:
            fine = df.groupby(list(path), sort=False, observed=True)
            n_parents = fine[list(prev)].nunique() if len(prev) > 1 else fine[prev[0]].nunique()
            n_parents = np.asarray(n_parents).reshape(len(n_parents), -1)
            if (n_parents > 1).any():
                return False
        prev = path
    return True


def _as_crossed(merged):
    """Crossed groupings become blocks of one ``_all`` level, expanded by their grouping."""
    eqs = [eq for _, lst in merged for eq in lst]
    return [((), eqs)]


def _orthonormalize(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    try:
        return orthonormalize(X)
    except np.linalg.LinAlgError:  # very ill-conditioned: Householder
        return np.linalg.qr(X)


def _check_level_effects(label: str, blocks: list[Block], df: pd.DataFrame) -> None:
    """Each random effect appears once per level and is not identically zero."""
    seen = set()
    for blk in blocks:
        for e in blk.effects:
            if (blk.expand_by, e) in seen:
                raise ModelSpecificationError(
                    "level %s: %s appears in more than one equation; a repeated level needs "
                    "distinct terms (use noconstant in the later equations)" % (label, e))
            seen.add((blk.expand_by, e))
        for c in blk.equation.columns:
            if not np.any(df[c].to_numpy(dtype=float) != 0):
                raise ModelSpecificationError(
                    "level %s: random-effects variable '%s' is zero in every observation" % (label, c))


def _check_identified(design: Design) -> None:
    """Refuse models with more random-effect parameters than the data identify."""
    n = design.n
    for lvl in design.levels:
        sizes = lvl.sizes()
        for blk in lvl.blocks:
            if blk.expand_by is None and blk.structure.q > 1 and sizes.max() < blk.structure.q and lvl.n_groups > 0:
                raise ModelSpecificationError(
                    "level %s: %d random effects but at most %d observations per group; "
                    "the covariance is not identified" % (lvl.label, blk.structure.q, sizes.max())
                )
        if lvl.n_groups >= n and design.spec.residual.kind == "independent" and lvl.q >= 1 and lvl is design.levels[-1]:
            raise ModelSpecificationError(
                "level %s has one observation per group: its variance is not identified "
                "separately from the residual variance" % lvl.label
            )
