"""Scale-out benchmark: a partitioned Parquet data set fitted through dask.distributed.

    python benchmarks/scale_out.py                      # 20M and 100M rows, write the table
    python benchmarks/scale_out.py --sizes 20 --repeats 1
    python benchmarks/scale_out.py --write-only         # README section from the stored results

Data: a 3-level nested model with a random slope,

    y = 1 + 0.5 x + u_school + v_school x + w_class + e,

``x ~ N(0, 1)``, sd(u) = 1, sd(v) = 0.3, corr(u, v) = 0.4, sd(w) = 0.5,
sd(e) = 1; 200 rows per class, 50 classes per school (so 2,000 schools
and 100,000 classes at 20M rows, 10,000 and 500,000 at 100M), written as
Parquet files of 1M rows (one Dask partition each) under ``--data``
(default ``/tmp/mixedlm_scale``; not in the repository).

Fit: ``mixed y x || school: x, covariance(unstructured) || class:`` by ML,

* **dask**: ``mx.mixed(cmd, dd.read_parquet(path))`` with a
  ``dask.distributed.Client`` on a ``LocalCluster`` of two worker processes
  (one thread each), started before the clock;
* **dask-workers**: the same with ``statistics_on="workers"``: the
  per-group statistics stay on the workers in shards of whole schools, every
  evaluation a map over them;
* **memory**: ``mx.mixed(cmd, pd.read_parquet(path))``, reading included
  (20M rows only).

Each fit runs in a fresh process (``python benchmarks/scale_out.py --one
...``); the repeats of the two are interleaved (ABAB).  Reported: wall time
(min and median), the fitting process's peak resident memory
(``ru_maxrss``: for Dask the client process, which also runs the
scheduler; the workers' memory is theirs), the log-likelihood and the number
of objective evaluations.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "data" / "scale_out.json"
SECTION = HERE / "scale_out.md"
README = HERE / "README.md"
COMMAND = "mixed y x || school: x, covariance(unstructured) || class:"
ROWS_PER_FILE = 1_000_000
ROWS_PER_CLASS, CLASSES_PER_SCHOOL = 200, 50
MARKER = "## Scale-out (Dask)"


def write_data(path: Path, rows: int, seed: int = 2024) -> None:
    """The partitioned Parquet data set (skipped when complete)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    done = path / "_complete"
    if done.exists():
        return
    path.mkdir(parents=True, exist_ok=True)
    n_schools = rows // (ROWS_PER_CLASS * CLASSES_PER_SCHOOL)
    rng = np.random.default_rng(seed)
    L = np.linalg.cholesky(np.array([[1.0, 0.4 * 0.3], [0.4 * 0.3, 0.09]]))
    school_effects = rng.standard_normal((n_schools, 2)) @ L.T
    class_effects = 0.5 * rng.standard_normal(n_schools * CLASSES_PER_SCHOOL)
    for f, start in enumerate(range(0, rows, ROWS_PER_FILE)):
        r = np.arange(start, min(rows, start + ROWS_PER_FILE))
        cls = r // ROWS_PER_CLASS
        school = cls // CLASSES_PER_SCHOOL
        x = rng.standard_normal(r.size)
        u = school_effects[school]
        y = 1.0 + 0.5 * x + u[:, 0] + u[:, 1] * x + class_effects[cls] + rng.standard_normal(r.size)
        table = pa.table({"school": school.astype(np.int32), "class": cls.astype(np.int32), "x": x, "y": y})
        pq.write_table(table, path / ("part-%04d.parquet" % f))
    done.write_text(str(rows))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def fit_once(how: str, path: Path, workers: int) -> dict:
    """One timed fit in this process (``--one``)."""
    import warnings

    import mixedlm_ext as mx

    client = cluster = None
    if how.startswith("dask"):
        import dask.dataframe as dd
        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None, silence_logs=40)
        client = Client(cluster)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if how.startswith("dask"):
            where = "workers" if how == "dask-workers" else "auto"
            res = mx.mixed(COMMAND, dd.read_parquet(str(path)), statistics_on=where)
        else:
            import pandas as pd

            res = mx.mixed(COMMAND, pd.read_parquet(path))
    wall = time.perf_counter() - t0
    out = {"how": how, "wall_s": wall, "peak_mb": _peak_mb(), "llf": float(res.llf), "nobs": int(res.nobs),
           "n_evaluations": int(res.opt.n_eval), "converged": bool(res.converged),
           "params": [float(v) for v in np.asarray(res.params)]}
    if client is not None:
        client.close()
        cluster.close()
    return out


