"""The house rule (issue 16): small modules with one job each, none over 400 lines.

Checked here so a module that outgrows its room fails CI instead of being found
at the next review (``protocols/validate.py`` reached 419 lines unnoticed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 400


def test_no_module_over_400_lines() -> None:
    files = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True,
                           text=True, check=True, timeout=30).stdout.split()
    assert files, "no tracked Python files: not a git checkout?"
    big = {f: n for f in files
           if (n := len((ROOT / f).read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert big == {}, f"split these by concern: {big}"
