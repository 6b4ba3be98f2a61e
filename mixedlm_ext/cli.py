"""Command line: ``python -m mixedlm_ext "mixed weight week || id:" --dataset pig``.

Prints Stata's iteration log (``--nolog`` silences it) and the results table.
Errors in the command, the formula or the data are printed as ``error: ...``
with exit status 2.
"""
from __future__ import annotations

import argparse
import sys

import pandas as pd

from .api import lmer, mixed
from .syntax.stata import parse_stata
from .datasets import list_datasets, load_dataset

_VERSION = "0.1.0"


def _parser() -> argparse.ArgumentParser:
    names = list_datasets()
    ap = argparse.ArgumentParser(
        prog="python -m mixedlm_ext",
        description="Fit a linear mixed model written as a Stata mixed command (or an lme4 formula) and "
                    "print Stata's table.",
        epilog="bundled datasets: %s" % ", ".join(names))
    ap.add_argument("command", nargs="?", help='Stata command, e.g. "mixed weight week || id:"')
    ap.add_argument("--lme4", metavar="FORMULA", help='an lme4 formula instead, e.g. "weight ~ week + (1|id)" '
                                                      "(REML, as lme4; add --ml for ML)")
    ap.add_argument("--ml", action="store_true", help="with --lme4: fit by ML")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", choices=names, metavar="NAME", help="a bundled dataset: %s" % ", ".join(names))
    src.add_argument("--data", metavar="CSV", help="a CSV file")
    ap.add_argument("--nolog", action="store_true", help="do not print the iteration log")
    ap.add_argument("--log", action="store_true", help=argparse.SUPPRESS)  # the default; kept for old scripts
    ap.add_argument("--version", action="version", version="mixedlm_ext %s" % _VERSION)
    return ap


def _read_csv(path: str) -> pd.DataFrame:
    try:
        df = pd.read_csv(path)
    except FileNotFoundError:
        raise ValueError("no such file: %s" % path) from None
    except pd.errors.EmptyDataError:
        raise ValueError("%s is empty" % path) from None
    except (pd.errors.ParserError, UnicodeDecodeError, IsADirectoryError, PermissionError) as exc:
        raise ValueError("cannot read %s as CSV: %s" % (path, exc)) from None
    if df.empty:
        raise ValueError("%s has no data rows" % path)
    return df


def main(argv=None) -> int:
    """Run the command line; returns the exit status."""
    ap = _parser()
    a = ap.parse_args(argv)
    if (a.command is None) == (a.lme4 is None):
        ap.error("give either a Stata command or --lme4 FORMULA")
    try:
        df = load_dataset(a.dataset) if a.dataset else _read_csv(a.data)
        if a.lme4 is not None:
            res = lmer(a.lme4, df, REML=not a.ml, log=not a.nolog)
        else:  # the command's own nolog (or log) option counts as Stata's does
            res = mixed(a.command, df, log=not a.nolog and parse_stata(a.command).option_dict.get("log", True))
    except (ValueError, NotImplementedError, KeyError, TypeError) as exc:
        print("error: %s" % (exc.args[0] if isinstance(exc, KeyError) and exc.args else exc), file=sys.stderr)
        return 2
    print(res.summary())
    return 0
