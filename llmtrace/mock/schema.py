"""A minimal valid instance of a JSON schema, for structured-output and forced-tool replies.

Every property (required or not) is filled: string "example", integer 1, number 1.0, boolean true,
array [] (or `minItems` items), enum/const → the first value, nested objects recursively, anyOf/oneOf →
the first non-null branch, allOf → merged, $ref → resolved against the root ($defs / definitions).
A few string formats get a value that parses (date-time, date, time, email, uri, uuid).
"""

from __future__ import annotations

from typing import Any

_FORMATS = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "00:00:00",
    "email": "user@example.com",
    "uri": "https://example.com",
    "url": "https://example.com",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "127.0.0.1",
}

_MAX_DEPTH = 12


def instance_of(schema: Any) -> Any:
    """A minimal value that validates against `schema` (a JSON-schema dict; None or {} gives {})."""
    if not isinstance(schema, dict) or not schema:
        return {}
    return _instance(schema, schema, 0)


def _resolve(ref: str, root: dict[str, Any]) -> dict[str, Any]:
    if not ref.startswith("#"):
        return {}
    node: Any = root
    for part in ref.lstrip("#").strip("/").split("/"):
        if not part:
            continue
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return {}
        node = node[part]
    return node if isinstance(node, dict) else {}


def _is_null(schema: Any) -> bool:
    return isinstance(schema, dict) and (schema.get("type") == "null" or schema.get("const", 0) is None and "const" in schema)


def _instance(schema: Any, root: dict[str, Any], depth: int) -> Any:
    if not isinstance(schema, dict):
        return None if schema is False else {}
    if "$ref" in schema:
        if depth > _MAX_DEPTH:
            return None
        target = _resolve(str(schema["$ref"]), root)
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        return _instance({**target, **rest}, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            branches = [b for b in schema[key] if not _is_null(b)]
            if not branches or depth > _MAX_DEPTH:
                return None
            rest = {k: v for k, v in schema.items() if k != key}
            return _instance({**rest, **branches[0]} if rest.get("type") is None else branches[0], root, depth + 1)
    if isinstance(schema.get("allOf"), list) and schema["allOf"]:
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            part = _resolve(part["$ref"], root) if isinstance(part, dict) and "$ref" in part else part
            if isinstance(part, dict):
                for k, v in part.items():
                    if k in ("properties",) and isinstance(merged.get(k), dict):
                        merged[k] = {**merged[k], **v}
                    elif k == "required":
                        merged[k] = list(merged.get(k) or []) + list(v)
                    else:
                        merged.setdefault(k, v)
        return _instance(merged, root, depth + 1)

    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        if not kinds:
            return None
        kind = kinds[0]
    if kind is None:
        if "properties" in schema or "additionalProperties" in schema:
            kind = "object"
        elif "items" in schema or "prefixItems" in schema:
            kind = "array"
        else:
            return {}

    if kind == "object":
        out: dict[str, Any] = {}
        props = schema.get("properties") or {}
        for name in list(props) + [r for r in schema.get("required") or [] if r not in props]:
            out[name] = _instance(props.get(name, {"type": "string"}), root, depth + 1) if depth <= _MAX_DEPTH else None
        return out
    if kind == "array":
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list) and prefix:
            return [_instance(p, root, depth + 1) for p in prefix]
        n = int(schema.get("minItems") or 0)
        return [_instance(schema.get("items") or {"type": "string"}, root, depth + 1) for _ in range(n)]
    if kind == "string":
        value = _FORMATS.get(str(schema.get("format", "")), "example")
        min_len = int(schema.get("minLength") or 0)
        if len(value) < min_len:
            value = value + "x" * (min_len - len(value))
        if schema.get("maxLength") is not None:
            value = value[: int(schema["maxLength"])]
        return value
    if kind in ("integer", "number"):
        value: float = 1
        lo, hi = schema.get("minimum"), schema.get("maximum")
        xlo, xhi = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
        if lo is not None and value < lo:
            value = lo
        if xlo is not None and not isinstance(xlo, bool) and value <= xlo:
            value = xlo + 1
        if hi is not None and value > hi:
            value = hi
        if xhi is not None and not isinstance(xhi, bool) and value >= xhi:
            value = xhi - 1
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return {}
