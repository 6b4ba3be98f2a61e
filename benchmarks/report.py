"""The benchmark README: tables and targets from ``benchmarks/data/results.json``.

Used by ``run.py --write``; everything in ``benchmarks/README.md`` comes from here.
"""
from __future__ import annotations

import datetime as _dt
import math
import os
from pathlib import Path
import platform
import shutil
import subprocess
import sys

from cases import CASES, SCENARIOS, TARGETS

LL_REL = 1e-6  # log-likelihoods agree when within this relative difference
PEER_ORDER = ["mixedlm_ext", "mixedlm", "lme4", "nlme", "statsmodels", "baseline"]
MODE_TEXT = {"default": "default threads", "single": "1 thread"}


def ok_num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def fmt_time(s) -> str:
    if not ok_num(s):
        return "-"
    if s < 1:
        return "%.2f ms" % (s * 1000) if s < 0.01 else "%.1f ms" % (s * 1000)
    return "%.2f s" % s


def short(res: dict) -> str:
    if res.get("status") != "ok":
        return "%s: %s" % (res.get("status"), res.get("reason"))
    return "warm min %s med %s (%d rep), cold %s, logLik %s, n_eval %s" % (
        fmt_time(res.get("warm_min_s")), fmt_time(res.get("warm_median_s")), res.get("repeats", 0),
        fmt_time(res.get("cold_fit_s")), res.get("loglik"), res.get("n_eval"))


def _peer_label(peer: str, entry: dict) -> str:
    return "baseline (%s)" % entry.get("baseline") if peer == "baseline" else peer


# ---------------------------------------------------------------------------
# targets
# ---------------------------------------------------------------------------
def _ok(entry, mode, peer):
    r = entry.get("modes", {}).get(mode, {}).get(peer)
    return r if r and r.get("status") == "ok" else None


def _check(check, entries) -> tuple[str, bool]:
    """(measured text, met) of one check over the cases of a scenario."""
    kind = check[0]
    parts, met = [], True
    for e in entries:
        label = e["case"] + ": " if len(entries) > 1 else ""
        ext = _ok(e, "default", "mixedlm_ext")
        if ext is None:
            return "mixedlm_ext did not run", False
        if kind == "faster_than":
            for mode in ("default", "single"):
                a, b = _ok(e, mode, "mixedlm_ext"), _ok(e, mode, check[1])
                if a is None or b is None:
                    continue
                r = b["warm_min_s"] / a["warm_min_s"]
                parts.append("%s%.2fx (%s)" % (label, r, MODE_TEXT[mode]))
                met &= r >= 1.0
        elif kind in ("ratio", "baseline_ratio"):
            peer = check[1] if kind == "ratio" else "baseline"
            need = check[2] if kind == "ratio" else check[1]
            b = _ok(e, "default", peer)
            if b is None:
                parts.append("%s%s not run" % (label, peer))
                met = False
                continue
            r = b["warm_min_s"] / ext["warm_min_s"]
            parts.append("%s%.1fx %s" % (label, r, _peer_label(peer, e)))
            met &= r >= need
        elif kind == "max_warm_s":
            parts.append("%s%s" % (label, fmt_time(ext["warm_min_s"])))
            met &= ext["warm_min_s"] < check[1]
        elif kind == "max_rss_mb":
            parts.append("%speak %.0f MB" % (label, ext.get("peak_rss_mb") or float("nan")))
            met &= ok_num(ext.get("peak_rss_mb")) and ext["peak_rss_mb"] < check[1]
        elif kind == "fresh_vs":
            fr = e.get("fresh", {})
            a, b = fr.get("mixedlm_ext"), fr.get(check[1])
            if a is None or b is None:
                parts.append("%sfresh runs missing" % label)
                met = False
                continue
            parts.append("%s%s vs %s" % (label, fmt_time(a["min_s"]), fmt_time(b["min_s"])))
            met &= a["min_s"] <= b["min_s"]
    return "; ".join(parts), met


def _check_text(check) -> str:
    kind = check[0]
    if kind == "faster_than":
        return "at least as fast as %s (warm, both threadings)" % check[1]
    if kind == "ratio":
        return ">= %gx faster than %s" % (check[2], check[1])
    if kind == "baseline_ratio":
        return ">= %gx faster than the baseline revision" % check[1]
    if kind == "max_warm_s":
        return "warm fit under %s" % fmt_time(check[1])
    if kind == "max_rss_mb":
        return "peak memory < %d MB" % check[1]
    return "fresh process (import, read CSV, fit, summary) no slower than %s" % check[1]


