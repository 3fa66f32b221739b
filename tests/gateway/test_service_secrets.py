"""install-service keeps secrets out of the service user's reach (issue 15): it owns the
gateway's own files under data_dir, never provisioning's broker/ (device secrets, OTA keys,
the CA key), and the unit makes those read-only or invisible."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.ops.service import UNIT_NAME, service_owned, unit_text
from protocols.config import load_config
from tests.gateway.test_service import _config, _directives


def _data_dir(tmp_path: Path) -> Path:
    var = tmp_path / "var"
    for rel, mode in (("buffer.sqlite", 0o640), ("lastseen.sqlite", 0o640),
                      ("broker/passwd", 0o644), ("broker/acl", 0o644),
                      ("broker/secrets/air-0001.json", 0o600),
                      ("broker/secrets/air-0001.ota", 0o600), ("broker/tls/ca.key", 0o600),
                      ("broker/tls/ca.crt", 0o644), ("broker/tls/server.key", 0o600)):
        p = var / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x")
        p.chmod(mode)
    return var


def test_the_service_user_gets_the_gateway_files_not_the_secrets(tmp_path: Path) -> None:
    var = _data_dir(tmp_path)
    cfg = load_config(_config(tmp_path))
    owned = {p.relative_to(var.resolve()).as_posix() for p in service_owned(cfg)}
    assert owned == {".", "buffer.sqlite", "lastseen.sqlite"}


def test_the_unit_hides_the_secrets(tmp_path: Path) -> None:
    path = _config(tmp_path)
    d = _directives(unit_text(load_config(path), path))
    var = (tmp_path / "var").resolve()
    assert d["ReadWritePaths"] == [str(var)]
    assert d["ReadOnlyPaths"] == [f"-{var}/broker"]
    hidden = d["InaccessiblePaths"][0].split()
    assert {f"-{var}/broker/secrets", f"-{var}/broker/tls/ca.key",
            f"-{var}/broker/tls/server.key"} <= set(hidden)


@pytest.mark.skipif(os.geteuid() != 0, reason="installing needs root")
def test_install_gives_data_dir_but_keeps_secrets_root_only(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    var = _data_dir(tmp_path)
    nobody = pwd.getpwnam("nobody")
    # an earlier install handed everything to the service user: take the secrets back
    os.chown(var / "broker/secrets/air-0001.ota", nobody.pw_uid, nobody.pw_gid)
    (var / "broker/secrets/air-0001.ota").chmod(0o644)
    cfg = _config(tmp_path)
    assert main(["gateway", "install-service", "--config", str(cfg), "--user", "nobody",
                 "--unit-dir", str(tmp_path / "units")]) == 0
    capsys.readouterr()
    assert var.stat().st_uid == nobody.pw_uid
    assert (var / "buffer.sqlite").stat().st_uid == nobody.pw_uid
    for rel in ("broker", "broker/secrets", "broker/secrets/air-0001.json",
                "broker/secrets/air-0001.ota", "broker/tls/ca.key"):
        assert (var / rel).stat().st_uid != nobody.pw_uid, rel
    assert (var / "broker/secrets/air-0001.ota").stat().st_mode & 0o077 == 0
    assert "InaccessiblePaths=" in (tmp_path / "units" / UNIT_NAME).read_text()
