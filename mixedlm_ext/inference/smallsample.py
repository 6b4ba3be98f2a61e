"""Small-sample inference for the fixed effects: Stata's ``dfmethod()``.

Five ways to give each fixed effect (and each linear combination) the
degrees of freedom ``nu`` of a t (or F) reference distribution:

``residual``
    ``nu = n - rank(X)`` for everything.
``repeated`` (between-within; two-level models)
    a coefficient whose column is constant within every group of the level
    (the constant included) is *between*: ``nu = G - rank(X_between)``;
    otherwise *within*: ``nu = n - G - rank(X_within)``.
``anova`` (containment)
    the random terms ``z x (groups of a level)`` are taken in Stata's order
    (coarsest level first); a fixed-effect column is *contained* in a term
    when it equals ``z`` times a group constant.  ``nu`` is the smallest
    rank contribution ``rank([X Z_1..Z_t]) - rank([X Z_1..Z_{t-1}])`` of a
    containing term, and ``n - rank([X Z])`` when no term contains it.
``satterthwaite`` (REML)
    for a contrast ``l``, ``nu = 2 (l'C l)^2 / (g' A g)`` with
    ``C(phi) = (X'V(phi)^-1 X)^-1``, ``g = d(l'C l)/d phi`` (central
    differences through the objective) and ``A`` the inverse observed
    information of the variance parameters ``phi`` (as lmerTest; the value
    does not depend on how ``phi`` is parameterised).  Several contrasts:
    Fai and Cornelius (1996), as lmerTest's ``contestMD``.
``kroger`` (Kenward-Roger, REML)
    ``Phi_A = Phi + 2 Phi [sum_ij W_ij (Q_ij - P_i Phi P_j)] Phi`` with
    ``P_i = -X'V^-1 V_i V^-1 X``, ``Q_ij = X'V^-1 V_i V^-1 V_j V^-1 X``,
    ``W = 2 I_E^-1`` the inverse expected information of the variances and
    covariances (``I_E,ij = tr(P V_i P V_j)``, ``P`` the REML projection) --
    the variance-covariance parameterisation is linear so the second
    derivative terms vanish; this is pbkrtest's ``vcovAdj``.  The degrees of
    freedom of ``L beta`` (``q`` rows) follow Kenward and Roger (1997) with
    ``Theta = L'(L Phi L')^-1 L`` (pbkrtest's ``Lb_ddf``, which lmerTest
    uses); the F statistic is ``lambda/q (L b)'(L Phi_A L')^-1 (L b)`` with
    the scale ``lambda`` for ``q > 1`` (for one row the plain t statistic,
    as lmerTest).

``V_i``, ``Phi`` and the traces are computed cluster by cluster (the
top-level groups; ``V`` is block diagonal over them), batched over clusters
of equal size.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..fit.derivatives import parameter_steps

__all__ = ["DF_METHODS", "normalize_df_method", "SmallSample", "small_sample", "MarginalBlocks"]

DF_METHODS = ("residual", "repeated", "anova", "satterthwaite", "kroger")
_ALIASES = {
    "residual": "residual", "res": "residual",
    "repeated": "repeated", "rep": "repeated", "between-within": "repeated", "betwithin": "repeated",
    "anova": "anova", "containment": "anova", "contain": "anova",
    "satterthwaite": "satterthwaite", "sat": "satterthwaite", "satt": "satterthwaite",
    "kroger": "kroger", "kr": "kroger", "kenward-roger": "kroger", "kenwardroger": "kroger",
    "kenward_roger": "kroger", "kenward roger": "kroger",
}
LABELS = {"residual": "Residual", "repeated": "Repeated", "anova": "ANOVA",
          "satterthwaite": "Satterthwaite", "kroger": "Kenward-Roger"}


def normalize_df_method(name) -> Optional[str]:
    """``"kenward-roger"``, ``"kr"``, ``"kroger"`` -> ``"kroger"``, etc.; None stays None.

    Stata's ``dfmethod(name, suboptions)`` form is accepted; the suboptions
    (``eim``/``oim``) are ignored here.
    """
    if name is None:
        return None
    key = str(name).split(",")[0].strip().lower()
    if key not in _ALIASES:
        raise ValueError("unknown df_method %r; use one of %s (or kenward-roger)"
                         % (name, ", ".join(DF_METHODS)))
    return _ALIASES[key]


# ---------------------------------------------------------------------------
# marginal covariance blocks per top-level cluster
# ---------------------------------------------------------------------------
class MarginalBlocks:
    """``V = sum_m phi_m V_m`` cluster by cluster, for a fit at ``phi``.

    ``phi`` are the reported parameters (variances, covariances, then
    ``var(Residual)``); each ``V_m`` is ``Z_l E_m Z_l'`` restricted to pairs of
    rows in the same group of level ``l`` (``E_m = dPsi_l / dphi_m``), or the
    identity for the residual variance.  Only the plain independent residual
    is supported (correlated residual structures have non-linear parameters).
    """

    def __init__(self, objective, phi: np.ndarray, max_dense: int = 4000,
                 cluster_codes: Optional[np.ndarray] = None):
        d = objective.design
        res = objective.residual
        if not res.is_plain:
            raise NotImplementedError("this computation needs independent homoskedastic residuals "
                                      "(no residuals() structure)")
        self.design = d
        self.phi = np.asarray(phi, dtype=float)
        Z = d.Z
        if hasattr(Z, "toarray"):
            Z = Z.toarray()
        self.Z = np.asarray(Z, dtype=float)
        if cluster_codes is not None:  # any grouping the top-level groups nest in
            cluster_codes = np.asarray(cluster_codes, dtype=np.intp)
        elif d.levels and d.levels[0].path and not d.sparse_re:
            cluster_codes = d.levels[0].codes
        else:
            cluster_codes = np.zeros(d.n, dtype=np.intp)
        C = int(cluster_codes.max()) + 1 if d.n else 0
        sizes = np.bincount(cluster_codes, minlength=C)
        if sizes.max() > max_dense:
            raise NotImplementedError("a top-level cluster has %d observations; the dense per-cluster "
                                      "computation is limited to %d" % (sizes.max(), max_dense))
        order = np.argsort(cluster_codes, kind="stable")
        starts = np.concatenate([[0], np.cumsum(sizes)])
        self.cluster_rows = [order[starts[c]:starts[c + 1]] for c in range(C)]
        self.sizes = sizes
        # parameters: (level index, Z columns, E) per natural parameter; None = residual
        parts, _ = objective.split_natural(self.phi)
        offsets = {}
        off = 0
        for li in range(len(d.levels) - 1, -1, -1):
            offsets[li] = off
            off += d.levels[li].q
        self.terms = []
        bi = 0
        for li, lvl in enumerate(d.levels):
            col = offsets[li]
            for blk in lvl.blocks:
                nat = np.asarray(parts[bi], dtype=float)
                base = blk.structure.cov_from_natural(nat)
                for m in range(nat.size):
                    e = nat.copy()
                    e[m] += 1.0
                    E = blk.expand(blk.structure.cov_from_natural(e) - base)
                    self.terms.append((li, np.arange(col, col + blk.q), E))
                col += blk.q
                bi += 1
        self.terms.append(None)  # var(Residual)
        assert len(self.terms) == self.phi.size

    def batches(self):
        """Yield ``(rows (k, m), Vm list of (k, m, m))`` over clusters of equal size ``m``."""
        d = self.design
        by_size: dict[int, list[int]] = {}
        for c, s in enumerate(self.sizes):
            by_size.setdefault(int(s), []).append(c)
        for m, cl in sorted(by_size.items()):
            rows = np.stack([self.cluster_rows[c] for c in cl])  # (k, m)
            k = rows.shape[0]
            masks = {}
            Vm = []
            for term in self.terms:
                if term is None:
                    Vm.append(np.broadcast_to(np.eye(m), (k, m, m)))
                    continue
                li, cols, E = term
                if li not in masks:
                    codes = d.levels[li].codes[rows]
                    masks[li] = codes[:, :, None] == codes[:, None, :]
                Zb = self.Z[rows][:, :, cols]  # (k, m, q)
                G = np.matmul(np.matmul(Zb, E), np.swapaxes(Zb, 1, 2))
                Vm.append(G * masks[li])
            yield rows, Vm

    def V(self, Vm) -> np.ndarray:
        out = np.zeros(Vm[0].shape)
        for p, G in zip(self.phi, Vm):
            out = out + p * G
        return out


# ---------------------------------------------------------------------------
# Kenward-Roger
# ---------------------------------------------------------------------------
def kenward_roger_pieces(objective, phi: np.ndarray):
    """``(Phi, Phi_A, P, W)`` of pbkrtest's ``vcovAdj`` (raw ``X`` metric)."""
    mb = MarginalBlocks(objective, phi)
    X = objective.design.X
    p = X.shape[1]
    nm = len(mb.terms)
    XtViX = np.zeros((p, p))
    P = [np.zeros((p, p)) for _ in range(nm)]
    Q = [[np.zeros((p, p)) for _ in range(nm)] for _ in range(nm)]
    K = np.zeros((nm, nm))
    for rows, Vm in mb.batches():
        V = mb.V(Vm)
        Vi = np.linalg.inv(V)
        Vi = 0.5 * (Vi + np.swapaxes(Vi, 1, 2))
        Xb = X[rows]  # (k, m, p)
        ViX = Vi @ Xb
        XtViX += np.einsum("kmi,kmj->ij", Xb, ViX)
        H = [G @ Vi for G in Vm]
        O = [G @ ViX for G in Vm]
        ViO = [Vi @ o for o in O]
        for a in range(nm):
            P[a] -= np.einsum("kmi,kmj->ij", ViX, O[a])
            for b in range(a, nm):
                Q[a][b] += np.einsum("kmi,kmj->ij", O[a], ViO[b])
                K[a, b] += float(np.einsum("kij,kji->", H[a], H[b]))
    for a in range(nm):
        for b in range(a):
            Q[a][b] = Q[b][a].T
            K[a, b] = K[b, a]
    Phi = np.linalg.inv(XtViX)
    P = [0.5 * (x + x.T) for x in P]
    IE2 = np.empty((nm, nm))
    for a in range(nm):
        PhiPa = Phi @ P[a]
        for b in range(nm):
            IE2[a, b] = K[a, b] - 2.0 * np.sum(Phi * Q[a][b].T) + np.sum(PhiPa * (P[b] @ Phi))
    IE2 = 0.5 * (IE2 + IE2.T)
    ev = np.linalg.eigvalsh(IE2)
    W = 2.0 * (np.linalg.inv(IE2) if np.min(np.abs(ev)) > 1e-10 else np.linalg.pinv(IE2))
    U = np.zeros((p, p))
    for a in range(nm):
        for b in range(nm):
            U += W[a, b] * (Q[a][b] - P[a] @ Phi @ P[b])
    U = 0.5 * (U + U.T)
    PhiA = Phi + 2.0 * Phi @ U @ Phi
    return Phi, PhiA, P, W