def _loglik_agreement(e) -> tuple[str, bool]:
    ext = _ok(e, "default", "mixedlm_ext")
    peers = [(p, r) for p, r in e.get("modes", {}).get("default", {}).items()
             if p not in ("mixedlm_ext", "baseline") and r.get("status") == "ok" and ok_num(r.get("loglik"))]
    if ext is None or not peers:
        return "no peer", True
    best_peer, best = max(peers, key=lambda pr: pr[1]["loglik"])
    d = best["loglik"] - ext["loglik"]
    rel = abs(d) / max(abs(ext["loglik"]), 1.0)
    if rel <= LL_REL:
        return "agrees with %s (%.1e rel.)" % (best_peer, rel), True
    who = best_peer if d > 0 else "mixedlm_ext"
    return "%s higher by %.3g" % (who, abs(d)), d <= 0


# ---------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------
def _ratio(e, mode, peer):
    a, b = _ok(e, mode, "mixedlm_ext"), _ok(e, mode, peer)
    return "%.2f" % (b["warm_min_s"] / a["warm_min_s"]) if a and b else "-"


def _case_table(e) -> list[str]:
    L = ["| peer | warm min (default) | median | warm min (1 thread) | median | ratio default / 1 thread "
         "| cold fit (import) | logLik | Δ logLik | evaluations | peak RSS MB |",
         "|---|---|---|---|---|---|---|---|---|---|---|"]
    ext = _ok(e, "default", "mixedlm_ext")
    peers = [p for p in PEER_ORDER if p in e.get("modes", {}).get("default", {})]
    for peer in peers:
        d = e["modes"]["default"][peer]
        s = e.get("modes", {}).get("single", {}).get(peer, {})
        if d.get("status") != "ok":
            L.append("| %s | %s: %s |  |  |  |  |  |  |  |  |  |" % (_peer_label(peer, e), d.get("status"),
                                                                    str(d.get("reason", ""))[:120]))
            continue
        rep = lambda r: "" if r.get("repeats", 0) >= 3 else " (%d rep)" % r.get("repeats", 0)  # noqa: E731
        cold = fmt_time(d.get("cold_fit_s")) + (" (%s)" % fmt_time(d["import_s"]) if ok_num(d.get("import_s"))
                                                else "")
        dll = "0" if peer == "mixedlm_ext" else ("%+.2e" % (d["loglik"] - ext["loglik"])
                                                 if ext and ok_num(d.get("loglik")) and ok_num(ext.get("loglik"))
                                                 else "-")
        n_eval = d.get("n_eval")
        ev = "-" if n_eval is None else ("%d (%d with gradient)" % (n_eval, d["n_grad"]) if d.get("n_grad")
                                         else "%d" % n_eval)
        ok_s = s.get("status") == "ok"
        L.append("| %s | %s%s | %s | %s%s | %s | %s / %s | %s | %s | %s | %s | %s |" % (
            _peer_label(peer, e), fmt_time(d["warm_min_s"]), rep(d), fmt_time(d["warm_median_s"]),
            fmt_time(s.get("warm_min_s")) if ok_s else "-", rep(s) if ok_s else "",
            fmt_time(s.get("warm_median_s")) if ok_s else "-",
            "1.00" if peer == "mixedlm_ext" else _ratio(e, "default", peer),
            "1.00" if peer == "mixedlm_ext" else _ratio(e, "single", peer),
            cold, "%.4f" % d["loglik"] if ok_num(d.get("loglik")) else "-", dll, ev,
            "%.0f" % d["peak_rss_mb"] if ok_num(d.get("peak_rss_mb")) else "-"))
    if e.get("fresh"):
        L.append("")
        L.append("Fresh process (import pandas, read the CSV, import the peer, fit, format the summary), "
                 "alternating: " + "; ".join("%s min %s, median %s (%d runs)" % (p, fmt_time(r["min_s"]),
                                                                                 fmt_time(r["median_s"]),
                                                                                 r["repeats"])
                                              for p, r in e["fresh"].items()) + ".")
    return L


