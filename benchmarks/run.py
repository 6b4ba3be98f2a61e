"""Run the mixedlm_ext benchmark suite against its peers, side by side.

    python benchmarks/run.py                   # every scenario, every peer
    python benchmarks/run.py --only ri         # one scenario (repeatable: --only ri --only small)
    python benchmarks/run.py --peers mixedlm_ext,lme4
    python benchmarks/run.py --write           # also rewrite benchmarks/README.md
    python benchmarks/run.py --write-only      # README.md from the stored results, no fits

Peers, each fitted on the same CSV file of ``benchmarks/data/`` (written by
``simulate.py`` when missing):

* ``mixedlm_ext``  -- ``mixedlm_ext.mixed(stata_command, df)``
* ``mixedlm``      -- the Rust-core lme4 clone (``pip install mixedlm==1.3.0``;
  a benchmark-only peer, never a dependency)
* ``lme4`` / ``nlme`` -- R's ``lmer`` / ``lme`` through ``Rscript peer_r.R``
* ``statsmodels``  -- ``MixedLM.from_formula`` where it can express the model

Every fit runs in its own subprocess (``_worker.py`` for Python peers), so one
peer crashing, hanging (``--timeout``) or failing to import is recorded as
``failed: reason`` / ``skipped: reason`` and the run goes on.

Timings: Python peers report *cold* (import + first fit in a fresh process)
and *warm* (best of ``--repeats`` further fits in the same process); R peers
report the ``system.time`` elapsed of one fit, after a tiny warm-up fit on a
data set bundled with the package (reading the CSV is never timed).  The
ratio column is peer time / mixedlm_ext warm time (R peers: their one fit;
Python peers: their warm time).  Peak memory is the peak resident set size of
the whole process (Python: ``ru_maxrss``; R: ``/usr/bin/time -v``), data frame
included.

Results are merged into ``benchmarks/data/results.json`` (one entry per case,
newest run wins), from which ``--write`` renders ``benchmarks/README.md``.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import simulate  # noqa: E402
from cases import CASES, SCENARIOS, TARGETS, cases_for  # noqa: E402

RESULTS = HERE / "data" / "results.json"
README = HERE / "README.md"
SCALE_OUT = HERE / "scale_out.md"  # the scale-out section (benchmarks/scale_out.py)
ALL_PEERS = ["mixedlm_ext", "mixedlm", "lme4", "nlme", "statsmodels"]
PY_PEERS = {"mixedlm_ext", "mixedlm", "statsmodels"}
LL_TOL = 0.01  # |logLik difference| above which a peer's fit is flagged


# ---------------------------------------------------------------------------
# running one peer on one case
# ---------------------------------------------------------------------------
def _parse_tagged(stdout: str, tag: str):
    found = None
    for line in stdout.splitlines():
        if line.startswith(tag + " "):
            try:
                found = json.loads(line[len(tag) + 1:])
            except json.JSONDecodeError:
                pass
    return found


def _tail(text: str, n: int = 400) -> str:
    text = (text or "").strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return " | ".join(lines[-3:])[-n:]


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.setdefault("PYTHONHASHSEED", "0")
    return env


THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS")
MEM_LIMIT_GB = [16.0]  # address-space cap of every peer process (--mem-limit-gb)


def _limit_memory():
    """In the child: cap the address space so a runaway allocation fails with
    MemoryError / an R error instead of exhausting the shared machine."""
    gb = MEM_LIMIT_GB[0]
    if gb and gb > 0:
        import resource

        lim = int(gb * 1024 ** 3)
        try:
            resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
        except (ValueError, OSError):
            pass


def _run(cmd, timeout):
    """Run a command; return (returncode or None on timeout, stdout, stderr, wall seconds)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=str(REPO), env=_env(), start_new_session=True,
                            preexec_fn=_limit_memory)
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err, time.perf_counter() - t0
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, 9)  # the process group we started, nothing else
        except OSError:
            proc.kill()
        out, err = proc.communicate()
        return None, out, err, time.perf_counter() - t0