def _kr_ddf(L: np.ndarray, Phi: np.ndarray, P, W) -> tuple[float, float]:
    """Kenward-Roger ``(df, lambda)`` for the rows of ``L`` (pbkrtest's ``Lb_ddf``)."""
    L = np.atleast_2d(L)
    q = np.linalg.matrix_rank(L)
    Theta = L.T @ np.linalg.solve(L @ Phi @ L.T, L)
    TP = Theta @ Phi
    u = [TP @ Pi @ Phi for Pi in P]
    tr = np.array([np.trace(x) for x in u])
    A1 = float(tr @ W @ tr)
    A2 = float(sum(W[a, b] * np.sum(u[a] * u[b].T) for a in range(len(P)) for b in range(len(P))))
    B = (A1 + 6.0 * A2) / (2.0 * q)
    g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
    c1 = g / (3 * q + 2 * (1 - g))
    c2 = (q - g) / (3 * q + 2 * (1 - g))
    c3 = (q + 2 - g) / (3 * q + 2 * (1 - g))
    Estar = 1.0 / (1.0 - A2 / q)
    V0 = 1 + c1 * B
    V1 = 1 - c2 * B
    V2 = 1 - c3 * B
    V0 = 0.0 if abs(V0) < 1e-10 else V0
    rho = (1.0 / q) * ((1 - A2 / q) / V1) ** 2 * V0 / V2 if V1 != 0 else np.inf
    df = 4.0 + (q + 2) / (q * rho - 1)
    lam = df / (Estar * (df - 2)) if abs(df - 4) >= 1e-2 else 1.0
    return float(df), float(lam)


