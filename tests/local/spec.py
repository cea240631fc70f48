"""Turn the vendored Swagger 2.0 definitions (tests/data/azureml-spec) into JSON Schema validators.

Swagger's ``allOf`` + ``additionalProperties: false`` means "no keys beyond the merged properties",
which JSON Schema cannot say with ``allOf``; so each definition is flattened (parents' properties
merged in). ``x-nullable`` allows null; a ``$ref`` to a polymorphic base (``discriminator``) becomes
``oneOf`` its vendored subtypes, each pinning the discriminator to its ``x-ms-discriminator-value``.
"""

from __future__ import annotations

import copy
import json
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import jsonschema

DATA = Path(__file__).resolve().parents[1] / "data" / "azureml-spec"
_COMMON_REF = "../../../../../common-types/resource-management/v3/types.json#/definitions/"
# Fields the real service returns that the 2025-12-01 spec does not define (recorded; see FIDELITY.md).
RECORDED_EXTRA_VERSION_FIELDS = ("autoDeleteSetting", "intellectualProperty")


@lru_cache(maxsize=1)
def _definitions() -> dict[str, dict[str, Any]]:
    mfe = json.loads((DATA / "mfe-2025-12-01.definitions.json").read_text())["definitions"]
    common = json.loads((DATA / "common-types-v3.definitions.json").read_text())["definitions"]
    out = {f"mfe:{k}": v for k, v in mfe.items()}
    out.update({f"common:{k}": v for k, v in common.items()})
    return out


def model_name_pattern() -> str:
    return json.loads((DATA / "mfe-2025-12-01.definitions.json").read_text())["x-path-parameters"][
        "modelName"
    ]["pattern"]


def _key(ref: str, origin: str) -> str:
    if ref.startswith(_COMMON_REF):
        return "common:" + ref[len(_COMMON_REF) :]
    assert ref.startswith("#/definitions/"), ref
    return f"{origin.split(':')[0]}:{ref[len('#/definitions/') :]}"


def _flatten(key: str) -> dict[str, Any]:
    """Merged ``properties``/``required`` of a definition and all its ``allOf`` parents."""
    d = _definitions()[key]
    props: dict[str, Any] = {}
    required: list[str] = []
    for parent in d.get("allOf", []):
        flat = _flatten(_key(parent["$ref"], key))
        props.update(flat["properties"])
        required += flat["required"]
    props.update({name: (key, p) for name, p in d.get("properties", {}).items()})
    required += d.get("required", [])
    return {"properties": props, "required": required}


def _subtypes(base: str) -> list[str]:
    return [
        k
        for k, d in _definitions().items()
        if "x-ms-discriminator-value" in d and any(_key(p["$ref"], k) == base for p in d.get("allOf", []))
    ]


def _discriminator(key: str) -> str | None:
    d = _definitions()[key]
    if "discriminator" in d:
        return d["discriminator"]
    for parent in d.get("allOf", []):
        found = _discriminator(_key(parent["$ref"], key))
        if found:
            return found
    return None


class _Builder:
    def __init__(self) -> None:
        self.defs: dict[str, Any] = {}

    def ref(self, key: str) -> dict[str, Any]:
        name = key.replace(":", "__")
        if name not in self.defs:
            self.defs[name] = {}  # placeholder against recursion
            d = _definitions()[key]
            if "discriminator" in d and _subtypes(key):
                self.defs[name] = {"oneOf": [self.ref(s) for s in _subtypes(key)]}
            else:
                self.defs[name] = self.definition(key)
        return {"$ref": f"#/definitions/{name}"}

    def definition(self, key: str) -> dict[str, Any]:
        d = _definitions()[key]
        if d.get("type") != "object" and "properties" not in d and "allOf" not in d:
            return self.schema(d, key)
        flat = _flatten(key)
        properties = {n: self.schema(p, origin) for n, (origin, p) in flat["properties"].items()}
        out: dict[str, Any] = {"type": "object", "properties": properties}
        # x-ms-secret properties are write-only: ARM never returns them, so they cannot be required of a
        # response (the recorded datastore GET has ``credentials: {"credentialsType": "AccountKey"}``).
        required = {
            r for r in flat["required"] if not flat["properties"].get(r, ("", {}))[1].get("x-ms-secret")
        }
        if required:
            out["required"] = sorted(required)
        if d.get("additionalProperties") is False:
            out["additionalProperties"] = False
        disc = _discriminator(key)
        if disc and "x-ms-discriminator-value" in d:
            out["properties"][disc] = {"const": d["x-ms-discriminator-value"]}
        return out

    def schema(self, p: dict[str, Any], origin: str) -> dict[str, Any]:
        if "$ref" in p:
            out: dict[str, Any] = self.ref(_key(p["$ref"], origin))
        else:
            out = {k: copy.deepcopy(v) for k, v in p.items() if k in ("type", "enum", "pattern", "minLength")}
            if "items" in p:
                out["items"] = self.schema(p["items"], origin)
            if isinstance(p.get("additionalProperties"), dict):
                out["additionalProperties"] = self.schema(p["additionalProperties"], origin)
            if "properties" in p:
                out["properties"] = {n: self.schema(v, origin) for n, v in p["properties"].items()}
        if p.get("x-nullable"):
            return {"anyOf": [out, {"type": "null"}]}
        return out


@cache
def schema_for(name: str) -> dict[str, Any]:
    """JSON Schema (draft 7) for a vendored definition, e.g. ``ModelVersionResource``."""
    builder = _Builder()
    key = f"mfe:{name}" if f"mfe:{name}" in _definitions() else f"common:{name}"
    root = builder.ref(key)
    return {"$schema": "http://json-schema.org/draft-07/schema#", **root, "definitions": builder.defs}


def errors(name: str, instance: Any) -> list[str]:
    validator = jsonschema.Draft7Validator(schema_for(name))
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(instance)]


def strip_recorded_extras(instance: Any) -> Any:
    """Drop the response fields the real service returns beyond the spec (the recording wins)."""
    instance = copy.deepcopy(instance)
    items = instance.get("value", []) if isinstance(instance, dict) and "value" in instance else [instance]
    for item in items:
        props = item.get("properties") if isinstance(item, dict) else None
        if isinstance(props, dict) and str(item.get("type", "")).endswith("/models/versions"):
            for extra in RECORDED_EXTRA_VERSION_FIELDS:
                props.pop(extra, None)
    return instance


def assert_valid(name: str, instance: Any, *, response: bool = True) -> None:
    found = errors(name, strip_recorded_extras(instance) if response else instance)
    assert not found, f"{name} does not validate: {found}"