def run_python_peer(peer, case, repeats, timeout):
    cmd = [sys.executable, str(HERE / "_worker.py"), peer, case.name, "--repeats", str(repeats)]
    rc, out, err, wall = _run(cmd, timeout)
    res = _parse_tagged(out, "RESULT")
    if res is not None:
        res["wall_s"] = wall
        return res
    cold = _parse_tagged(out, "COLD")
    if rc is None:
        if cold is not None:  # first fit finished, the warm repeats did not
            cold.update(repeats=0, warm_s=cold["cold_fit_s"], wall_s=wall,
                        note="warm repeats cut by the %d s timeout; warm = first fit" % timeout)
            return cold
        return {"status": "skipped", "reason": "too slow: no fit within the %d s timeout" % timeout,
                "wall_s": wall}
    return {"status": "failed", "reason": "worker exited %s: %s" % (rc, _tail(err) or _tail(out)),
            "wall_s": wall}


def r_available():
    return shutil.which("Rscript") is not None


def run_r_peer(case, timeout):
    r = case.r
    args = [str(HERE / "data" / ("%s.csv" % case.data)), r["engine"], "1" if case.reml else "0",
            r.get("factors") or "-", r["formula"], r.get("random", "-"), r.get("correlation", "-")]
    cmd = ["Rscript", str(HERE / "peer_r.R")] + args
    timev = Path("/usr/bin/time")
    use_time = timev.exists()
    if use_time:
        cmd = [str(timev), "-v"] + cmd
    rc, out, err, wall = _run(cmd, timeout)
    res = _parse_tagged(out, "RESULT")
    if res is None:
        if rc is None:
            return {"status": "skipped", "reason": "too slow: > %d s timeout" % timeout, "wall_s": wall}
        # /usr/bin/time -v appends its report to stderr; show R's error instead
        r_err = err.split("\tCommand being timed:")[0] if use_time else err
        lines = [ln.strip() for ln in r_err.splitlines()
                 if ln.strip() and not ln.startswith(("Command exited", "Command terminated"))]
        start = next((i for i, ln in enumerate(lines) if ln.startswith("Error")), None)
        msg = " ".join(lines[start:start + 3]) if start is not None else " | ".join(lines[-3:])
        return {"status": "failed", "reason": "Rscript exited %s: %s" % (rc, msg[-400:]), "wall_s": wall}
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err or "")
    out_res = {"status": "ok", "warm_s": res.get("time"), "first_s": res.get("first"),
               "repeats": res.get("repeats"), "loglik": res.get("loglik"),
               "converged": res.get("converged"), "version": res.get("version"),
               "R": res.get("R"), "Matrix": res.get("Matrix"), "wall_s": wall,
               "peak_rss_mb": round(int(m.group(1)) / 1024.0, 1) if m else None}
    if res.get("messages"):
        out_res["messages"] = [res["messages"]]
    return out_res


def peers_for(case, selected):
    """(peer, how) for the peers that apply to a case, in display order."""
    out = []
    for peer in ALL_PEERS:
        if peer not in selected:
            continue
        if peer in ("lme4", "nlme") and peer != case.r_peer:
            continue
        out.append(peer)
    return out


def run_case(case, selected, repeats, timeout, log):
    entry = {"case": case.name, "scenario": case.scenario, "description": case.description,
             "run_at": _dt.datetime.now().isoformat(timespec="seconds"), "peers": {},
             "loadavg_at_start": _loadavg(),
             "threads": {k: os.environ[k] for k in THREAD_VARS if k in os.environ},
             "commands": {"mixedlm_ext": case.stata, "mixedlm": case.mixedlm,
                          case.r_peer: case.r["formula"] + (
                              " | random=%s, correlation=%s" % (case.r["random"], case.r["correlation"])
                              if case.r["engine"] == "lme" else ""),
                          "statsmodels": case.statsmodels}}
    for peer in peers_for(case, selected):
        log("  %-12s ... " % peer, end="")
        t0 = time.perf_counter()
        try:
            if peer in PY_PEERS:
                res = run_python_peer(peer, case, repeats, timeout)
            elif not r_available():
                res = {"status": "skipped", "reason": "Rscript not found"}
            else:
                res = run_r_peer(case, timeout)
        except Exception as exc:  # the harness itself must never stop
            res = {"status": "failed", "reason": "harness: %s: %s" % (type(exc).__name__, exc)}
        entry["peers"][peer] = res
        log(_short(res) + "  [%.1f s]" % (time.perf_counter() - t0))
    return entry