def render(store: dict) -> str:
    entries = store.get("cases", {})
    facts, vers = store.get("machine", {}), store.get("versions", {})
    L = ["# mixedlm_ext benchmarks", "",
         "Generated by `python benchmarks/run.py --write`; do not edit by hand (the text comes from "
         "`benchmarks/report.py`).", "",
         "mixedlm_ext (`mixedlm_ext.mixed(stata_command, df)`) against its peers, each fitting the same "
         "simulated CSV file (`benchmarks/simulate.py`, fixed seeds, written to the gitignored "
         "`benchmarks/data/`) in the same run.", "", "## How to run", "", "```",
         "pip install mixedlm==1.3.0        # benchmark-only peer (Rust-core lme4 clone), not a dependency",
         "python benchmarks/run.py          # all scenarios; --only NAME (repeatable), --peers a,b, --repeats N",
         "python benchmarks/run.py --write  # and rewrite this README from benchmarks/data/results.json",
         "```", "", "R peers need `Rscript` with lme4 and nlme.", "", "## What is measured", "",
         "* Every peer runs in its own long-lived process that reads the CSV once (not timed), imports the "
         "peer (timed) and fits once (**cold fit**); then the harness asks the peers for their warm fits "
         "round-robin, one fit per peer at a time (A B C A B C ...), so that load on the machine falls on "
         "all of them alike. **warm min** and **median** are over those repeats (5 unless a cold fit took "
         "more than 20 s: 1; more than 120 s: none, the cold fit counts).",
         "* Each case runs twice: under the default threading and with every thread pool at one thread "
         "(`OMP_NUM_THREADS`, `OPENBLAS_NUM_THREADS`, `MKL_NUM_THREADS`, `RAYON_NUM_THREADS` = 1).",
         "* **ratio**: peer warm min / mixedlm_ext warm min (> 1: mixedlm_ext is faster).",
         "* **evaluations**: objective evaluations of the fit as the peer reports them (mixedlm_ext: values "
         "and value+gradient evaluations, EM steps and the standard errors' Hessian included; lme4: "
         "`optinfo$feval`; mixedlm: `function_evals`).",
         "* **logLik**: log-likelihood (restricted for REML fits); **Δ logLik** = peer - mixedlm_ext.",
         "* **peak RSS**: peak resident memory of the peer's process (`ru_maxrss` / `VmHWM`).",
         "* **baseline**: mixedlm_ext at the revision the speed work started from, same harness.", "",
         "## Machine", "", "| | |", "|---|---|"]
    for key in ("cpu", "cores", "memory", "os", "date"):
        L.append("| %s | %s |" % ("README written" if key == "date" else key, facts.get(key)))
    L += ["", "Versions: " + ", ".join("%s %s" % kv for kv in vers.items()) + ".", "", "## Targets", "",
          "| scenario | target | measured | status |", "|---|---|---|---|"]
    for sc in SCENARIOS:
        sc_entries = [entries[c.name] for c in CASES if c.scenario == sc and c.name in entries]
        if not sc_entries:
            continue
        for check in TARGETS.get(sc, []):
            text, met = _check(check, sc_entries)
            L.append("| %s | %s | %s | %s |" % (sc, _check_text(check), text or "-", "met" if met else "NOT met"))
        for e in sc_entries:
            text, met = _loglik_agreement(e)
            L.append("| %s | logLik within %g (relative) of the best peer%s | %s | %s |" % (
                sc, LL_REL, " (%s)" % e["case"] if len(sc_entries) > 1 else "", text, "met" if met else "NOT met"))
    L += ["", "## Results", ""]
    for c in CASES:
        e = entries.get(c.name)
        if e is None:
            continue
        L.append("### %s%s" % (c.name, "" if c.name == c.scenario else " (scenario %s)" % c.scenario))
        L.append("")
        L.append("%s%s. Run %s (load average %s at start, %s at end). Commands: mixedlm_ext `%s`; lme4-style `%s`."
                 % (c.description[0].upper(), c.description[1:], e.get("run_at"),
                    "/".join(map(str, e.get("loadavg_at_start") or [])), "/".join(map(str, e.get("loadavg_at_end")
                                                                                       or [])),
                    c.stata, c.mixedlm or c.r["formula"]))
        L.append("")
        L += _case_table(e)
        L.append("")
    scale_out = Path(__file__).resolve().parent / "scale_out.md"  # written by benchmarks/scale_out.py
    if scale_out.exists():
        L += ["<!-- scale-out -->", scale_out.read_text().rstrip(), "<!-- /scale-out -->", ""]
    return "\n".join(L) + "\n"


# ---------------------------------------------------------------------------
def machine_facts() -> dict:
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
    return {"cpu": cpu, "cores": os.cpu_count(), "memory": mem, "os": "%s %s" % (platform.system(),
                                                                                  platform.release()),
            "date": _dt.datetime.now().isoformat(timespec="seconds")}


def versions(repo) -> dict:
    from importlib import metadata

    v = {"python": platform.python_version()}
    for pkg in ("numpy", "scipy", "pandas", "statsmodels", "mixedlm"):
        try:
            v[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            v[pkg] = "not installed"
    rev = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    v["mixedlm_ext_git"] = rev.stdout.strip() if rev.returncode == 0 else "unknown"
    if shutil.which("Rscript"):
        out = subprocess.run(["Rscript", "-e", 'cat(paste(R.version$major, R.version$minor, sep="."), '
                              'as.character(packageVersion("lme4")), as.character(packageVersion("nlme")))'],
                             capture_output=True, text=True)
        if out.returncode == 0 and len(out.stdout.split()) == 3:
            v["R"], v["lme4"], v["nlme"] = out.stdout.split()
    v["python_executable"] = sys.executable
    return v