def _subprocess(how: str, path: Path, workers: int, timeout: float) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(HERE.parent) + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", how, "--path", str(path), "--workers", str(workers)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        return {"how": how, "failed": (proc.stderr or proc.stdout)[-600:]}
    return json.loads(lines[-1][len("RESULT "):])


def run(sizes: list[int], data: Path, repeats: int, workers: int, timeout: float) -> dict:
    store = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for millions in sizes:
        path = data / ("rows_%dM" % millions)
        t = time.perf_counter()
        write_data(path, millions * 1_000_000)
        print("data %s ready (%.0f s)" % (path, time.perf_counter() - t), flush=True)
        hows = ["dask", "dask-workers"] + (["memory"] if millions <= 20 else [])
        runs = {h: [] for h in hows}
        for rep in range(repeats):  # ABAB
            for h in hows:
                r = _subprocess(h, path, workers, timeout)
                print("%dM %s repeat %d: %s" % (millions, h, rep + 1, {k: v for k, v in r.items() if k != "params"}),
                      flush=True)
                runs[h].append(r)
        store[str(millions)] = {"rows": millions * 1_000_000, "runs": runs, "run_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                "loadavg": [round(x, 2) for x in os.getloadavg()], "workers": workers,
                                "data_bytes": sum(f.stat().st_size for f in path.glob("*.parquet"))}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(store, indent=1))
    return store


def _cell(runs: list, key: str, fmt: str) -> str:
    vals = [r[key] for r in runs if key in r]
    if not vals:
        return "failed"
    if len(vals) == 1:
        return fmt % vals[0]
    return (fmt + " / " + fmt) % (min(vals), statistics.median(vals))


def render(store: dict) -> str:
    L = [MARKER, "", "Generated by `python benchmarks/scale_out.py` (data written by the same script; see its "
         "docstring). Model `%s` (ML) on a partitioned Parquet data set (files of 1M rows = one partition "
         "each; 200 rows per class, 50 classes per school). **dask**: `mx.mixed(cmd, dd.read_parquet(path))` "
         "with a `dask.distributed` LocalCluster of 2 worker processes (1 thread each); **dask-workers**: the same "
         "with `statistics_on=\"workers\"` (per-group statistics kept on the workers in shards of whole schools, "
         "each evaluation a map over them); **memory**: "
         "`mx.mixed(cmd, pd.read_parquet(path))`, reading included. Each fit in a fresh process, repeats "
         "interleaved (ABAB); time and peak memory as min / median over repeats. Peak RSS is the fitting "
         "process's (for Dask: the client, which also runs the scheduler). Evaluations: the optimiser's "
         "count of likelihood evaluations in its EM and L-BFGS-B stages (the Newton stage's Hessian is not "
         "counted; dask-workers has no EM stage, so L-BFGS-B starts farther away). The machine is shared: "
         "the load average at the start of each size is given below." % COMMAND, "",
         "| rows | groups (schools / classes) | Parquet size | how | wall time s | peak RSS MB (client) | "
         "logLik | evaluations | time / in-memory 20M |", "|---|---|---|---|---|---|---|---|---|"]
    base = None
    if "20" in store and store["20"]["runs"].get("memory"):
        ok = [r["wall_s"] for r in store["20"]["runs"]["memory"] if "wall_s" in r]
        base = min(ok) if ok else None
    for key in sorted(store, key=int):
        e = store[key]
        rows = e["rows"]
        schools = rows // (ROWS_PER_CLASS * CLASSES_PER_SCHOOL)
        for how, runs in e["runs"].items():
            ok = [r for r in runs if "wall_s" in r]
            ratio = "%.2f" % (min(r["wall_s"] for r in ok) / base) if (ok and base) else "-"
            L.append("| %s | %s / %s | %.2f GB | %s | %s | %s | %s | %s | %s |" % (
                "{:,}".format(rows), "{:,}".format(schools), "{:,}".format(schools * CLASSES_PER_SCHOOL),
                e["data_bytes"] / 1e9, how, _cell(runs, "wall_s", "%.1f"), _cell(runs, "peak_mb", "%.0f"),
                _cell(runs, "llf", "%.2f") if ok else "failed", _cell(runs, "n_evaluations", "%d"), ratio))
    L.append("")
    L += _targets(store, base)
    runs = [(k, e) for k, e in store.items()]
    L.append("Runs: " + "; ".join("%sM at %s (load average %s)" % (k, e["run_at"], "/".join(map(str, e["loadavg"])))
                                  for k, e in runs) + ".")
    return "\n".join(L) + "\n"


