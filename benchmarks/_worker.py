"""One Python peer on one case, driven line by line (called by benchmarks/run.py).

    python benchmarks/_worker.py PEER CASE            # serve: commands on stdin
    python benchmarks/_worker.py PEER CASE --fresh    # one fresh-process run, then exit

PEER is ``mixedlm_ext``, ``statsmodels`` or ``mixedlm``.

Serve mode (the harness interleaves the peers' repeats, ABAB, by sending each
worker one command at a time):

1. the CSV is read with pandas (not timed; pandas is imported by all peers);
   the worker prints ``READY {json}`` (resident size after reading);
2. ``import`` -- imports the peer (timed: ``import_s``);
3. ``fit`` -- one fit (timed), ``FIT {json}`` with the time, the
   log-likelihood, the number of objective evaluations when the peer reports
   it, convergence and the peak resident memory so far (``ru_maxrss``);
   the first fit after the import is the *cold* fit;
4. ``quit``.

Fresh mode measures what a user of a fresh interpreter waits for: import
pandas, read the CSV, import the peer, fit, format the summary; it prints
``FRESH {json}`` with the seconds from before ``import pandas`` to after the
summary string exists.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
import traceback
import warnings
from pathlib import Path

T_START = time.perf_counter()
HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
# the package under test: this checkout, or BENCH_PACKAGE_ROOT (another revision, e.g. the baseline)
sys.path.insert(0, os.environ.get("BENCH_PACKAGE_ROOT", str(REPO)))

from cases import CASE_BY_NAME  # noqa: E402


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


class SkipPeer(Exception):
    pass


# ---------------------------------------------------------------------------
# peers: import(), fit(df) -> result, facts(result) -> dict, summary(result) -> str
# ---------------------------------------------------------------------------
class MixedLMExtPeer:
    def __init__(self, case):
        self.case = case

    def do_import(self):
        import mixedlm_ext

        self.mod = mixedlm_ext
        self.version = getattr(mixedlm_ext, "__version__", "dev")

    def fit(self, df):
        return self.mod.mixed(self.case.stata, df)

    @staticmethod
    def facts(res):
        opt = res.opt
        return dict(loglik=float(res.llf), converged=bool(res.converged), n_eval=int(opt.n_eval),
                    n_grad=int(getattr(opt, "n_grad", 0)))

    @staticmethod
    def summary(res):
        return str(res.summary())


class StatsmodelsPeer:
    def __init__(self, case):
        if case.statsmodels is None:
            raise SkipPeer(case.statsmodels_skip or "cannot express")
        self.case = case

    def do_import(self):
        import statsmodels
        from statsmodels.regression.mixed_linear_model import MixedLM

        self.MixedLM = MixedLM
        self.version = statsmodels.__version__

    def fit(self, df):
        kw = dict(self.case.statsmodels)
        formula = kw.pop("formula")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self.MixedLM.from_formula(formula, df, **kw).fit(reml=self.case.reml)

    @staticmethod
    def facts(res):
        return dict(loglik=float(res.llf), converged=bool(res.converged))

    @staticmethod
    def summary(res):
        return str(res.summary())


class MixedlmPeer:
    def __init__(self, case):
        if case.mixedlm is None:
            raise SkipPeer(case.mixedlm_skip or "cannot express")
        self.case = case

    def do_import(self):
        import mixedlm

        self.mod = mixedlm
        self.version = getattr(mixedlm, "__version__", "?")

    def fit(self, df):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self.mod.lmer(self.case.mixedlm, df, REML=self.case.reml)

    @staticmethod
    def facts(res):
        ll = res.logLik()
        out = dict(loglik=float(getattr(ll, "value", ll)), converged=bool(res.converged))
        try:
            out["n_eval"] = int(res.function_evals)
        except (AttributeError, TypeError, ValueError):
            pass
        return out

    @staticmethod
    def summary(res):
        return str(res.summary())


PEERS = {"mixedlm_ext": MixedLMExtPeer, "statsmodels": StatsmodelsPeer, "mixedlm": MixedlmPeer}


def emit(tag, payload):
    sys.stdout.write("%s %s\n" % (tag, json.dumps(payload)))
    sys.stdout.flush()


def fresh(peer_cls, case) -> dict:
    """Import pandas, read the CSV, import the peer, fit, format the summary (timed as one)."""
    t0 = time.perf_counter()
    import pandas as pd

    df = pd.read_csv(HERE / "data" / ("%s.csv" % case.data))
    peer = peer_cls(case)
    peer.do_import()
    res = peer.fit(df)
    text = peer.summary(res)
    t1 = time.perf_counter()
    out = dict(status="ok", fresh_s=t1 - t0, since_interpreter_s=t1 - T_START, summary_chars=len(text),
               version=peer.version)
    out.update(peer.facts(res))
    return out


def serve(peer_cls, case) -> None:
    import pandas as pd

    df = pd.read_csv(HERE / "data" / ("%s.csv" % case.data))
    peer = peer_cls(case)
    emit("READY", {"base_rss_mb": round(rss_mb(), 1)})
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "quit":
            break
        try:
            if cmd == "import":
                t = time.perf_counter()
                peer.do_import()
                emit("IMPORTED", {"import_s": time.perf_counter() - t, "version": peer.version})
            elif cmd == "fit":
                t = time.perf_counter()
                res = peer.fit(df)
                dt = time.perf_counter() - t
                out = dict(status="ok", fit_s=dt, peak_rss_mb=round(peak_rss_mb(), 1))
                out.update(peer.facts(res))
                del res
                emit("FIT", out)
            else:
                emit("ERROR", {"reason": "unknown command %r" % cmd})
        except Exception as exc:
            emit("ERROR", {"reason": "%s: %s" % (type(exc).__name__, exc),
                           "traceback": traceback.format_exc(limit=6)[-3000:]})


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("peer", choices=sorted(PEERS))
    p.add_argument("case", choices=sorted(CASE_BY_NAME))
    p.add_argument("--fresh", action="store_true")
    args = p.parse_args(argv)
    case = CASE_BY_NAME[args.case]
    try:
        peer_cls = PEERS[args.peer]
        peer_cls(case)
    except SkipPeer as exc:
        emit("SKIP", {"status": "skipped", "reason": str(exc)})
        return 0
    if args.fresh:
        try:
            emit("FRESH", fresh(peer_cls, case))
        except Exception as exc:
            emit("FRESH", {"status": "failed", "reason": "%s: %s" % (type(exc).__name__, exc)})
        return 0
    serve(peer_cls, case)
    return 0


if __name__ == "__main__":
    sys.exit(main())