# ---------------------------------------------------------------------------
# Satterthwaite
# ---------------------------------------------------------------------------
def vcov_jacobian(objective, phi: np.ndarray, free: np.ndarray, rel: float = 1e-4) -> list:
    """``dC/dphi_m`` (central differences) for the free parameters ``m``."""
    kinds = objective.natural_kinds()
    h = parameter_steps(phi, kinds, rel)
    out = []
    for m in np.flatnonzero(free):
        e = np.zeros_like(phi)
        e[m] = h[m]
        Cp = objective.vcov_beta_natural(phi + e)
        Cm = objective.vcov_beta_natural(phi - e)
        out.append((Cp - Cm) / (2.0 * h[m]))
    return out


def _satt_1d(l: np.ndarray, C: np.ndarray, jac: list, A: np.ndarray) -> float:
    var = float(l @ C @ l)
    g = np.array([float(l @ J @ l) for J in jac])
    den = float(g @ A @ g)
    return 2.0 * var * var / den if den > 0 else np.inf


# ---------------------------------------------------------------------------
# residual / repeated / anova
# ---------------------------------------------------------------------------
def _rank(M: np.ndarray) -> int:
    return int(np.linalg.matrix_rank(M)) if M.size else 0


def _constant_within(x: np.ndarray, codes: np.ndarray, G: int) -> bool:
    lo = np.full(G, np.inf)
    hi = np.full(G, -np.inf)
    np.minimum.at(lo, codes, x)
    np.maximum.at(hi, codes, x)
    return bool(np.all(hi - lo <= 1e-10 * max(1.0, float(np.max(np.abs(x))))))