def _best(store: dict, key: str, how: str, field: str):
    ok = [r[field] for r in store.get(key, {}).get("runs", {}).get(how, []) if field in r]
    return min(ok) if ok else None


def _targets(store: dict, base) -> list[str]:
    """The issue's targets, assessed from the stored runs."""
    peaks = {k: _best(store, k, "dask", "peak_mb") for k in sorted(store, key=int)}
    dask20 = _best(store, "20", "dask", "wall_s")
    per_m = {k: _best(store, k, "dask", "wall_s") / int(k) for k in sorted(store, key=int)
             if _best(store, k, "dask", "wall_s")}
    out = ["Targets:", ""]
    if peaks and all(v is not None for v in peaks.values()):
        out.append("* client peak memory under 1 GB at every size: %s (%s)" % (
            "met" if max(peaks.values()) < 1024 else "not met",
            ", ".join("%sM: %.0f MB" % (k, v) for k, v in peaks.items())))
    if dask20 and base:
        out.append("* Dask time within 1.5x of the in-memory fit of the same 20M rows (reading included): "
                   "%.2fx, %s" % (dask20 / base, "met" if dask20 <= 1.5 * base else "not met"))
    if len(per_m) > 1:
        keys = sorted(per_m, key=int)
        growth = per_m[keys[-1]] / per_m[keys[0]]
        out.append("* time linear in the rows: %s per million rows (%s), %s" % (
            ", ".join("%.2f s at %sM" % (per_m[k], k) for k in keys),
            "the largest size costs %.2fx per row of the smallest" % growth,
            "met" if growth <= 1.1 else "not met"))
    return out + [""]


BEGIN, END = "<!-- scale-out -->", "<!-- /scale-out -->"


def write_section(store: dict) -> None:
    """``benchmarks/scale_out.md`` (kept by ``run.py --write``) and this section of README.md."""
    text = render(store)
    SECTION.write_text(text)
    readme = README.read_text() if README.exists() else ""
    block = "%s\n%s%s\n" % (BEGIN, text, END)
    if BEGIN in readme and END in readme:
        readme = readme[: readme.index(BEGIN)] + block + readme[readme.index(END) + len(END) + 1:]
    else:
        readme = readme.rstrip() + "\n\n" + block
    README.write_text(readme)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[20, 100], help="millions of rows")
    p.add_argument("--data", type=Path, default=Path("/tmp/mixedlm_scale"))
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--timeout", type=float, default=3600.0)
    p.add_argument("--write-only", action="store_true")
    p.add_argument("--one", choices=["dask", "dask-workers", "memory"], help=argparse.SUPPRESS)
    p.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.one:
        print("RESULT " + json.dumps(fit_once(a.one, a.path, a.workers)), flush=True)
        return 0
    store = json.loads(RESULTS.read_text()) if a.write_only else run(a.sizes, a.data, a.repeats, a.workers, a.timeout)
    write_section(store)
    print(render(store))
    return 0


if __name__ == "__main__":
    sys.exit(main())
