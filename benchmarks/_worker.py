"""One Python peer fit in a fresh process (called by benchmarks/run.py).

    python benchmarks/_worker.py PEER CASE [--repeats 3]

PEER is ``mixedlm_ext``, ``statsmodels`` or ``mixedlm``.  The process

1. reads the case's CSV with pandas (not timed; pandas is imported by all peers),
2. imports the peer (timed: ``import_s``),
3. fits once (timed: ``cold_fit_s``; ``cold_s`` = import + first fit),
4. fits ``--repeats`` more times and keeps the best (``warm_s``; the first fit
   is the warm-up).  Slow fits get fewer repeats: 1 when the first fit took
   more than 20 s, none when it took more than 120 s (then ``warm_s`` is the
   first fit's time and ``repeats`` is 0).

It prints ``COLD {json}`` after the first fit (so a caller that has to kill
it on a timeout still gets something) and ``RESULT {json}`` at the end, with
the log-likelihood and the peak resident memory of the process
(``ru_maxrss``, which includes the interpreter and the data frame;
``base_rss_mb`` is the resident size after reading the data, before the import).
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import traceback
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

from cases import CASE_BY_NAME  # noqa: E402

LL_ATTRS = ("ll", "llf", "loglik", "log_likelihood", "loglike", "logLik", "loglikelihood")


def rss_mb() -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _as_float(v):
    if callable(v):
        v = v()
    v = getattr(v, "value", v)
    return float(v)


def extract_loglik(res):
    """Log-likelihood of a result object whose API may still be in flux."""
    for name in LL_ATTRS:
        if hasattr(res, name):
            try:
                return _as_float(getattr(res, name)), name
            except Exception:
                continue
    e = getattr(res, "e", None)  # Stata-style e() results
    if e is not None:
        for key in ("ll", "ll_r"):
            try:
                return float(e[key]), "e[%r]" % key
            except Exception:
                pass
            try:
                return float(getattr(e, key)), "e.%s" % key
            except Exception:
                pass
    return None, None


def extract_converged(res):
    for name in ("converged", "converge"):
        if hasattr(res, name):
            v = getattr(res, name)
            try:
                return bool(v() if callable(v) else v)
            except Exception:
                return None
    return None


# ---------------------------------------------------------------------------
# peers: each returns (import function, fit function(df) -> result)
# ---------------------------------------------------------------------------
def peer_mixedlm_ext(case):
    state = {}

    def do_import():
        import mixedlm_ext  # noqa: F401

        state["mod"] = mixedlm_ext
        state["version"] = getattr(mixedlm_ext, "__version__", "dev")

    def fit(df):
        mod = state["mod"]
        cmd = case.stata
        if "cmd" in state:
            return mod.mixed(state["cmd"], df)
        # The command string may or may not be expected with its leading
        # "mixed"; try it as written first, then without the command word.
        try:
            res = mod.mixed(cmd, df)
            state["cmd"] = cmd
            return res
        except Exception as first:
            if cmd.startswith("mixed "):
                try:
                    res = mod.mixed(cmd[len("mixed "):], df)
                    state["cmd"] = cmd[len("mixed "):]
                    return res
                except Exception:
                    pass
            raise first

    return do_import, fit, state


def peer_statsmodels(case):
    state = {}
    if case.statsmodels is None:
        raise SkipPeer(case.statsmodels_skip or "cannot express")
    spec = dict(case.statsmodels)

    def do_import():
        import statsmodels
        from statsmodels.regression.mixed_linear_model import MixedLM

        state["MixedLM"] = MixedLM
        state["version"] = statsmodels.__version__

    def fit(df):
        kw = dict(spec)
        formula = kw.pop("formula")
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            model = state["MixedLM"].from_formula(formula, df, **kw)
            res = model.fit(reml=case.reml)
        msgs = sorted({"%s: %s" % (x.category.__name__, x.message) for x in w})
        if msgs:
            state["messages"] = msgs
        return res

    return do_import, fit, state


def peer_mixedlm(case):
    state = {}
    if case.mixedlm is None:
        raise SkipPeer(case.mixedlm_skip or "cannot express")

    def do_import():
        import mixedlm

        state["mod"] = mixedlm
        state["version"] = getattr(mixedlm, "__version__", "?")

    def fit(df):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            res = state["mod"].lmer(case.mixedlm, df, REML=case.reml)
        msgs = sorted({"%s: %s" % (x.category.__name__, x.message) for x in w})
        if msgs:
            state["messages"] = msgs
        return res

    return do_import, fit, state


PEERS = {"mixedlm_ext": peer_mixedlm_ext, "statsmodels": peer_statsmodels, "mixedlm": peer_mixedlm}


class SkipPeer(Exception):
    pass


def emit(tag, payload):
    sys.stdout.write("%s %s\n" % (tag, json.dumps(payload)))
    sys.stdout.flush()


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("peer", choices=sorted(PEERS))
    p.add_argument("case", choices=sorted(CASE_BY_NAME))
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    case = CASE_BY_NAME[args.case]
    out = {"peer": args.peer, "case": case.name}

    try:
        do_import, fit, state = PEERS[args.peer](case)
    except SkipPeer as exc:
        out.update(status="skipped", reason=str(exc))
        emit("RESULT", out)
        return 0

    import pandas as pd

    df = pd.read_csv(HERE / "data" / ("%s.csv" % case.data))
    out["base_rss_mb"] = round(rss_mb(), 1)
    stage = "import"
    try:
        t0 = time.perf_counter()
        do_import()
        t1 = time.perf_counter()
        stage = "fit"
        res = fit(df)
        t2 = time.perf_counter()
    except Exception as exc:
        out.update(status="failed", stage=stage, reason="%s: %s" % (type(exc).__name__, exc),
                   traceback=traceback.format_exc(limit=6)[-3000:], peak_rss_mb=round(peak_rss_mb(), 1))
        emit("RESULT", out)
        return 0

    ll, ll_attr = extract_loglik(res)
    out.update(status="ok", version=state.get("version"), import_s=t1 - t0, cold_fit_s=t2 - t1,
               cold_s=t2 - t0, loglik=ll, loglik_attr=ll_attr, converged=extract_converged(res))
    if "cmd" in state:
        out["command"] = state["cmd"]
    emit("COLD", dict(out, peak_rss_mb=round(peak_rss_mb(), 1)))
    del res

    cold_fit = t2 - t1
    repeats = args.repeats if cold_fit <= 20 else (min(1, args.repeats) if cold_fit <= 120 else 0)
    times = []
    try:
        for _ in range(repeats):
            t = time.perf_counter()
            res = fit(df)
            times.append(time.perf_counter() - t)
            del res
    except Exception as exc:  # a warm refit failing after a good first fit
        out["warm_error"] = "%s: %s" % (type(exc).__name__, exc)
    out["repeats"] = len(times)
    out["warm_times"] = times
    out["warm_s"] = min(times) if times else cold_fit
    if state.get("messages"):
        out["messages"] = state["messages"][:5]
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    emit("RESULT", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
