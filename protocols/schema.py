"""JSON Schema of every payload, generated from :mod:`protocols.models`.

The committed copies in ``protocols/schema/*.json`` are what firmware tests and
data teams read; ``python -m protocols.schema`` rewrites them after a model
change, and a test fails while they are stale.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .models import DeviceConfig, GatewayStatus, RejectionReport, Status, Telemetry
from .quantities import Registry

SCHEMA_DIR = Path(__file__).with_name("schema")
_DIALECT = "https://json-schema.org/draft/2020-12/schema"

MODELS: dict[str, type[BaseModel]] = {
    "telemetry": Telemetry,
    "status": Status,
    "device-config": DeviceConfig,
    "gateway-status": GatewayStatus,
    "rejection-report": RejectionReport,
}


def generate_schemas() -> dict[str, dict[str, Any]]:
    """One JSON Schema (draft 2020-12) per payload, keyed by the file's stem."""
    out: dict[str, dict[str, Any]] = {}
    for name, model in MODELS.items():
        schema = model.model_json_schema()
        out[name] = {"$schema": _DIALECT, "$id": f"livinglab/v1/{name}.json", **schema}
    return out


def site_telemetry_schema(registry: Registry) -> dict[str, Any]:
    """The telemetry schema a site's devices conform to: the committed one (built-ins
    only, unchanged) with the site's ``[quantities.NAME]`` added to ``values``."""
    schema = copy.deepcopy(load_schema("telemetry"))
    schema["$id"] = "livinglab/v1/telemetry-site.json"
    props = schema["$defs"]["Sample"]["properties"]["values"]["properties"]
    for q in registry.site:
        props[q.name] = {"description": f"{q.unit}, measurement {q.domain!r} (site-defined)",
                         "maximum": q.max, "minimum": q.min, "type": "number"}
    return schema


def load_schema(name: str) -> dict[str, Any]:
    """The committed schema ``name`` (e.g. ``"telemetry"``), for checks with ``jsonschema``."""
    if name not in MODELS:
        raise KeyError(f"no schema {name!r}; known: {', '.join(MODELS)}")
    doc: dict[str, Any] = json.loads((SCHEMA_DIR / f"{name}.json").read_text(encoding="utf-8"))
    return doc


def render(schema: dict[str, Any]) -> str:
    """The exact text of a committed schema file (stable, so diffs stay readable)."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write ``{name}.json`` for every payload into ``directory``; returns the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, schema in generate_schemas().items():
        path = directory / f"{name}.json"
        path.write_text(render(schema), encoding="utf-8")
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    """``python -m protocols.schema [DIR]``: regenerate the committed schema files."""
    args = sys.argv[1:] if argv is None else argv
    for path in write_schemas(Path(args[0]) if args else SCHEMA_DIR):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
