"""The command's edges (help, one-line errors) and the option syntax around the grammar."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.sensorthings.errors import ApiError
from gateway.sensorthings.options import describe, parse_options, split_top


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway.cli", "sensorthings", *args],
                          capture_output=True, text=True, timeout=60)


def test_help() -> None:
    r = run("--help")
    assert r.returncode == 0 and "/v1.1" in r.stdout


def test_missing_config_is_one_line(tmp_path: Path) -> None:
    r = run("--config", str(tmp_path / "none.toml"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("livinglab: config file")


def test_unreadable_store_is_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[store]\nkind = "sqlite"\npath = "{tmp_path / "absent.sqlite"}"\n')
    r = run("--config", str(cfg), "--port", "0")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "the store cannot be read" in r.stderr.strip().splitlines()[-1]


def test_port_in_use_is_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[store]\nkind = "sqlite"\npath = "{tmp_path / "r.sqlite"}"\n')
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        r = run("--config", str(cfg), "--port", str(s.getsockname()[1]))
    assert r.returncode == 2 and "already in use" in r.stderr.strip().splitlines()[-1]


def test_split_honours_quotes_and_parentheses() -> None:
    assert split_top("a($x=1,2;$y='a,b'),b", ",") == ["a($x=1,2;$y='a,b')", "b"]
    with pytest.raises(ApiError):
        split_top("a(b", ",")


def test_nested_expand_options() -> None:
    o = parse_options({"$expand": "Datastreams($select=id;$top=2;$expand=Observations("
                                  "$top=1;$orderby=phenomenonTime desc;$filter=result gt 1)),"
                                  "Datastreams/Sensor,Locations", "$top": "5000"})
    d = describe(o)
    assert d["top"] == 1000
    ds = d["expand"]["Datastreams"]
    assert ds["select"] == ["id"] and ds["top"] == 2
    assert set(ds["expand"]) == {"Observations", "Sensor"}
    assert ds["expand"]["Observations"]["orderby"] == [("phenomenonTime", True)]
    assert ds["expand"]["Observations"]["filter"] is True
    assert "Locations" in d["expand"]


@pytest.mark.parametrize("params", [
    {"$filter": "result gt"}, {"$filter": "result gt 1 and"}, {"$top": "x"},
    {"$count": "yes"}, {"$expand": "Datastreams($top)"}, {"$select": "a b"},
    {"$orderby": "name sideways"},
])
def test_bad_options_are_400(params: dict[str, str]) -> None:
    with pytest.raises(ApiError) as e:
        parse_options(params)
    assert e.value.status == 400
