"""The generated part of ``docs/wire-contract-reference.md``: tables from the code.

Reasons come from :data:`protocols.validate.REASONS`, quantities from
:data:`protocols.quantities.QUANTITIES`, payload fields from the JSON Schemas, so
the reference cannot drift from what the gateway does. ``python -m
protocols.reference [DOC]`` rewrites the block between the markers; a test fails
while it is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from .quantities import BUILTIN, Registry
from .schema import generate_schemas
from .validate import REASONS

BEGIN = "<!-- BEGIN GENERATED: python -m protocols.reference -->"
END = "<!-- END GENERATED -->"
DOC = Path(__file__).resolve().parents[1] / "docs" / "wire-contract-reference.md"

_SCOPE = {
    "too_large": "message", "not_json": "message", "not_object": "message",
    "missing_field": "message", "mistyped_field": "message", "invalid_field": "message",
    "bad_version": "message", "device_mismatch": "message", "bad_sample": "message",
    "ts_in_future": "sample", "ts_too_old": "sample", "unknown_quantity": "value",
    "mistyped_value": "value", "not_finite": "value", "out_of_range": "value",
    "bad_topic": "message", "too_many_rejections": "the rest of a message's samples/values",
    "internal_error": "message", "port_not_allowed": "message",
    "unencodable": "message (quarantine only)", "store_rejected": "point (quarantine only)",
}
_KEYS = ("minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems",
         "minProperties", "maxProperties", "pattern", "const", "enum")


def _type(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return str(prop["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in prop:
        return " or ".join(_type(p) for p in prop["anyOf"])
    t = prop.get("type", "any")
    if t == "array" and "items" in prop:
        return f"array of {_type(prop['items'])}"
    return str(t)


def _rule(prop: dict[str, Any]) -> str:
    parts = [f"{k} `{prop[k]}`" for k in _KEYS if k in prop]
    for alt in prop.get("anyOf", ()):
        parts += [f"{k} `{alt[k]}`" for k in _KEYS if k in alt]
    return "; ".join(parts)


def _fields(title: str, schema: dict[str, Any]) -> list[str]:
    req = set(schema.get("required", ()))
    out = [f"#### {title}", ""]
    if "additionalProperties" in schema and schema["additionalProperties"] is False:
        out.append("Unknown keys: refused.")
    else:
        out.append("Unknown keys: ignored.")
    if "oneOf" in schema:
        alts = " / ".join(",".join(a["required"]) for a in schema["oneOf"])
        out.append(f"Exactly one of: {alts}.")
    out += ["", "| field | type | required | rule | description |", "|---|---|---|---|---|"]
    for name, prop in schema.get("properties", {}).items():
        desc = str(prop.get("description", "")).replace("\n", " ")
        rule = "see the quantity table" if name == "values" else _rule(prop)
        out.append(f"| `{name}` | {_type(prop)} | {'yes' if name in req else 'no'} | "
                   f"{rule} | {desc} |")
    return out + [""]


def render_quantities(registry: Registry = BUILTIN) -> list[str]:
    """The quantity table of ``registry``: the built-ins, then the site's additions."""
    lines = ["| quantity | unit | measurement | min | max |", "|---|---|---|---|---|"]
    lines += [f"| `{q.name}` | {q.unit} | `{q.domain}` | {q.min:g} | {q.max:g} |"
              + (" site-defined |" if registry.is_site(q.name) else "")
              for q in registry]
    if registry.site:
        lines[0] += " origin |"
        lines[1] += "---|"
        lines[2:] = [ln if ln.endswith("site-defined |") else ln + " contract |"
                     for ln in lines[2:]]
    return lines


def render_tables() -> str:
    """The generated block (without markers)."""
    lines = ["### Rejection reasons", "",
             "| reason | rejects one | when |", "|---|---|---|"]
    lines += [f"| `{r}` | {_SCOPE[r]} | {why} |" for r, why in REASONS.items()]
    lines += ["", "### Quantities", ""]
    lines += render_quantities(BUILTIN)
    lines += ["", "### Payload fields (from `protocols/schema/*.json`)", ""]
    for name, schema in generate_schemas().items():
        lines += _fields(f"{name} (`protocols/schema/{name}.json`)", schema)
        for sub, subschema in schema.get("$defs", {}).items():
            lines += _fields(f"{name}: {sub}", subschema)
    return "\n".join(lines).rstrip("\n") + "\n"


def splice(doc: str) -> str:
    """``doc`` with the generated block replaced by the current tables."""
    head, sep, rest = doc.partition(BEGIN)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        raise ValueError(f"markers {BEGIN!r} / {END!r} not found")
    return f"{head}{BEGIN}\n{render_tables()}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    """Rewrite the generated block of the reference doc (default: the repo's copy)."""
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else DOC
    path.write_text(splice(path.read_text(encoding="utf-8")), encoding="utf-8")
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