def repeated_df(design) -> np.ndarray:
    lv = [l for l in design.levels if l.path]
    if len(lv) != 1 or design.sparse_re:
        raise ValueError("dfmethod(repeated) is only available for two-level models")
    lvl = lv[0]
    X, n, G = design.X, design.n, lvl.n_groups
    between = np.array([_constant_within(X[:, j], lvl.codes, G) for j in range(X.shape[1])], dtype=bool)
    df_b = G - _rank(X[:, between])
    df_w = n - G - _rank(X[:, ~between])
    if df_b <= 0 or df_w <= 0:
        raise ValueError("dfmethod(repeated): non-positive degrees of freedom (%d between, %d within)"
                         % (df_b, df_w))
    return np.where(between, float(df_b), float(df_w))


def _term_codes(design, li: int, blk) -> np.ndarray:
    lvl = design.levels[li]
    if blk.expand_by is None:
        return lvl.codes
    cols = list(lvl.path) + list(blk.expand_by)
    return design.data.groupby(cols, sort=True, observed=True).ngroup().to_numpy().astype(np.intp)


def anova_df(design, max_cells: int = 30_000_000) -> np.ndarray:
    """Containment degrees of freedom (see the module docstring)."""
    X = design.X
    n, p = X.shape
    terms = []  # (codes, z)
    for li, lvl in enumerate(design.levels):
        for blk in lvl.blocks:
            codes = _term_codes(design, li, blk)
            eq = blk.equation
            cols = [design.data[c].to_numpy(dtype=float) for c in eq.columns]
            if eq.constant or eq.factor is not None:
                cols.append(np.ones(n))
            for z in cols:
                terms.append((codes, z))
    total_cols = p + sum(int(c.max()) + 1 for c, _ in terms)
    if n * total_cols > max_cells:
        raise ValueError("dfmethod(anova): the design is too large for the dense rank computation")
    # orthonormal basis grown term by term
    Qb, _ = np.linalg.qr(X) if p else (np.zeros((n, 0)), None)
    Qb = Qb[:, : _rank(X)] if p else Qb
    contrib = []
    for codes, z in terms:
        G = int(codes.max()) + 1
        Zt = np.zeros((n, G))
        Zt[np.arange(n), codes] = z
        R = Zt - Qb @ (Qb.T @ Zt)
        U, s, _ = np.linalg.svd(R, full_matrices=False)
        tol = s.max() * max(R.shape) * np.finfo(float).eps * 10 if s.size else 0.0
        r = int(np.sum(s > max(tol, 1e-9 * np.linalg.norm(Zt))))
        contrib.append(r)
        Qb = np.column_stack([Qb, U[:, :r]])
    resid_df = n - Qb.shape[1]
    out = np.full(p, float(resid_df))
    for j in range(p):
        x = X[:, j]
        best = None
        for (codes, z), r in zip(terms, contrib):
            G = int(codes.max()) + 1
            zz = np.bincount(codes, weights=z * z, minlength=G)
            zx = np.bincount(codes, weights=z * x, minlength=G)
            coef = np.divide(zx, zz, out=np.zeros(G), where=zz > 0)
            if np.linalg.norm(x - z * coef[codes]) <= 1e-8 * max(np.linalg.norm(x), 1e-300) and r > 0:
                best = r if best is None else min(best, r)
        if best is not None:
            out[j] = float(best)
    return out