def _loadavg():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _short(res):
    if res.get("status") != "ok":
        return "%s: %s" % (res.get("status"), res.get("reason"))
    s = "warm %s" % fmt_time(res.get("warm_s"))
    if res.get("cold_s") is not None:
        s += ", cold %s (import %s)" % (fmt_time(res["cold_s"]), fmt_time(res.get("import_s")))
    elif res.get("first_s") is not None:
        s += ", first fit %s" % fmt_time(res["first_s"])
    s += ", logLik %s" % fmt_num(res.get("loglik"), 4)
    if res.get("peak_rss_mb") is not None:
        s += ", peak %s MB" % fmt_num(res["peak_rss_mb"], 0)
    return s


# ---------------------------------------------------------------------------
# formatting and targets
# ---------------------------------------------------------------------------
def _ok_num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def fmt_time(s):
    if not _ok_num(s):
        return "-"
    if s < 1:
        return "%.1f ms" % (s * 1000) if s >= 0.01 else "%.2f ms" % (s * 1000)
    return "%.2f s" % s


def fmt_num(x, digits=3):
    if not _ok_num(x):
        return "-"
    return "{:,.{d}f}".format(x, d=digits)


def ext_result(entry):
    r = entry["peers"].get("mixedlm_ext")
    return r if r and r.get("status") == "ok" else None


def ratio(entry, peer):
    ext = ext_result(entry)
    r = entry["peers"].get(peer)
    if not ext or not r or r.get("status") != "ok":
        return None
    if not _ok_num(ext.get("warm_s")) or not _ok_num(r.get("warm_s")) or ext["warm_s"] <= 0:
        return None
    return r["warm_s"] / ext["warm_s"]


def ll_diff(entry, peer):
    ext = ext_result(entry)
    r = entry["peers"].get(peer)
    if not ext or not r or r.get("status") != "ok":
        return None
    if not _ok_num(ext.get("loglik")) or not _ok_num(r.get("loglik")):
        return None
    return r["loglik"] - ext["loglik"]


def assess(scenario, entries):
    """(measured text, 'met' / 'not met' / 'n/a ...') for one scenario."""
    tgt = TARGETS.get(scenario)
    if tgt is None:
        return "", "no target"
    if not entries:
        return "", "not run"
    parts, ok, missing = [], True, []
    for e in entries:
        ext = ext_result(e)
        if ext is None:
            r = e["peers"].get("mixedlm_ext")
            missing.append("mixedlm_ext %s" % ((r or {}).get("status") or "not run"))
            continue
        label = e["case"] + ": " if len(entries) > 1 else ""
        for peer, need in tgt.get("ratios", {}).items():
            if peer not in e["peers"]:
                missing.append("%s not run" % peer)
                continue
            rr = ratio(e, peer)
            if rr is None:
                pr = e["peers"].get(peer)
                missing.append("%s %s" % (peer, (pr or {}).get("status") or "not run"))
                continue
            parts.append("%s%.1fx %s" % (label, rr, peer))
            ok &= rr >= need
        if "max_rss_mb" in tgt:
            mem = ext.get("peak_rss_mb")
            if _ok_num(mem):
                parts.append("%speak %.0f MB" % (label, mem))
                ok &= mem < tgt["max_rss_mb"]
            else:
                missing.append("memory not measured")
        if "max_warm_s" in tgt:
            parts.append("%s%s" % (label, fmt_time(ext.get("warm_s"))))
            ok &= _ok_num(ext.get("warm_s")) and ext["warm_s"] < tgt["max_warm_s"]
        # a fast wrong answer does not meet a target
        lls = [r.get("loglik") for p, r in e["peers"].items()
               if p != "mixedlm_ext" and r.get("status") == "ok" and _ok_num(r.get("loglik"))]
        if lls and _ok_num(ext.get("loglik")) and ext["loglik"] < max(lls) - LL_TOL:
            parts.append("%slogLik %.3f below best peer" % (label, max(lls) - ext["loglik"]))
            ok = False
    measured = "; ".join(parts)
    if missing:
        return measured, "n/a (%s)" % ", ".join(missing)
    return measured, "met" if ok else "not met"


# ---------------------------------------------------------------------------
# machine facts and versions
# ---------------------------------------------------------------------------
def machine_facts():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    mem = "%.1f GiB" % (int(line.split()[1]) / 1024 ** 2)
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory": mem,
            "os": "%s %s" % (platform.system(), platform.release()),
            "date": _dt.datetime.now().isoformat(timespec="seconds"),
            "blas_threads": {k: os.environ[k] for k in THREAD_VARS if k in os.environ}}


