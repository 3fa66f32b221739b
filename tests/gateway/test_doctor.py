"""``livinglab doctor`` against real servers: Mosquitto at its defaults (warns), the
shipped gateway/ops/mosquitto.conf (passes), a stopped store (fails, exit 1)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main
from gateway.ops.doctor import (
    CHECKS,
    Finding,
    Host,
    check_session,
    run_checks,
    session_finding,
    space_finding,
)
from gateway.ops.mosquitto_conf import read_conf
from tests.servers import Influxd, Mosquitto, free_port, running

SHIPPED = Path(__file__).resolve().parents[2] / "gateway" / "ops" / "mosquitto.conf"
MIB = 1024 * 1024


def _config(tmp_path: Path, mqtt_port: int, store: dict[str, Any] | None = None,
            mqtt: dict[str, Any] | None = None) -> Path:
    store = store or {"kind": "sqlite", "path": str(tmp_path / "readings.sqlite")}
    mq = {"host": "127.0.0.1", "port": mqtt_port, **(mqtt or {})}

    def table(d: dict[str, Any]) -> str:
        return "\n".join(f"{k} = {json.dumps(v)}" for k, v in d.items())

    cfg = tmp_path / "gw.toml"
    cfg.write_text(f'site = "lab"\n[gateway]\nid = "gw-doc"\ndata_dir = "{tmp_path / "var"}"\n'
                   f"[mqtt]\n{table(mq)}\n[store]\n{table(store)}\n")
    return cfg


def _doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, str]]:
    """Exit code and {first words of the line: level}; asserts the line format."""
    rc = main(["doctor", "--timeout", "3", *args])
    lines = capsys.readouterr().out.splitlines()
    out = {}
    for line in lines:
        level, _, what = line.partition(" ")
        assert level in ("ok", "warn", "fail"), line
        if level != "ok":
            assert what.endswith(")"), line  # every warn/fail names its fix
        out[" ".join(what.split()[:2])] = level
    return rc, out


# -- pure parts ------------------------------------------------------------------------

def test_mosquitto_conf_follows_include_dir_and_knows_the_defaults(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "b.conf").write_text("autosave_interval 60\n")
    (tmp_path / "conf.d" / "a.conf").write_text("autosave_interval 5\npersistence true\n")
    (tmp_path / "conf.d" / "ignored.txt").write_text("persistence false\n")
    main_conf = tmp_path / "mosquitto.conf"
    main_conf.write_text(f"# comment\npersistence false\ninclude_dir {tmp_path / 'conf.d'}\n")
    conf = read_conf(main_conf)
    assert conf.flag("persistence") and conf.number("autosave_interval") == 60  # b after a
    assert conf.where("autosave_interval") == f"{tmp_path / 'conf.d' / 'b.conf'}:1"
    assert conf.number("max_queued_messages") == 1000 and conf.where("max_queued_messages") \
        == "default"


@pytest.mark.parametrize(("free", "now", "level"), [
    (600 * MIB, 0, "ok"), (400 * MIB, 200 * MIB, "ok"), (400 * MIB, 0, "warn"),
    (8 * MIB, 0, "fail")])
def test_space_finding(free: int, now: int, level: str) -> None:
    assert space_finding(Path("/d"), free, now, 512 * MIB).level == level


@pytest.mark.parametrize(("present", "granted", "level"), [
    (True, None, "ok"), (True, 604800, "ok"), (True, 60, "warn"), (False, None, "fail")])
def test_session_finding(present: bool, granted: int | None, level: str) -> None:
    assert session_finding(present, granted, 604800).level == level


def test_a_check_is_one_function_away() -> None:
    def check_always(host: Host) -> Finding:
        return Finding("warn", "something", "do this")

    host = Host.load(Path("/nonexistent/gw.toml"))
    findings = run_checks(host, [*CHECKS, check_always])
    # a config that does not load: one fail line, nothing that needs it, the new check last
    assert findings[0].level == "fail" and findings[0].what.startswith("config ")
    assert not [f for f in findings if f.what.startswith(("broker", "store", "data_dir"))]
    assert findings[-1].line() == "warn something (do this)"


def test_bad_config_fails_with_one_line(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "gw.toml"
    cfg.write_text('site = "lab"\n[mqtt]\nprot = 1\n')
    rc, out = _doctor(capsys, "--config", str(cfg))
    assert rc == 1 and out["config " + str(cfg) + ":"] == "fail"


def test_unreachable_broker_fails_and_skips_the_session_check(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path, free_port())
    rc, out = _doctor(capsys, "--config", str(cfg), "--mosquitto-conf", str(SHIPPED))
    assert rc == 1 and out["broker 127.0.0.1:" + cfg.read_text().split("port = ")[1].split()[0]]\
        == "fail"
    assert not any(k.startswith("broker keeps") or k.startswith("broker forgot") for k in out)


# -- real servers ----------------------------------------------------------------------

@pytest.fixture
def default_mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    with running(Mosquitto(tmp_path / "mosquitto-defaults", defaults=True)) as server:
        yield server


def test_default_config_mosquitto_warns(tmp_path: Path, default_mosquitto: Mosquitto,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path, default_mosquitto.port)
    rc, out = _doctor(capsys, "--config", str(cfg), "--mosquitto-conf",
                      str(default_mosquitto.dir / "mosquitto.conf"))
    assert out["broker 127.0.0.1:" + str(default_mosquitto.port)] == "ok"
    assert out["broker keeps"] == "ok"
    assert out["mosquitto persistence"] == "warn"
    assert out["mosquitto autosave_interval"] == "warn"
    assert out["mosquitto max_queued_messages"] == "warn"
    assert out["store sqlite"] == "ok" and out["data_dir " + str(tmp_path / "var")] == "ok"
    assert rc == 0  # warnings only


def test_shipped_mosquitto_conf_passes(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    # the shipped file, run by a real mosquitto (on a free loopback port), then checked
    lines = [ln for ln in SHIPPED.read_text().splitlines()
             if not ln.startswith(("listener", "allow_anonymous", "password_file",
                                   "acl_file"))]
    d = tmp_path / "mosquitto-shipped"
    extra = (*lines, f"persistence_location {d}/", "user root")
    with running(Mosquitto(d, defaults=True, extra=extra)) as broker:
        cfg = _config(tmp_path, broker.port)
        rc, out = _doctor(capsys, "--config", str(cfg), "--mosquitto-conf", str(SHIPPED))
    assert out["mosquitto persistence"] == "ok"
    assert out["mosquitto autosaves"] == "ok"
    assert out["mosquitto queues"] == "ok"
    assert out["broker keeps"] == "ok"
    assert rc == 0


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_session_check_both_protocols(tmp_path: Path, mosquitto: Mosquitto,
                                      protocol: str) -> None:
    host = Host.load(_config(tmp_path, mosquitto.port, mqtt={"protocol": protocol}))
    host.facts["broker"] = True
    finding = check_session(host)
    assert finding is not None and finding.level == "ok", finding


@pytest.mark.slow
def test_stopped_store_fails_with_exit_1(tmp_path: Path, mosquitto: Mosquitto,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    with running(Influxd(tmp_path / "influxd")) as influxd:
        cfg = _config(tmp_path, mosquitto.port, store={"kind": "influxdb1", "url": influxd.url,
                                                       "database": "lab"})
        rc, out = _doctor(capsys, "--config", str(cfg), "--mosquitto-conf", str(SHIPPED))
        assert out["store influxdb1"] == "ok" and rc == 0
        probe = influxd.points("lab", "livinglab_doctor")  # what the probe wrote, documented
        assert len(probe) == 1 and probe[0]["gateway"] == "gw-doc"
    rc, out = _doctor(capsys, "--config", str(cfg), "--mosquitto-conf", str(SHIPPED))
    assert out["store influxdb1"] == "fail" and rc == 1


def test_certificate_expiry_is_checked(tmp_path: Path) -> None:
    """A broker certificate ten days from expiry warns; an expired CA for the store fails;
    a host without TLS has no certificate line at all."""
    import datetime as dt

    from cryptography.hazmat.primitives import serialization

    from gateway.ops.doctor import check_certificates
    from provisioning import tls

    now = dt.datetime.now(dt.UTC)
    ca_key, ca = tls.make_ca("lab", now=now)
    _, server = tls.make_server(ca_key, ca, ["broker.lab"], 10, now=now)
    tls_dir = tmp_path / "var" / "broker" / "tls"
    tls_dir.mkdir(parents=True)
    (tls_dir / "server.crt").write_bytes(server.public_bytes(serialization.Encoding.PEM))
    (tls_dir / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cfg = _config(tmp_path, 1883, mqtt={"tls": True})
    finding = check_certificates(Host.load(cfg))
    assert finding is not None and finding.level == "warn"
    assert "server.crt expires in" in finding.what and "broker certs" in finding.fix

    _, old = tls.make_server(ca_key, ca, ["influx.lab"], 1, now=now - dt.timedelta(days=5))
    (tmp_path / "store-ca.crt").write_bytes(old.public_bytes(serialization.Encoding.PEM))
    cfg = _config(tmp_path, 1883, mqtt={"tls": True},
                  store={"kind": "influxdb1", "url": "https://127.0.0.1:8086",
                         "ca_file": str(tmp_path / "store-ca.crt")})
    finding = check_certificates(Host.load(cfg))
    assert finding is not None and finding.level == "fail" and "expired on" in finding.what

    (tls_dir / "server.crt").unlink()
    assert check_certificates(Host.load(_config(tmp_path, 1883))) is None


def test_anonymous_access_over_a_network_listener_fails(tmp_path: Path, mosquitto: Mosquitto,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    """The test broker listens on 127.0.0.1 with allow_anonymous true: fine on loopback,
    a fail once its config shows a network listener (issue 15). The shipped config
    refuses anonymous clients."""
    from gateway.ops.doctor import check_anonymous

    host = Host.load(_config(tmp_path, mosquitto.port),
                     mosquitto_conf=mosquitto.dir / "mosquitto.conf")
    host.facts["broker"] = True
    f = check_anonymous(host)
    assert f is not None and f.level == "ok" and "loopback only" in f.what, f
    open_conf = tmp_path / "open.conf"
    open_conf.write_text("listener 1883\nlistener 8883 127.0.0.1\nallow_anonymous true\n")
    host = Host.load(_config(tmp_path, mosquitto.port), mosquitto_conf=open_conf)
    host.facts["broker"] = True
    f = check_anonymous(host)
    assert f is not None and f.level == "fail" and "listener 1883" in f.what, f
    rc, out = _doctor(capsys, "--config", str(_config(tmp_path, mosquitto.port)),
                      "--mosquitto-conf", str(open_conf))
    assert out["mosquitto allows"] == "fail" and rc == 1
    shipped = read_conf(SHIPPED)
    assert not shipped.flag("allow_anonymous") and shipped.network_listeners() == ["1883"]


def test_refused_anonymous_is_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.ops.doctor import check_anonymous

    d = tmp_path / "closed"
    d.mkdir()
    (d / "passwd").write_text("")
    with running(Mosquitto(d, allow_anonymous=False,
                           extra=(f"password_file {d / 'passwd'}",))) as broker:
        host = Host.load(_config(tmp_path, broker.port))
        host.facts["broker"] = True
        f = check_anonymous(host)
    assert f is not None and f.level == "ok" and "refuses" in f.what, f
