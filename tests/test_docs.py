"""Docs that run: every code block of README.md and docs/*.md is executed, and every output
shown must equal a fresh run (``python docs/run_docs.py --write`` regenerates them)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FILES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_doc_code_runs_and_shows_its_output(path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, str(ROOT / "docs" / "run_docs.py"), str(path)], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_markdown_file_is_checked():
    assert {p.name for p in FILES} >= {"README.md", "index.md", "syntax.md", "getting_started.md"}