def versions():
    from importlib import metadata

    v = {"python": platform.python_version()}
    for pkg in ("numpy", "scipy", "pandas", "statsmodels", "mixedlm"):
        try:
            v[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            v[pkg] = "not installed"
    # mixedlm_ext: from the working tree, in a subprocess (it may not import yet)
    rc, out, err, _ = _run([sys.executable, "-c",
                            "import mixedlm_ext as m; print(getattr(m, '__version__', 'dev'))"], 120)
    v["mixedlm_ext"] = out.strip() if rc == 0 else "import failed: %s" % _tail(err, 120)
    try:
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=20)
        v["mixedlm_ext_git"] = rev.stdout.strip() if rev.returncode == 0 else "no commit"
    except Exception:
        v["mixedlm_ext_git"] = "unknown"
    if r_available():
        rc, out, err, _ = _run(["Rscript", "-e",
                                'cat(paste(R.version$major, R.version$minor, sep="."), '
                                'as.character(packageVersion("lme4")), as.character(packageVersion("nlme")), '
                                'as.character(packageVersion("Matrix")))'], 120)
        if rc == 0 and len(out.split()) == 4:
            v["R"], v["lme4"], v["nlme"], v["Matrix"] = out.split()
    return v


# ---------------------------------------------------------------------------
# results store and README
# ---------------------------------------------------------------------------
def load_results():
    if RESULTS.exists():
        try:
            return json.loads(RESULTS.read_text())
        except json.JSONDecodeError:
            pass
    return {"cases": {}}


def save_results(store):
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(store, indent=1, sort_keys=True))
    os.replace(tmp, RESULTS)


def _peer_cells(entry, peer):
    r = entry["peers"][peer]
    st = r.get("status")
    if st != "ok":
        reason = str(r.get("reason", "")).replace("|", "/").replace("\n", " ")
        if len(reason) > 140:
            reason = reason[:137] + "..."
        return ["%s: %s" % (st, reason)] + [""] * 7
    rr = ratio(entry, peer)
    d = ll_diff(entry, peer)
    if r.get("cold_s") is not None:
        cold = "%s (import %s)" % (fmt_time(r.get("cold_s")), fmt_time(r.get("import_s")))
    elif r.get("first_s") is not None:
        cold = "first fit %s" % fmt_time(r.get("first_s"))
    else:
        cold = "-"
    rep = r.get("repeats")
    warm = fmt_time(r.get("warm_s"))
    if rep is not None and rep < 3:
        warm += " (%d rep)" % rep
    notes = []
    if r.get("converged") is False:
        notes.append("not converged")
    if d is not None and abs(d) > LL_TOL:
        notes.append("logLik differs")
    if r.get("note"):
        notes.append(r["note"])
    return [warm, cold, "1.00" if peer == "mixedlm_ext" else ("%.2f" % rr if rr is not None else "-"),
            fmt_num(r.get("loglik"), 4), "0" if peer == "mixedlm_ext" else
            (("%+.2e" % d) if d is not None else "-"),
            fmt_num(r.get("peak_rss_mb"), 0), "; ".join(notes), ""][:8]


