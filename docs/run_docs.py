"""Run the code blocks of README.md and docs/*.md; check or rewrite the outputs they show.

Conventions (``tests/test_docs.py`` checks them):

* ```` ```python ```` blocks run in order, in one namespace per file (in a
  temporary working directory, pandas display width 100, matplotlib's Agg
  backend).  What a block prints is its output; the value of a final bare
  expression is printed as the interpreter shows it; warnings are shown as
  ``Category: message`` lines.
* ```` ```python raises ```` blocks must raise; the output is
  ``ExceptionType: message``.
* A ```` ```text ```` block right after a python block (blank lines between
  allowed) is that block's output, written by this script.  A block with
  output must have one; a block without output must not.
* ```` ```sh ```` blocks are shell commands: the ``python -m mixedlm_ext``
  lines run (exit status 0 checked), the others (``pip``, ``pytest``) do not.
* ```` ```none ```` blocks are not code (grammars, trees).

Every fence has one of these info strings.

Usage, from the repository root::

    python docs/run_docs.py            # check every file (exit 1 on a difference)
    python docs/run_docs.py --write    # rewrite the output blocks from a fresh run
    python docs/run_docs.py docs/syntax.md [--write]
"""
from __future__ import annotations

import ast
import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
import tempfile
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
FILES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
LANGUAGES = ("python", "text", "sh", "none")
FENCE = re.compile(r"^```(.*)$")


@dataclass
class Block:
    """A fenced block: its info string, its content and the lines it spans."""

    info: str
    code: str
    start: int  # line index of the opening fence
    end: int  # line index of the closing fence

    @property
    def lang(self) -> str:
        return self.info.split()[0] if self.info.strip() else ""


def blocks(lines: list[str]) -> list[Block]:
    """The fenced blocks of a Markdown file (given as lines)."""
    out, start, info = [], None, ""
    for i, line in enumerate(lines):
        m = FENCE.match(line)
        if not m:
            continue
        if start is None:
            start, info = i, m.group(1).strip()
        else:
            out.append(Block(info, "\n".join(lines[start + 1:i]), start, i))
            start = None
    if start is not None:
        raise ValueError("unclosed code fence at line %d" % (start + 1))
    return out


def output_block(lines: list[str], bs: list[Block], k: int) -> Optional[Block]:
    """The text block right after python block ``k`` (only blank lines between), if any."""
    if k + 1 < len(bs) and bs[k + 1].lang == "text":
        between = lines[bs[k].end + 1:bs[k + 1].start]
        if all(not line.strip() for line in between):
            return bs[k + 1]
    return None


def _run_python(code: str, env: dict, raises: bool) -> str:
    """Run one block; its printed output (and warnings, and a final expression's value)."""
    buf = io.StringIO()
    tree = ast.parse(code)
    last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    body = ast.Module(tree.body[:-1] if last is not None else tree.body, type_ignores=[])
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(buf):
        warnings.simplefilter("always")
        try:
            exec(compile(body, "<doc>", "exec"), env)
            if last is not None:
                value = eval(compile(ast.Expression(last.value), "<doc>", "eval"), env)
                if value is not None:
                    print(repr(value))
        except Exception as exc:  # noqa: BLE001 - the doc shows it, or the check fails
            if not raises:
                raise
            print("%s: %s" % (type(exc).__name__, exc))
        else:
            if raises:
                raise AssertionError("a 'python raises' block did not raise:\n%s" % code)
    shown = ["%s: %s" % (w.category.__name__, w.message) for w in caught]
    text = buf.getvalue().rstrip("\n")
    return "\n".join(([text] if text else []) + list(dict.fromkeys(shown)))


def _run_sh(code: str) -> None:
    for line in code.splitlines():
        line = line.strip()
        if not line.startswith("python -m mixedlm_ext"):
            continue
        args = shlex.split(line)[1:]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        done = subprocess.run([sys.executable] + args, capture_output=True, text=True, env=env, cwd=ROOT)
        if done.returncode != 0:
            raise AssertionError("%s exited with %d:\n%s" % (line, done.returncode, done.stderr))


def run(path: Path) -> tuple[list[str], list[tuple[int, str]]]:
    """The file's lines and, per python block (index), its output."""
    lines = path.read_text(encoding="utf-8").splitlines()
    bs = blocks(lines)
    bad = [b for b in bs if b.lang not in LANGUAGES]
    if bad:
        raise AssertionError("%s line %d: a fence needs one of %s, got %r"
                             % (path.name, bad[0].start + 1, ", ".join(LANGUAGES), bad[0].info))
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    pd.set_option("display.width", 100)
    env: dict = {"__name__": "__doc__"}
    outputs = []
    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            for k, b in enumerate(bs):
                if b.lang == "python":
                    outputs.append((k, _run_python(b.code, env, "raises" in b.info.split()[1:])))
                elif b.lang == "sh":
                    _run_sh(b.code)
        finally:
            os.chdir(cwd)
    return lines, outputs


def differences(path: Path) -> list[str]:
    """What differs between the outputs shown in ``path`` and a fresh run."""
    lines, outputs = run(path)
    bs = blocks(lines)
    out = []
    for k, text in outputs:
        shown = output_block(lines, bs, k)
        where = "%s line %d" % (path.relative_to(ROOT), bs[k].start + 1)
        if shown is None and text:
            out.append("%s: the block prints output but no ```text block follows it:\n%s" % (where, text))
        elif shown is not None and shown.code != text:
            out.append("%s: the output shown differs from a fresh run:\n--- shown\n%s\n--- run\n%s"
                       % (where, shown.code, text))
    return out


def write(path: Path) -> None:
    """Rewrite the output blocks of ``path`` from a fresh run (adding or removing them)."""
    lines, outputs = run(path)
    bs = blocks(lines)
    edits = []  # (start, end, replacement lines), applied bottom-up
    for k, text in outputs:
        shown = output_block(lines, bs, k)
        new = ["```text"] + text.splitlines() + ["```"] if text else []
        if shown is not None:
            edits.append((shown.start, shown.end + 1, new))
        elif new:
            edits.append((bs[k].end + 1, bs[k].end + 1, [""] + new))
    for start, end, new in sorted(edits, reverse=True):
        lines[start:end] = new
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str]) -> int:
    files = [Path(a).resolve() for a in argv if not a.startswith("--")] or FILES
    status = 0
    for f in files:
        try:
            if "--write" in argv:
                write(f)
                print("wrote", f.relative_to(ROOT))
                continue
            diffs = differences(f)
        except Exception:  # noqa: BLE001 - report every file
            print("%s: the code fails:\n%s" % (f.relative_to(ROOT), traceback.format_exc()))
            status = 1
            continue
        for d in diffs:
            print(d)
        status = status or int(bool(diffs))
    return status


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main(sys.argv[1:]))
