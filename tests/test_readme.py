"""The README tells the truth where a machine can check it: every command it lists
answers ``--help``, and every file it links to exists."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
DOCS = sorted((REPO / "docs").glob("*.md"))


def documented_commands(text: str) -> list[tuple[str, ...]]:
    """``livinglab report delivery\\|gaps --config F`` -> ("report", "delivery"), and each
    alternative of a ``a\\|b`` word."""
    out: list[tuple[str, ...]] = []
    for line in text.splitlines():
        m = re.match(r"^\| `livinglab ([^`]*)`", line)
        if not m:
            continue
        words: list[list[str]] = []
        for tok in m.group(1).split():
            alts = tok.split("\\|")
            if not all(re.fullmatch(r"[a-z][a-z-]*", a) for a in alts):
                break
            words.append(alts)
        cmd: tuple[str, ...] = ()
        for alts in words:
            if len(alts) > 1:
                out.extend((*cmd, a) for a in alts)
                break
            cmd = (*cmd, alts[0])
        else:
            out.append(cmd)
    return sorted(set(out))


def test_the_parser_finds_the_commands() -> None:
    cmds = documented_commands(README)
    assert ("demo",) in cmds and ("gateway",) in cmds and ("broker", "certs") in cmds
    assert ("report", "gaps") in cmds and len(cmds) >= 20


@pytest.mark.parametrize("cmd", documented_commands(README), ids=" ".join)
def test_each_documented_command_answers_help(cmd: tuple[str, ...]) -> None:
    res = subprocess.run([sys.executable, "-m", "gateway.cli", *cmd, "--help"],
                         capture_output=True, text=True, timeout=60, cwd=REPO)
    assert res.returncode == 0, f"livinglab {' '.join(cmd)} --help: {res.stderr[-500:]}"
    assert "usage: livinglab" in res.stdout


def _links(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    return [t for t in targets if not re.match(r"^[a-z]+:", t) and not t.startswith("#")]


@pytest.mark.parametrize("doc", [REPO / "README.md", *DOCS], ids=lambda p: p.name)
def test_each_linked_file_exists(doc: Path) -> None:
    missing = [t for t in _links(doc)
               if not (doc.parent / t.split("#", 1)[0]).exists()]
    assert not missing, f"{doc.name} links to missing files: {missing}"
