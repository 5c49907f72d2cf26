"""Validating custom resources against their CRD: the structural schema, then the CEL rules.

Worded as a 1.32 API server words its causes, so clients and tests see the real messages. On
update, subtrees equal to the stored object are not re-validated (CRD validation ratcheting,
on by default since 1.30), except for transition rules, which always run where ``oldSelf``
exists. Unknown fields and pruning are left to the field-validation step.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson

from localcluster.apiserver.cel import Compiled, CompiledRule, compile_schema
from localcluster.apiserver.cel.runtime import EvalError, to_cel
from shared.compat import MIN_KUBERNETES_MINOR

Cause = tuple[str, str]
SKIPPED_AT_ROOT = frozenset({"apiVersion", "kind", "metadata"})
NOT_CHECKED = (
    'Invalid value: "null": some validation rules were not checked because the object was invalid; '
    "correct the existing errors to complete validation"
)
_JSON_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
}


@lru_cache(maxsize=512)
def _pattern(source: str) -> re.Pattern[str]:
    return re.compile(source)


def _go(value: Any) -> str:
    """A value as apimachinery's field errors print it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f'"{_type_name(value)}"'


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _type_ok(value: Any, schema: dict[str, Any]) -> bool:
    if schema.get("x-kubernetes-int-or-string"):
        return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))
    kind = schema.get("type")
    if kind is None:
        return True
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, _JSON_TYPES.get(kind, object))


def _format_ok(value: str, fmt: str) -> bool:
    if fmt == "date-time":
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return False
    return True


def _structural(value: Any, schema: dict[str, Any], path: str, out: list[tuple[str, str, str]]) -> bool:
    """Checks of one node; appends (kind, path, message) and returns whether children may be walked."""
    if value is None:
        if not schema.get("nullable"):
            name = schema.get("type", "")
            out.append(
                ("type", path, f'Invalid value: "null": {path} in body must be of type {name}: "null"')
            )
        return False
    if not _type_ok(value, schema):
        got = _type_name(value)
        name = schema.get("type", "")
        out.append(("type", path, f'Invalid value: "{got}": {path} in body must be of type {name}: "{got}"'))
        return False
    enum = schema.get("enum")
    if enum is not None and value not in enum:
        allowed = ", ".join(_go(v) for v in enum)
        out.append(("enum", path, f"Unsupported value: {_go(value)}: supported values: {allowed}"))
    if isinstance(value, str):
        _string(value, schema, path, out)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _number(value, schema, path, out)
    elif isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            out.append(
                (
                    "invalid",
                    path,
                    f"Invalid value: {len(value)}: {path} in body should have at least "
                    f"{schema['minItems']} items",
                )
            )
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            out.append(
                ("invalid", path, f"Too many: {len(value)}: must have at most {schema['maxItems']} items")
            )
    elif isinstance(value, dict):
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            out.append(
                (
                    "invalid",
                    path,
                    f"Too many: {len(value)}: must have at most {schema['maxProperties']} items",
                )
            )
        if "minProperties" in schema and len(value) < schema["minProperties"]:
            out.append(
                (
                    "invalid",
                    path,
                    f"Invalid value: {len(value)}: {path} in body should have at least "
                    f"{schema['minProperties']} properties",
                )
            )
        for name in schema.get("required") or ():
            if name not in value:
                out.append(("required", _child(path, name), "Required value"))
    return True


def _string(value: str, schema: dict[str, Any], path: str, out: list[tuple[str, str, str]]) -> None:
    if "minLength" in schema and len(value) < schema["minLength"]:
        message = f"{path} in body should be at least {schema['minLength']} chars long"
        out.append(("invalid", path, f"Invalid value: {_go(value)}: {message}"))
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        out.append(("invalid", path, f"Too long: may not be more than {schema['maxLength']} bytes"))
    pattern = schema.get("pattern")
    if pattern and not _pattern(pattern).search(value):
        out.append(("invalid", path, f"Invalid value: {_go(value)}: {path} in body should match '{pattern}'"))
    fmt = schema.get("format")
    if fmt and not _format_ok(value, fmt):
        message = f"{path} in body must be of type {fmt}: {_go(value)}"
        out.append(("invalid", path, f"Invalid value: {_go(value)}: {message}"))


def _number(value: float, schema: dict[str, Any], path: str, out: list[tuple[str, str, str]]) -> None:
    if "minimum" in schema and value < schema["minimum"]:
        message = f"{path} in body should be greater than or equal to {schema['minimum']}"
        out.append(("invalid", path, f"Invalid value: {_go(value)}: {message}"))
    if "maximum" in schema and value > schema["maximum"]:
        message = f"{path} in body should be less than or equal to {schema['maximum']}"
        out.append(("invalid", path, f"Invalid value: {_go(value)}: {message}"))


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