def render_readme(store, facts, vers):
    entries = store.get("cases", {})
    L = []
    L.append("# mixedlm_ext benchmarks")
    L.append("")
    L.append("Generated by `python benchmarks/run.py --write`; do not edit by hand "
             "(the text comes from `benchmarks/run.py`).")
    L.append("")
    L.append("mixedlm_ext (`mixedlm_ext.mixed(stata_command, df)`) against its peers, each fitting the "
             "same simulated CSV file (`benchmarks/simulate.py`, fixed seeds, written to the gitignored "
             "`benchmarks/data/`) in the same run.")
    L.append("")
    L.append("## How to run")
    L.append("")
    L.append("```")
    L.append("pip install mixedlm==1.3.0        # benchmark-only peer (Rust-core lme4 clone), not a dependency")
    L.append("python benchmarks/simulate.py     # data files (run.py also writes missing ones)")
    L.append("python benchmarks/run.py          # all scenarios; --only NAME (repeatable), --peers a,b")
    L.append("python benchmarks/run.py --write  # and rewrite this README from benchmarks/data/results.json")
    L.append("```")
    L.append("")
    L.append("R peers need `Rscript` with lme4 and nlme (Debian: `r-cran-lme4 r-cran-nlme`).")
    L.append("")
    L.append("## What is measured")
    L.append("")
    L.append("* **warm**: Python peers -- best of 3 fits in one process after a first (warm-up) fit. "
             "R peers (lme4 `lmer`, nlme `lme`) -- best `system.time()` elapsed of the first fit and "
             "3 repeats, after a tiny warm-up fit on a data set bundled with the R package; reading "
             "the CSV is never timed. Fewer repeats when the first fit takes more than 20 s (1) or "
             "120 s (0, the first fit counts), shown as `(n rep)`.")
    L.append("* **cold**: Python peers -- import + first fit in a fresh process (import time in "
             "brackets); `mixedlm` imports lazily, so its import cost shows up in its first fit. "
             "R peers -- the first timed fit (package already loaded and warmed up).")
    L.append("* **ratio**: peer time / mixedlm_ext warm time (> 1: mixedlm_ext is faster).")
    L.append("* **logLik**: log-likelihood (restricted log-likelihood for REML fits); "
             "**Δ logLik** = peer - mixedlm_ext (positive: the peer found a higher likelihood).")
    L.append("* **peak RSS**: peak resident memory of the whole process, data frame and interpreter "
             "included (Python: `ru_maxrss`; R: `/usr/bin/time -v`).")
    L.append("* A target is *met* only if the ratio/time/memory condition holds **and** mixedlm_ext's "
             "logLik is within %g of the best peer's." % LL_TOL)
    L.append("")
    L.append("## Machine")
    L.append("")
    L.append("| | |")
    L.append("|---|---|")
    L.append("| CPU | %s |" % facts.get("cpu"))
    L.append("| cores | %s |" % facts.get("cores"))
    L.append("| memory | %s |" % facts.get("memory"))
    L.append("| OS | %s |" % facts.get("os"))
    L.append("| README written | %s |" % facts.get("date"))
    if facts.get("blas_threads"):
        L.append("| thread settings | %s |" % ", ".join("%s=%s" % kv for kv in facts["blas_threads"].items()))
    L.append("")
    L.append("Versions: " + ", ".join("%s %s" % (k, v) for k, v in vers.items()) + ".")
    L.append("")
    L.append("## Targets")
    L.append("")
    L.append("| scenario | target | measured | status |")
    L.append("|---|---|---|---|")
    for sc in SCENARIOS:
        sc_entries = [entries[c.name] for c in CASES if c.scenario == sc and c.name in entries]
        measured, status = assess(sc, sc_entries)
        L.append("| %s | %s | %s | %s |" % (sc, TARGETS.get(sc, {}).get("text", ""), measured or "-", status))
    L.append("")
    L.append("## Results")
    L.append("")
    for c in CASES:
        e = entries.get(c.name)
        L.append("### %s%s" % (c.name, "" if c.name == c.scenario else " (scenario %s)" % c.scenario))
        L.append("")
        L.append("%s." % c.description[0].upper() + c.description[1:] if c.description else "")
        L.append("")
        if e is None:
            L.append("Not run yet.")
            L.append("")
            continue
        load = e.get("loadavg_at_start")
        L.append("Run %s%s. Commands: mixedlm_ext `%s`; lme4-style `%s`."
                 % (e.get("run_at"), " (load average %s at start)" % "/".join(map(str, load)) if load else "",
                    c.stata, c.mixedlm or c.r["formula"]))
        L.append("")
        L.append("| peer | warm fit | cold (import) | ratio | logLik | Δ logLik | peak RSS MB | notes |")
        L.append("|---|---|---|---|---|---|---|---|")
        for peer in ALL_PEERS:
            if peer in e["peers"]:
                cells = _peer_cells(e, peer)
                L.append("| %s | %s |" % (peer, " | ".join(cells[:7])))
        L.append("")
    if SCALE_OUT.exists():  # written by benchmarks/scale_out.py
        L.append("<!-- scale-out -->")
        L.append(SCALE_OUT.read_text().rstrip())
        L.append("<!-- /scale-out -->")
        L.append("")
    return "\n".join(L) + "\n"


