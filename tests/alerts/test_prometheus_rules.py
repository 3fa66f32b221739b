"""The shipped Prometheus rule file: valid (promtool check), and right (promtool test)."""

from __future__ import annotations

import shutil
import subprocess
from importlib import resources
from pathlib import Path

HERE = Path(__file__).parent


def promtool() -> str:
    exe = shutil.which("promtool")
    assert exe, "promtool missing (apt-get install prometheus; scripts/test does)"
    return exe


def rule_file() -> Path:
    path = Path(str(resources.files("gateway.alerts") / "prometheus-rules.yml"))
    assert path.is_file()
    return path


def test_rules_check() -> None:
    res = subprocess.run([promtool(), "check", "rules", str(rule_file())], capture_output=True,
                         text=True, timeout=60, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS: 7 rules found" in res.stdout


def test_rules_unit_tests() -> None:
    res = subprocess.run([promtool(), "test", "rules", "prometheus-rules.test.yml"], cwd=HERE,
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS" in res.stdout


def test_every_runbook_link_has_a_section() -> None:
    doc = (HERE.parents[1] / "docs" / "alerts.md").read_text(encoding="utf-8")
    anchors = {line.lstrip("#").strip().lower() for line in doc.splitlines()
               if line.startswith("#")}
    for line in rule_file().read_text(encoding="utf-8").splitlines():
        if "runbook_url" in line and "#" in line:
            assert line.split("#")[1].rstrip("\"'") in anchors, line
    from gateway.alerts import RULES

    for name in RULES:
        assert name.lower() in anchors, name
