"""Malformed inputs for every parameter of every route, read from the app's OpenAPI schema: each path and query
parameter, each field of a JSON body (nested ones too) and each field of an upload form is sent, one at a time,
a value at or past its type's limits (NUL and control characters, over-long strings, integers past 2^31 and
2^63, extreme dates, 1,000-deep JSON, wrong types), the rest of the request being valid."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

DEPTH = 1000
LONG = "x" * 10_001

# As text: what a path, a query string or a form field carries.
TEXTS = {
    "nul": "a\x00b",
    "controls": "a\x01\x08\x1b\x7fb",
    "long": LONG,
    "empty": "",
    "2^63": str(2**63),
    "-2^63-1": str(-(2**63) - 1),
    "2^31": str(2**31),
    "-1": "-1",
    "10^13": str(10**13),
    "1e309": "1e309",
    "nan": "NaN",
    "year 0": "0000-01-01T00:00:00Z",
    "year 1 +14:00": "0001-01-01T00:00:00+14:00",
    "year 9999 -14:00": "9999-12-31T23:59:59-14:00",
    "year 9999": "9999-12-31T23:59:59Z",
    "not a date": "2026-13-45T99:99:99",
}
# Texts that are no more than valid free text: sent to a JSON field of free text they would only be served
# (a search embedding each one), so they go to the fields that parse them, and to every parameter.
_FREE_TEXTS = frozenset(TEXTS) - {"nul", "controls", "long", "empty"}
# As JSON: the same, and the values only JSON can carry.
VALUES: dict[str, Any] = {
    **TEXTS,
    "int 2^63": 2**63,
    "int -2^63-1": -(2**63) - 1,
    "int 2^31": 2**31,
    "int -1": -1,
    "int 10^13": 10**13,
    "float 1e308": 1e308,
    "true": True,
    "list": [],
    "object": {},
    "list of nul": ["a\x00b"],
    "deep": "DEEP",  # spliced in as text by `encoded`, too deep to build as a Python value
}
_DEEP_JSON = "[" * DEPTH + "]" * DEPTH


@dataclass(frozen=True)
class Case:
    """One request with one malformed input; `label` says which."""

    label: str
    method: str
    path: str
    params: dict[str, str]
    body: bytes | None = None
    content_type: str | None = None
    form: dict[str, str] | None = None
    file_field: str | None = None


def encoded(body: Any) -> bytes:
    return json.dumps(body).replace('"DEEP"', _DEEP_JSON).encode()


class Walker:
    """Builds the cases of an OpenAPI schema, given valid values for the path parameters (by name) and for
    body fields whose valid value no schema says (by name)."""

    def __init__(self, schema: dict[str, Any], path_values: dict[str, str], samples: dict[str, Any]) -> None:
        self.schema, self.path_values, self.samples = schema, path_values, samples

    def _resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = self.schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
        for variant in node.get("oneOf", ()):
            if variant.get("type") != "null":
                return {**node, **self._resolve(variant), "oneOf": ()}
        return node

    def sample(self, node: dict[str, Any], name: str = "") -> Any:
        """A valid value of a schema (objects with their required properties only)."""
        node = self._resolve(node)
        if name in self.samples:
            return self.samples[name]
        if "enum" in node:
            return next(value for value in node["enum"] if value is not None)
        kind = node.get("type")
        kind = next((k for k in kind if k != "null"), None) if isinstance(kind, list) else kind
        if kind == "object":
            required = node.get("required", ())
            return {key: self.sample(sub, key) for key, sub in node.get("properties", {}).items() if key in required}
        if kind == "array":
            return [self.sample(node.get("items", {}), name)] * max(1, int(node.get("minItems", 1)))
        if kind == "integer" or kind == "number":
            return int(node.get("minimum", 1))
        if kind == "boolean":
            return False
        if node.get("format") == "uuid":
            return str(uuid.uuid4())
        if node.get("format") == "date-time":
            return datetime.now(UTC).isoformat()
        return "sample"

    def _fields(
        self, node: dict[str, Any], at: tuple[str | int, ...] = ()
    ) -> Iterator[tuple[tuple[str | int, ...], dict[str, Any]]]:
        """Every field of a body, by path, with its schema: object properties, and the fields of an array's item."""
        node = self._resolve(node)
        for key, sub in node.get("properties", {}).items():
            yield (*at, key), self._resolve(sub)
            yield from self._fields(sub, (*at, key))
        if "items" in node and at:
            yield (*at, 0), self._resolve(node["items"])
            yield from self._fields(node["items"], (*at, 0))

    @staticmethod
    def _valid_text(node: dict[str, Any], value: str) -> bool:
        """Whether a field of free text takes `value` as it is (its pattern and length allowing)."""
        if node.get("type") != "string" or {"enum", "format"} & node.keys():
            return False
        return re.search(node.get("pattern", ""), value) is not None and len(value) <= node.get("maxLength", len(value))

    def _with(self, body: Any, node: dict[str, Any], at: tuple[str | int, ...], value: Any) -> Any:
        """`body` with the field at `at` set to `value`, its containers made valid where absent."""
        if not at:
            return value
        node = self._resolve(node)
        key, rest = at[0], at[1:]
        if isinstance(key, int):
            items = list(body) if isinstance(body, list) and body else [self.sample(node.get("items", {}))]
            items[0] = self._with(items[0], node.get("items", {}), rest, value)
            return items
        sub = node.get("properties", {}).get(key, {})
        current = dict(body) if isinstance(body, dict) else {}
        inner = current.get(key, self.sample(sub, key)) if rest else None
        current[key] = self._with(inner, sub, rest, value)
        return current

    def cases(self, forms: dict[str, tuple[str, tuple[str, ...]]]) -> Iterator[Case]:
        """Every operation's cases; `forms` names the upload routes' file part and text fields, which the
        OpenAPI schema does not describe (their bodies are streamed)."""
        for path, operations in self.schema["paths"].items():
            for method, operation in operations.items():
                if method in ("get", "post", "patch", "put", "delete"):
                    yield from self._operation(path, method.upper(), operation, forms.get(path))

    def _operation(
        self, path: str, method: str, operation: dict[str, Any], form: tuple[str, tuple[str, ...]] | None
    ) -> Iterator[Case]:
        parameters = operation.get("parameters", [])
        valid_path = {p["name"]: self.path_values[p["name"]] for p in parameters if p["in"] == "path"}
        content = operation.get("requestBody", {}).get("content", {}).get("application/json")
        body_schema = content["schema"] if content else None
        valid_body = encoded(self.sample(body_schema)) if body_schema else None

        def case(label: str, names: dict[str, str], params: dict[str, str], **kw: Any) -> Case:
            url = path.format(**{name: quote(value, safe="") for name, value in names.items()})
            if body_schema is not None and "body" not in kw:
                kw.update(body=valid_body, content_type="application/json")
            return Case(f"{method} {path} {label}", method, url, params, **kw)

        for parameter in parameters:
            name, where = parameter["name"], parameter["in"]
            for label, text in TEXTS.items():
                if where == "path":
                    yield case(f"path {name}={label}", {**valid_path, name: text}, {})
                elif where == "query":
                    yield case(f"query {name}={label}", valid_path, {name: text})
        if body_schema is not None:
            valid = self.sample(body_schema)
            for field, node in self._fields(body_schema):
                for label, value in VALUES.items():
                    if label in _FREE_TEXTS and self._valid_text(node, value):
                        continue
                    body = encoded(self._with(valid, body_schema, field, value))
                    yield case(f"body {field}={label}", valid_path, {}, body=body, content_type="application/json")
            for label, raw in {"deep": _DEEP_JSON.encode(), "not json": b"{", "nul": b'{"a": "\\u0000"}'}.items():
                yield case(f"body={label}", valid_path, {}, body=raw, content_type="application/json")
        if form is not None:
            file_field, names = form
            for name in names:
                for label, text in TEXTS.items():
                    yield case(f"form {name}={label}", valid_path, {}, form={name: text}, file_field=file_field)
