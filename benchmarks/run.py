"""Run the mixedlm_ext benchmark suite against its peers, side by side.

    python benchmarks/run.py                   # every scenario, default peers
    python benchmarks/run.py --only small      # one scenario (repeatable: --only ri --only small)
    python benchmarks/run.py --peers mixedlm_ext,mixedlm
    python benchmarks/run.py --write           # also rewrite benchmarks/README.md
    python benchmarks/run.py --write-only      # README.md from the stored results, no fits

Peers, each fitting the same CSV file of ``benchmarks/data/`` (written by
``simulate.py`` when missing):

* ``mixedlm_ext``  -- ``mixedlm_ext.mixed(stata_command, df)``
* ``mixedlm``      -- the Rust-core lme4 clone (``pip install mixedlm==1.3.0``;
  a benchmark-only peer, never a dependency)
* ``lme4`` / ``nlme`` -- R's ``lmer`` / ``lme`` (``peer_r.R``)
* ``statsmodels``  -- ``MixedLM.from_formula`` where it can express the model
  (not run by default: minutes per fit on the large scenarios)
* ``baseline``     -- mixedlm_ext at ``--baseline`` (the revision the speed
  work started from), extracted with ``git archive``; run on the scenarios of
  ``cases.BASELINE_SCENARIOS``

How a case is timed: every peer runs in its own long-lived process
(``_worker.py``, ``peer_r.R``) that reads the CSV once (not timed), imports
the peer (timed), fits once (the *cold* fit) and then fits on command; the
harness sends the warm fits round-robin, one per peer at a time (ABAB...),
so that load on the machine hits every peer alike, and reports the minimum
and the median.  The whole case runs twice: under the default threading and
with every thread pool at one thread (``OMP/OPENBLAS/MKL/RAYON_NUM_THREADS=1``).
For the small scenario, fresh processes (import pandas, read the CSV, import
the peer, fit, format the summary) are timed the same way, alternating.

Results are merged into ``benchmarks/data/results.json`` (one entry per case,
newest run wins), from which ``--write`` renders ``benchmarks/README.md``.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path
from statistics import median

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import report  # noqa: E402
import simulate  # noqa: E402
from cases import BASELINE_SCENARIOS, cases_for  # noqa: E402

RESULTS = HERE / "data" / "results.json"
README = HERE / "README.md"
DEFAULT_PEERS = ["mixedlm_ext", "mixedlm", "lme4", "nlme", "baseline"]
ALL_PEERS = DEFAULT_PEERS + ["statsmodels"]
PY_PEERS = {"mixedlm_ext", "mixedlm", "statsmodels", "baseline"}
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS")
MODES = {"default": {}, "single": {v: "1" for v in THREAD_VARS}}
SLOW_S, VERY_SLOW_S = 20.0, 120.0  # a cold fit above these: one warm repeat, none


def log(*a, **kw):
    print(*a, **kw, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# long-lived peer processes
# ---------------------------------------------------------------------------
class Worker:
    """One peer process answering ``import`` / ``fit`` / ``quit`` lines with tagged JSON lines."""

    def __init__(self, label: str, cmd: list[str], env: dict, timeout: float):
        self.label = label
        self.timeout = timeout
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, cwd=str(REPO), env=env, start_new_session=True, bufsize=1)
        self.dead = None

    def read(self, tags=("READY", "IMPORTED", "FIT", "ERROR", "SKIP"), timeout=None) -> dict:
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                self.dead = "too slow: no answer within %d s" % (timeout or self.timeout)
                return {"status": "skipped", "reason": self.dead}
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if not ready:
                continue
            line = self.proc.stdout.readline()
            if not line:
                err = self.proc.stderr.read()[-600:]
                self.dead = "exited %s: %s" % (self.proc.poll(), " | ".join(err.strip().splitlines()[-3:]))
                return {"status": "failed", "reason": self.dead}
            tag, _, rest = line.strip().partition(" ")
            if tag in tags:
                out = json.loads(rest) if rest else {}
                if tag == "ERROR":
                    out = {"status": "failed", "reason": out.get("reason", "error")}
                if tag == "SKIP":
                    self.dead = out.get("reason", "skipped")
                return out

    def ask(self, command: str, tag: str) -> dict:
        if self.dead:
            return {"status": "skipped", "reason": self.dead}
        try:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.dead = "the process closed its input"
            return {"status": "failed", "reason": self.dead}
        return self.read((tag, "ERROR"))

    def peak_rss_mb(self):
        try:
            with open("/proc/%d/status" % self.proc.pid) as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        return round(int(line.split()[1]) / 1024.0, 1)
        except OSError:
            return None
        return None

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()

    def kill(self):
        try:
            os.killpg(self.proc.pid, 9)  # the process group this harness started
        except OSError:
            pass


def _env(extra: dict, package_root=None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    env.update(extra)
    env["PYTHONPATH"] = os.pathsep.join([str(package_root or REPO)] + ([os.environ["PYTHONPATH"]]
                                                                        if os.environ.get("PYTHONPATH") else []))
    if package_root is not None:
        env["BENCH_PACKAGE_ROOT"] = str(package_root)
    env.setdefault("PYTHONHASHSEED", "0")
    return env


def start_worker(peer: str, case, mode: str, timeout: float, baseline_root) -> Worker:
    extra = MODES[mode]
    if peer in PY_PEERS:
        name = "mixedlm_ext" if peer == "baseline" else peer
        cmd = [sys.executable, str(HERE / "_worker.py"), name, case.name]
        return Worker(peer, cmd, _env(extra, baseline_root if peer == "baseline" else None), timeout)
    r = case.r
    cmd = ["Rscript", str(HERE / "peer_r.R"), str(HERE / "data" / ("%s.csv" % case.data)), r["engine"],
           "1" if case.reml else "0", r.get("factors") or "-", r["formula"], r.get("random", "-"),
           r.get("correlation", "-")]
    return Worker(peer, cmd, _env(extra), timeout)


def peers_for(case, selected: list[str]) -> list[str]:
    out = []
    for peer in ALL_PEERS:
        if peer not in selected:
            continue
        if peer in ("lme4", "nlme") and peer != case.r_peer:
            continue
        if peer == "baseline" and case.scenario not in BASELINE_SCENARIOS:
            continue
        out.append(peer)
    return out


def run_mode(case, peers: list[str], mode: str, repeats: int, timeout: float, baseline_root) -> dict:
    """Cold fits, then ``repeats`` rounds of warm fits, one per peer per round."""
    workers, out = {}, {}
    for peer in peers:
        w = start_worker(peer, case, mode, timeout, baseline_root)
        ready = w.read(("READY", "SKIP"), timeout=max(timeout, 300))
        if w.dead:
            out[peer] = {"status": "skipped" if "cannot" in w.dead else "failed", "reason": w.dead}
            w.kill()
            continue
        workers[peer] = w
        out[peer] = {"status": "ok", "version": ready.get("version"), "warm_times": [], "n_evals": []}
        if peer in PY_PEERS:
            imp = w.ask("import", "IMPORTED")
            if w.dead or imp.get("status") == "failed":
                out[peer] = {"status": "failed", "reason": imp.get("reason", w.dead)}
                continue
            out[peer].update(import_s=imp.get("import_s"), version=imp.get("version"))
        cold = w.ask("fit", "FIT")
        if cold.get("status") != "ok":
            out[peer] = {"status": cold.get("status", "failed"), "reason": cold.get("reason")}
            continue
        out[peer].update(cold_fit_s=cold["fit_s"], loglik=cold.get("loglik"), converged=cold.get("converged"),
                         n_eval=cold.get("n_eval"), n_grad=cold.get("n_grad"))
    for r in range(repeats):
        for peer, w in workers.items():
            res = out[peer]
            if res.get("status") != "ok" or w.dead:
                continue
            cold = res["cold_fit_s"]
            if cold > VERY_SLOW_S or (cold > SLOW_S and r >= 1):
                continue
            fit = w.ask("fit", "FIT")
            if fit.get("status") != "ok":
                res["note"] = "warm repeat %d: %s" % (r + 1, fit.get("reason"))
                continue
            res["warm_times"].append(fit["fit_s"])
            res["n_evals"].append(fit.get("n_eval"))
            res["peak_rss_mb"] = fit.get("peak_rss_mb")
    for peer, w in workers.items():
        res = out[peer]
        if res.get("status") == "ok":
            times = res["warm_times"] or [res["cold_fit_s"]]
            res.update(warm_min_s=min(times), warm_median_s=median(times), repeats=len(res["warm_times"]))
            if res.get("peak_rss_mb") is None:
                res["peak_rss_mb"] = w.peak_rss_mb()
        w.close()
    return out


def run_fresh(case, peers: list[str], repeats: int, timeout: float) -> dict:
    """Fresh processes (import pandas, read, import the peer, fit, summary), alternating."""
    out = {p: [] for p in peers}
    for _ in range(repeats):
        for peer in peers:
            cmd = [sys.executable, str(HERE / "_worker.py"), peer, case.name, "--fresh"]
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(REPO),
                                      env=_env({}))
            except subprocess.TimeoutExpired:
                continue
            for line in done.stdout.splitlines():
                if line.startswith("FRESH "):
                    res = json.loads(line[6:])
                    if res.get("status") == "ok":
                        out[peer].append(res["fresh_s"])
    return {p: {"min_s": min(t), "median_s": median(t), "repeats": len(t)} for p, t in out.items() if t}


def prepare_baseline(rev: str) -> Path:
    """``git archive`` of the baseline revision into ``benchmarks/data/baseline-REV``."""
    root = HERE / "data" / ("baseline-%s" % rev)
    if not (root / "mixedlm_ext" / "__init__.py").exists():
        root.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "mixedlm_ext"], capture_output=True,
                                 check=True)
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive.stdout, check=True)
    return root


# ---------------------------------------------------------------------------
def load_results() -> dict:
    if RESULTS.exists():
        try:
            return json.loads(RESULTS.read_text())
        except json.JSONDecodeError:
            pass
    return {"cases": {}}


def save_results(store: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(store, indent=1, sort_keys=True))
    os.replace(tmp, RESULTS)


def _loadavg():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def run_case(case, peers, args, baseline_root) -> dict:
    entry = {"case": case.name, "scenario": case.scenario, "description": case.description,
             "run_at": _dt.datetime.now().isoformat(timespec="seconds"), "loadavg_at_start": _loadavg(),
             "commands": {"mixedlm_ext": case.stata, "lme4-style": case.mixedlm or case.r["formula"]},
             "baseline": args.baseline if "baseline" in peers else None, "modes": {}}
    for mode in args.modes.split(","):
        log("  %s threads ..." % mode)
        entry["modes"][mode] = run_mode(case, peers, mode, args.repeats, args.timeout, baseline_root)
        for peer, res in entry["modes"][mode].items():
            log("    %-12s %s" % (peer, report.short(res)))
    if case.scenario == "small" and args.fresh_repeats:
        fresh_peers = [p for p in ("mixedlm_ext", "mixedlm") if p in peers]
        entry["fresh"] = run_fresh(case, fresh_peers, args.fresh_repeats, args.timeout)
        log("    fresh: %s" % entry["fresh"])
    entry["loadavg_at_end"] = _loadavg()
    return entry


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", action="append", default=[], help="scenario or case to run (repeatable)")
    p.add_argument("--peers", default=",".join(DEFAULT_PEERS), help="comma-separated peers (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=5, help="warm repeats per peer (default 5)")
    p.add_argument("--fresh-repeats", type=int, default=5, help="fresh-process runs per peer (small scenario)")
    p.add_argument("--modes", default="default,single", help="threading modes (default: %(default)s)")
    p.add_argument("--timeout", type=int, default=900, help="seconds one fit may take (default 900)")
    p.add_argument("--baseline", default="4c14b5f", help="revision run as the 'baseline' peer")
    p.add_argument("--write", action="store_true", help="rewrite benchmarks/README.md afterwards")
    p.add_argument("--write-only", action="store_true", help="only rewrite README.md from stored results")
    args = p.parse_args(argv)
    store = load_results()
    if not args.write_only:
        cases = cases_for([s for item in args.only for s in item.split(",") if s])
        selected = [s.strip() for s in args.peers.split(",") if s.strip()]
        unknown = set(selected) - set(ALL_PEERS)
        if unknown:
            p.error("unknown peers: %s" % ", ".join(sorted(unknown)))
        simulate.write(sorted({c.scenario for c in cases}), verbose=True)
        baseline_root = prepare_baseline(args.baseline) if "baseline" in selected else None
        for case in cases:
            log("%s (%s)  load %s" % (case.name, case.description, _loadavg()))
            store.setdefault("cases", {})[case.name] = run_case(case, peers_for(case, selected), args, baseline_root)
            save_results(store)  # after every case: an interrupted run keeps what it measured
    if args.write or args.write_only:
        store["machine"] = report.machine_facts()
        store["versions"] = report.versions(REPO)
        save_results(store)
        # the bootstrap section is written by bootstrap_bench.py: keep it
        old = README.read_text() if README.exists() else ""
        kept = re.search(r"<!-- bootstrap-bench -->.*?<!-- /bootstrap-bench -->\n?", old, re.S)
        README.write_text(report.render(store) + ("\n" + kept.group(0) if kept else ""))
        log("wrote %s" % README)
    return 0


if __name__ == "__main__":
    sys.exit(main())
