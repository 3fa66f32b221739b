"""The README's first command is the install path scripts/test (and so CI) uses."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_first_command_uses_the_venv_scripts_test_builds() -> None:
    readme = (ROOT / "README.md").read_text()
    first = re.search(r"```sh\n(.*?)\n", readme, re.S)
    assert first is not None
    cmd = first.group(1)
    # Debian 12 / Raspberry Pi OS refuse a bare `pip install` (PEP 668)
    assert cmd.startswith("python3 -m venv .venv && .venv/bin/pip install -e . && ")
    assert ".venv/bin/livinglab demo" in cmd
    script = (ROOT / "scripts" / "test").read_text()
    assert 'VENV=${LIVINGLAB_VENV:-.venv}' in script
    assert 'python3 -m venv --clear "$VENV"' in script
    assert '"$VENV/bin/pip" install -q -e ".[test]"' in script
    assert "python3-venv" in script.split("APT_PKGS=(", 1)[1].split(")", 1)[0]
