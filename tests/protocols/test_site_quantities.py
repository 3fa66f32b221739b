"""Site-defined quantities: the registry, validation with it, the schema and docs views."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from protocols import BUILTIN, QuantityError, Registry, site_quantity, validate_telemetry
from protocols.config import parse_config
from protocols.errors import ConfigError
from protocols.reference import render_quantities
from protocols.schema import load_schema, site_telemetry_schema

SITE, T0 = "lab", 1_795_351_934.0
TOPIC = f"livinglab/v1/{SITE}/air-0001/telemetry"
SOUND = site_quantity("noise_level", "dBA", "sound", 20.0, 140.0)
NO2 = site_quantity("no2", "ppb", "air", 0.0, 2000.0)
REG = Registry([SOUND, NO2])


def payload(values: dict[str, object], sensor: str = "mix") -> bytes:
    return json.dumps({"v": 1, "device": "air-0001", "boot": 1, "seq": 0,
                       "samples": [{"sensor": sensor, "ts": T0, "values": values}]}).encode()


def check(values: dict[str, object], registry: Registry = REG
          ) -> tuple[dict[str, dict[str, float | str]], list[tuple[str, str]]]:
    out = validate_telemetry(TOPIC, payload(values), SITE, T0 + 1, "air-0001", registry)
    assert out.accepted is not None
    return {p.measurement: dict(p.fields) for p in out.accepted.points}, \
        [(r.reason, r.detail) for r in out.rejections]


def test_site_quantity_lands_in_its_own_domain_and_beside_builtins() -> None:
    points, rejected = check({"noise_level": 54.5, "no2": 21, "temperature": 21.5})
    assert points == {"sound": {"noise_level": 54.5}, "air": {"no2": 21.0, "temperature": 21.5}}
    assert rejected == []


def test_site_quantity_range_is_inclusive_and_checked_like_a_builtin() -> None:
    points, rejected = check({"noise_level": 140, "no2": 2000.5, "pressure": 5})
    assert points == {"sound": {"noise_level": 140.0}}
    assert rejected == [
        ("out_of_range", "samples[0] (mix) 'no2'=2000.5 outside 0..2000 ppb"),
        ("out_of_range", "samples[0] (mix) 'pressure'=5 outside 300..1100 hPa")]
    _, rejected = check({"noise_level": "loud", "db": 3})
    assert [r for r, _ in rejected] == ["mistyped_value", "unknown_quantity"]


def test_without_the_site_section_the_quantity_is_unknown() -> None:
    points, rejected = check({"noise_level": 54.5, "temperature": 20.0}, BUILTIN)
    assert points == {"air": {"temperature": 20.0}}
    assert rejected == [("unknown_quantity", "samples[0] (mix) 'noise_level'=54.5")]


def test_registry_api_for_console_and_exports() -> None:
    assert REG.unit_of("noise_level") == "dBA" and REG.domain_of("noise_level") == "sound"
    assert REG.unit_of("co2") == "ppm" and REG.domain_of("co2") == "air"
    assert REG.unit_of("nope") is None and REG.domain_of("nope") is None
    assert "no2" in REG and "no2" not in BUILTIN
    assert REG.domains == ("air", "light", "flow", "sound")
    assert [q.name for q in REG][-2:] == ["noise_level", "no2"]
    assert REG.is_site("no2") and not REG.is_site("co2")


@pytest.mark.parametrize(("args", "field", "why"), [
    (("temperature", "degC", "air", 0, 1), "", "built-in"),
    (("Noise", "dBA", "sound", 0, 1), "", "does not match"),
    (("n" * 33, "dBA", "sound", 0, 1), "", "does not match"),
    (("noise", "dBA", "device", 0, 1), "domain", "reserved"),
    (("noise", "dBA", "delivery", 0, 1), "domain", "reserved"),
    (("noise", "dBA", "gateway", 0, 1), "domain", "reserved"),
    (("noise", "dBA", "station", 0, 1), "domain", "reserved"),
    (("noise", "dBA", "rejections", 0, 1), "domain", "reserved"),
    (("noise", "dBA", "sound_info", 0, 1), "domain", "reserved"),
    (("noise", "dBA", "device_info", 0, 1), "domain", "reserved"),
    (("noise", "dBA", "So-und", 0, 1), "domain", "does not match"),
    (("noise", "", "sound", 0, 1), "unit", "non-empty"),
    (("noise", "dBA", "sound", 2, 1), "min", "above max"),
    (("noise", "dBA", "sound", 0, float("inf")), "min", "finite"),
])
def test_bad_site_quantities_are_refused(args: tuple[str, str, str, float, float], field: str,
                                         why: str) -> None:
    with pytest.raises(QuantityError, match=why) as exc:
        site_quantity(*args)
    assert exc.value.field == field


def _cfg(section: str) -> dict[str, object]:
    import tomllib
    return tomllib.loads(f'site = "lab"\n{section}')


def test_config_section_builds_the_registry(tmp_path: Path) -> None:
    cfg = parse_config(_cfg('[quantities.noise_level]\nunit = "dBA"\ndomain = "sound"\n'
                            "min = 20\nmax = 140.0\n"), tmp_path, env={})
    assert cfg.registry == Registry([SOUND])
    assert parse_config(_cfg(""), tmp_path, env={}).registry == BUILTIN


@pytest.mark.parametrize(("section", "message"), [
    ('[quantities.humidity]\nunit = "%"\ndomain = "air"\nmin = 0\nmax = 100\n',
     "config key 'quantities.humidity': 'humidity' is a built-in quantity"),
    ('[quantities.noise]\nunit = "dBA"\ndomain = "device"\nmin = 0\nmax = 1\n',
     "config key 'quantities.noise.domain': domain 'device' is reserved"),
    ('[quantities.noise]\nunit = "dBA"\ndomain = "sound"\nmin = 140\nmax = 20\n',
     "config key 'quantities.noise.min': min 140 is above max 20 (swap them)"),
    ('[quantities.noise]\nunit = "dBA"\ndomain = "sound"\nmin = 1\n',
     "config key 'quantities.noise.max': Field required"),
    ('[quantities.noise]\nunit = "dBA"\ndomain = "sound"\nmin = "1"\nmax = 2\n',
     "config key 'quantities.noise.min"),
])
def test_bad_quantity_configs_are_refused_naming_the_key(tmp_path: Path, section: str,
                                                         message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config(_cfg(section), tmp_path, env={})
    assert str(exc.value).startswith(message)
    assert "\n" not in str(exc.value)


def test_gateway_refuses_a_bad_quantity_at_start(tmp_path: Path) -> None:
    cfg = tmp_path / "gw.toml"
    cfg.write_text('site = "lab"\n[quantities.co2]\nunit = "ppm"\ndomain = "air"\n'
                   "min = 0\nmax = 1\n")
    proc = subprocess.run([sys.executable, "-m", "gateway.cli", "gateway", "--config", str(cfg)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith(
        "livinglab: config key 'quantities.co2': 'co2' is a built-in quantity")
    assert "Traceback" not in proc.stderr


def test_schema_stays_builtin_and_the_site_view_adds_its_quantities() -> None:
    doc = json.loads(payload({"noise_level": 54.5, "temperature": 21.5}))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, load_schema("telemetry"))
    site = site_telemetry_schema(REG)
    jsonschema.validate(doc, site)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(json.loads(payload({"noise_level": 141})), site)
    assert "noise_level" not in json.dumps(load_schema("telemetry"))  # the copy is untouched


def test_reference_table_marks_site_quantities() -> None:
    assert "site-defined" not in "\n".join(render_quantities(BUILTIN))
    lines = render_quantities(REG)
    assert lines[0].endswith("| origin |")
    assert "| `noise_level` | dBA | `sound` | 20 | 140 | site-defined |" in lines
    assert "| `co2` | ppm | `air` | 0 | 40000 | contract |" in lines