class _Walk:
    def __init__(self, compiled: Compiled) -> None:
        self.compiled = compiled
        self.schema_errors: list[tuple[str, str, str]] = []
        self.rule_errors: list[Cause] = []

    def node(
        self, value: Any, old: Any, has_old: bool, schema: dict[str, Any], path: str, spath: str
    ) -> None:
        """Validate ``value`` at field path ``path`` against ``schema`` found at schema path ``spath``."""
        root = spath == "ROOT"
        spath = "" if root else spath
        unchanged = has_old and value == old
        if not unchanged and not _structural(value, schema, path or "<nil>", self.schema_errors):
            return
        if value is None:
            return
        self.rules(value, old, has_old, unchanged, spath, str(schema.get("type", "")), path)
        if isinstance(value, dict):
            props = schema.get("properties") or {}
            extra = schema.get("additionalProperties")
            old_map = old if has_old and isinstance(old, dict) else {}
            for name, sub in value.items():
                if root and name in SKIPPED_AT_ROOT:
                    continue
                child = props.get(name) if name in props else (extra if isinstance(extra, dict) else None)
                if child is None:
                    continue
                if name in props:
                    where, sub_spath = _child(path, name), f"{spath}.properties[{name}]"
                else:
                    where, sub_spath = f"{path}[{name}]", f"{spath}.additionalProperties"
                self.node(sub, old_map.get(name), name in old_map, child, where, sub_spath)
        elif isinstance(value, list) and isinstance(schema.get("items"), dict):
            items = schema["items"]
            olds = self._correlate(value, old if has_old else None, schema)
            for i, item in enumerate(value):
                prev = olds[i]
                self.node(item, prev[1], prev[0], items, f"{path}[{i}]", f"{spath}.items")

    @staticmethod
    def _correlate(value: list[Any], old: Any, schema: dict[str, Any]) -> list[tuple[bool, Any]]:
        none: list[tuple[bool, Any]] = [(False, None)] * len(value)
        if schema.get("x-kubernetes-list-type") != "map" or not isinstance(old, list):
            return none
        keys = schema.get("x-kubernetes-list-map-keys") or []

        def key(item: Any) -> tuple[Any, ...] | None:
            return tuple(item.get(k) for k in keys) if isinstance(item, dict) else None

        by_key = {key(o): o for o in old}
        return [(key(v) in by_key, by_key.get(key(v))) for v in value]

    def rules(
        self, value: Any, old: Any, has_old: bool, unchanged: bool, spath: str, kind: str, path: str
    ) -> None:
        compiled = self.compiled.rules.get(spath)
        if not compiled:
            return
        wanted = [
            r for r in compiled if (r.uses_old_self and has_old) or (not r.uses_old_self and not unchanged)
        ]
        if not wanted:
            return
        activation = {"self": to_cel(value)}
        if has_old:
            activation["oldSelf"] = to_cel(old)
        for rule in wanted:
            self._one(rule, activation, kind, path)

    def _one(self, rule: CompiledRule, activation: dict[str, Any], kind: str, path: str) -> None:
        where = path or "<nil>"
        try:
            if rule.program(activation):
                return
        except EvalError as exc:
            detail = f"{exc} evaluating rule: {rule.message.removeprefix('failed rule: ')}"
            self.rule_errors.append((where, f'Invalid value: "{kind}": {detail}'))
            return
        field_path = str(rule.rule.get("fieldPath") or "").strip()
        if field_path:
            where = f"{path}{field_path}" if field_path.startswith((".", "[")) else _child(path, field_path)
        reason = rule.rule.get("reason")
        if reason == "FieldValueForbidden":
            self.rule_errors.append((where, f"Forbidden: {rule.message}"))
        elif reason == "FieldValueRequired":
            self.rule_errors.append((where, f"Required value: {rule.message}"))
        elif reason == "FieldValueDuplicate":
            self.rule_errors.append((where, f'Duplicate value: "{kind}"'))
        else:
            self.rule_errors.append((where, f'Invalid value: "{kind}": {rule.message}'))


def validate(
    compiled: Compiled, schema: dict[str, Any], obj: dict[str, Any], old: dict[str, Any] | None
) -> list[Cause]:
    """Causes that make ``obj`` invalid (empty when valid); ``old`` is the stored object on update."""
    walk = _Walk(compiled)
    walk.node(obj, old, old is not None, schema, "", "ROOT")
    causes = [(path, message) for _, path, message in walk.schema_errors]
    if any(kind in ("type", "enum") for kind, _, _ in walk.schema_errors):
        return [*causes, ("<nil>", NOT_CHECKED)]
    return causes + walk.rule_errors


_COMPILED: dict[bytes, Compiled] = {}


def compiled_rules(schema: dict[str, Any]) -> Compiled:
    """The rules of ``schema`` compiled for the emulated server; cached by content, so once per CRD."""
    key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
    found = _COMPILED.get(key)
    if found is None:
        if len(_COMPILED) > 256:
            _COMPILED.clear()
        found = _COMPILED[key] = compile_schema(schema, "", MIN_KUBERNETES_MINOR)
    return found


def crd_rule_problems(crd: dict[str, Any]) -> list[Cause]:
    """Rules that a 1.MIN_KUBERNETES_MINOR server would refuse: not compiling there, or over budget."""
    versions = (crd.get("spec") or {}).get("versions") or []
    schemas = [((v.get("schema") or {}).get("openAPIV3Schema"), i) for i, v in enumerate(versions)]
    schemas = [(s, i) for s, i in schemas if isinstance(s, dict)]
    shared = len(schemas) == len(versions) and all(s == schemas[0][0] for s, _ in schemas)
    causes: list[Cause] = []
    for schema, i in schemas[:1] if shared else schemas:
        assert isinstance(schema, dict)
        prefix = "spec.validation.openAPIV3Schema" if shared else f"spec.versions[{i}].schema.openAPIV3Schema"
        for path, message in compiled_rules(schema).causes:
            causes.append((prefix + path, message))
    return causes