# ---------------------------------------------------------------------------
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", action="append", default=[],
                   help="scenario (or case) to run; repeatable or comma-separated. Known: %s"
                        % ", ".join(SCENARIOS))
    p.add_argument("--peers", default=",".join(ALL_PEERS),
                   help="comma-separated peers (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=3, help="warm repeats for Python peers (default 3)")
    p.add_argument("--timeout", type=int, default=600,
                   help="seconds per peer and case before it is recorded as too slow (default 600)")
    p.add_argument("--mem-limit-gb", type=float, default=16.0,
                   help="address-space cap per peer process in GiB, 0 for none (default 16)")
    p.add_argument("--threads", type=int, default=0,
                   help="set OMP/OPENBLAS/MKL/RAYON_NUM_THREADS for every peer (default: leave unset)")
    p.add_argument("--write", action="store_true", help="rewrite benchmarks/README.md afterwards")
    p.add_argument("--write-only", action="store_true", help="only rewrite README.md from stored results")
    p.add_argument("--json", action="store_true", help="print this run's results as JSON")
    args = p.parse_args(argv)

    def log(*a, **kw):
        print(*a, **kw, file=sys.stderr, flush=True)

    MEM_LIMIT_GB[0] = args.mem_limit_gb
    if args.threads > 0:
        for var in THREAD_VARS:
            os.environ[var] = str(args.threads)
    store = load_results()
    if not args.write_only:
        only = [s for item in args.only for s in item.split(",") if s]
        cases = cases_for(only)
        selected = [s.strip() for s in args.peers.split(",") if s.strip()]
        unknown = set(selected) - set(ALL_PEERS)
        if unknown:
            p.error("unknown peers: %s" % ", ".join(sorted(unknown)))
        simulate.write(sorted({c.scenario for c in cases}), verbose=True)
        this_run = {}
        for case in cases:
            log("%s (%s)  load %s" % (case.name, case.description, _loadavg()))
            entry = run_case(case, selected, args.repeats, args.timeout, log)
            this_run[case.name] = entry
            store.setdefault("cases", {})[case.name] = entry
            save_results(store)  # after every case: an interrupted run keeps what it measured
        log("")
        log(summary_table(this_run))
        if args.json:
            print(json.dumps(this_run, indent=1))
    if args.write or args.write_only:
        facts = machine_facts()
        vers = versions()
        store["machine"] = facts
        store["versions"] = vers
        save_results(store)
        # the bootstrap section is written by bootstrap_bench.py: keep it
        kept = re.search(r"<!-- bootstrap-bench -->.*?<!-- /bootstrap-bench -->\n?", README.read_text(), re.S)
        README.write_text(render_readme(store, facts, vers) + ("\n" + kept.group(0) if kept else ""))
        log("wrote %s" % README)
    return 0


def summary_table(run):
    rows = [("case", "peer", "warm", "cold(import)", "ratio", "logLik", "dLL", "peakMB")]
    for name, e in run.items():
        for peer in ALL_PEERS:
            if peer not in e["peers"]:
                continue
            r = e["peers"][peer]
            if r.get("status") != "ok":
                rows.append((name, peer, "%s: %s" % (r.get("status"), str(r.get("reason"))[:90]),
                             "", "", "", "", ""))
                continue
            rr = ratio(e, peer)
            d = ll_diff(e, peer)
            rows.append((name, peer, fmt_time(r.get("warm_s")),
                         ("%s(%s)" % (fmt_time(r.get("cold_s")), fmt_time(r.get("import_s"))))
                         if r.get("cold_s") is not None else
                         ("first %s" % fmt_time(r.get("first_s")) if r.get("first_s") is not None else "-"),
                         "%.2f" % rr if rr is not None else "-", fmt_num(r.get("loglik"), 4),
                         "%+.1e" % d if d is not None else "-", fmt_num(r.get("peak_rss_mb"), 0)))
    widths = [max(len(str(r[i])) for r in rows if not (len(r) > 3 and r[3] == "" and i == 2))
              for i in range(len(rows[0]))]
    lines = []
    for r in rows:
        if r[3] == "" and r[2] and ":" in r[2]:
            lines.append("  ".join([r[0].ljust(widths[0]), r[1].ljust(widths[1]), r[2]]))
        else:
            lines.append("  ".join(str(x).ljust(w) for x, w in zip(r, widths)))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
