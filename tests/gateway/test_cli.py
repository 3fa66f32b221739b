"""`livinglab gateway` as a user runs it: one-line errors, --help, the rejected listing."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.buffer.core import DurableBuffer
from gateway.cli import main
from protocols import Rejection
from tests.gateway.helpers import write_config
from tests.servers import free_port


def cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], capture_output=True,
                          text=True, timeout=timeout)


def last_line(p: subprocess.CompletedProcess[str]) -> str:
    return p.stderr.strip().splitlines()[-1]


def inproc(capsys: pytest.CaptureFixture[str], *args: str) -> subprocess.CompletedProcess[str]:
    """The same entry point in this process (no interpreter start-up per call)."""
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse --help / usage errors
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, out.out, out.err)


def test_help_lists_both_forms(capsys: pytest.CaptureFixture[str]) -> None:
    p = inproc(capsys, "gateway", "--help")
    assert p.returncode == 0 and "--config" in p.stdout and "rejected" in p.stdout


def test_missing_config_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    p = inproc(capsys, "gateway", "--config", "/nonexistent/gw.toml")
    assert p.returncode == 2
    assert last_line(p).startswith("livinglab: config file /nonexistent/gw.toml not found")
    assert "Traceback" not in p.stderr


def test_bad_key_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "gw.toml"
    cfg.write_text('site = "x"\n[mqtt]\nprot = 1\n')
    p = inproc(capsys, "gateway", "--config", str(cfg))
    assert p.returncode == 2 and "mqtt.prot" in last_line(p) and "Traceback" not in p.stderr


def test_unreachable_broker_with_connect_timeout(tmp_path: Path) -> None:
    port = free_port()
    cfg = write_config(tmp_path / "gw.toml", mqtt_port=port, health_port=0,
                       store={"kind": "sqlite"})
    t0 = time.monotonic()
    p = cli("gateway", "--config", str(cfg), "--connect-timeout", "1")
    assert p.returncode == 2 and time.monotonic() - t0 < 15
    assert last_line(p).startswith(f"livinglab: cannot reach MQTT broker at 127.0.0.1:{port}")
    assert "is mosquitto running? check [mqtt] host/port" in last_line(p)


def test_health_port_busy(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        cfg = write_config(tmp_path / "gw.toml", mqtt_port=free_port(), health_port=busy,
                           store={"kind": "sqlite"})
        p = cli("gateway", "--config", str(cfg))
    assert p.returncode == 2
    assert last_line(p) == (f"livinglab: health port 127.0.0.1:{busy} is already in use "
                            "(another gateway running? set [gateway] health_port, 0 = off)")


def test_rejected_lists_newest_first(tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path / "gw.toml", mqtt_port=1883, health_port=0,
                       store={"kind": "sqlite"})
    p = inproc(capsys, "gateway", "rejected", "--config", str(cfg))
    assert p.returncode == 0 and p.stdout == "" and "no rejected messages" in p.stderr
    buf = DurableBuffer(tmp_path / "var" / "buffer.sqlite", 2**30)
    buf.quarantine([(Rejection("t/a", "air-0001", "not_json", "first"), b"x")])
    buf.quarantine([(Rejection("t/b", None, "bad_topic", "second"), b"y")])
    buf.close()
    p = inproc(capsys, "gateway", "rejected", "--config", str(cfg))
    lines = p.stdout.splitlines()
    assert p.returncode == 0 and len(lines) == 2
    assert "bad_topic" in lines[0] and "second" in lines[0] and " - " in lines[0]
    assert "air-0001" in lines[1] and "not_json" in lines[1]
    p = inproc(capsys, "gateway", "rejected", "--config", str(cfg), "--limit", "1", "--json")
    assert p.stdout.count("\n") == 1 and '"reason": "bad_topic"' in p.stdout


def test_registering_the_commands_imports_no_heavy_library() -> None:
    """`livinglab gateway` starts fast: pyarrow, starlette, cryptography and the store
    clients are imported by the commands that use them, not by the CLI's assembly."""
    code = ("import sys, gateway.cli as c; c.command_modules(); "
            "print(sorted(m for m in ('cryptography', 'pyarrow', 'starlette', 'uvicorn', "
            "'jinja2', 'influxdb_client', 'odata_query') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert res.stdout.strip() == "[]"


def test_the_gateway_process_imports_only_what_it_runs() -> None:
    """Issue 21's start-up (first point within 0.5 s of start): ``livinglab gateway``
    assembles only its own command, and the running gateway's modules import no other
    package's commands, no pydantic payload models (the retained status is plain JSON),
    no console and no heavy library. ``influxdb-client`` (the interfaces spec's client
    for ``kind = "influxdb2"``) is imported by that store alone, when it is the one."""
    heavy = ("cryptography", "pyarrow", "starlette", "uvicorn", "jinja2", "influxdb_client",
             "odata_query", "protocols.models", "protocols.schema", "gateway.console",
             "gateway.alerts", "gateway.opendata", "gateway.sensorthings", "devices",
             "provisioning", "aiomqtt")
    code = ("import sys, gateway.cli as c; c.build_parser(c.modules_for(['gateway'])); "
            "import gateway.app; from gateway.stores import make_store; "
            "from gateway.stores import influxdb1, sqlite; "
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert res.stdout.strip() == "[]"
