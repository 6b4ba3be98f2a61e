"""Command line: ``python -m mixedlm_ext "mixed weight week || id:" --dataset pig``."""
from __future__ import annotations

import argparse
import sys

import pandas as pd

from .api import mixed
from .datasets import load_dataset


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mixedlm_ext", description="Fit a Stata-style mixed model and print the table.")
    ap.add_argument("command", help='Stata command, e.g. "mixed weight week || id:"')
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", help="a bundled dataset: pig, productivity, ovary, sleepstudy, penicillin, pastes")
    src.add_argument("--data", help="a CSV file")
    ap.add_argument("--log", action="store_true", help="print the iteration log")
    a = ap.parse_args(argv)
    df = load_dataset(a.dataset) if a.dataset else pd.read_csv(a.data)
    try:
        res = mixed(a.command, df, log=a.log)
    except (ValueError, NotImplementedError) as exc:
        print("error: %s" % exc, file=sys.stderr)
        return 2
    print(res.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