# ---------------------------------------------------------------------------
class SmallSample:
    """Degrees of freedom (and, for Kenward-Roger, the adjusted covariance) of a fit.

    Attributes
    ----------
    method : str
        ``residual``, ``repeated``, ``anova``, ``satterthwaite`` or ``kroger``.
    df : ndarray (p,)
        Degrees of freedom of each fixed effect.
    cov_fe : ndarray (p, p)
        Covariance of the fixed effects used for inference (Kenward-Roger:
        ``Phi_A``; otherwise ``(X'V^-1X)^-1``).
    """

    def __init__(self, method: str, cov_fe: np.ndarray, df: Optional[np.ndarray] = None, *,
                 C: Optional[np.ndarray] = None, jac=None, A=None, P=None, W=None):
        self.method = method
        self.label = LABELS[method]
        self.cov_fe = np.asarray(cov_fe, dtype=float)
        self.C = self.cov_fe if C is None else C  # unadjusted (X'V^-1X)^-1
        self._jac, self._A, self._P, self._W = jac, A, P, W
        p = self.cov_fe.shape[0]
        if df is None:
            df = np.array([self.contrast_df(np.eye(p)[j]) for j in range(p)])
        self.df = np.asarray(df, dtype=float)

    def contrast_df(self, l: np.ndarray) -> float:
        """Degrees of freedom of one linear combination ``l'beta``."""
        l = np.asarray(l, dtype=float).ravel()
        if self.method == "satterthwaite":
            return _satt_1d(l, self.C, self._jac, self._A)
        if self.method == "kroger":
            return _kr_ddf(l[None, :], self.C, self._P, self._W)[0]
        nz = np.abs(l) > 0
        return float(np.min(self.df[nz])) if nz.any() else np.inf

    def f_test(self, L: np.ndarray, beta: np.ndarray, value: Optional[np.ndarray] = None):
        """``(F, df_num, df_denom)`` for ``H0: L beta = value``."""
        L = np.atleast_2d(np.asarray(L, dtype=float))
        diff = L @ beta - (0.0 if value is None else np.asarray(value, dtype=float).ravel())
        q = int(np.linalg.matrix_rank(L))
        if self.method == "kroger":
            F = float(diff @ np.linalg.solve(L @ self.cov_fe @ L.T, diff)) / q
            if L.shape[0] == 1:
                return F, 1, _kr_ddf(L, self.C, self._P, self._W)[0]
            df2, lam = _kr_ddf(L, self.C, self._P, self._W)
            return lam * F, q, df2
        VL = L @ self.C @ L.T
        F = float(diff @ np.linalg.solve(VL, diff)) / q
        if self.method != "satterthwaite":
            return F, q, self.contrast_df(np.abs(L).sum(axis=0))
        if L.shape[0] == 1:
            return F, 1, self.contrast_df(L[0])
        # Fai and Cornelius (1996), as lmerTest's contestMD
        d, Pm = np.linalg.eigh(VL)
        keep = d > 1e-10 * d.max()
        d, Pm = d[keep], Pm[:, keep]
        PtL = Pm.T @ L
        nu = np.array([_satt_1d(r, self.C, self._jac, self._A) for r in PtL])
        if nu.size == 1:
            return F, q, float(nu[0])
        if np.all(np.abs(np.diff(nu)) < 1e-8):
            return F, q, float(nu.mean())
        if np.any(nu <= 2):
            return F, q, 2.0
        E = float(np.sum(nu / (nu - 2.0)))
        return F, q, 2.0 * E / (E - q)


def small_sample(objective, method: str, phi: np.ndarray, cov_fe: np.ndarray,
                 cov_vc: np.ndarray) -> SmallSample:
    """Build the :class:`SmallSample` of a fit (``phi`` its variance components,
    ``cov_vc`` their covariance, ``cov_fe = (X'V^-1X)^-1``)."""
    method = normalize_df_method(method)
    d = objective.design
    p = d.p
    if method == "residual":
        rank = np.linalg.matrix_rank(d.X) if d.holds_rows else p  # collinear columns are already omitted
        return SmallSample(method, cov_fe, np.full(p, float(d.n - rank)))
    if method == "repeated":
        return SmallSample(method, cov_fe, repeated_df(d))
    if method == "anova":
        return SmallSample(method, cov_fe, anova_df(d))
    if method == "satterthwaite":
        cov_vc = np.asarray(cov_vc, dtype=float)
        free = np.all(np.isfinite(cov_vc), axis=1) if cov_vc.size else np.zeros(0, dtype=bool)
        jac = vcov_jacobian(objective, phi, free)
        A = cov_vc[np.ix_(free, free)]
        return SmallSample(method, cov_fe, C=cov_fe, jac=jac, A=A)
    if method == "kroger":
        Phi, PhiA, P, W = kenward_roger_pieces(objective, phi)
        return SmallSample(method, PhiA, C=Phi, P=P, W=W)
    raise ValueError(method)
