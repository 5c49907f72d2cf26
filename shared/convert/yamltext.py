"""Multi-document YAML text in and out (pure: strings, not files).

Output is stable (keys in the order the converter built them) so converted manifests can be
committed and compared byte for byte; multi-line strings such as user data are written as
literal blocks so they stay readable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from shared.errors import FieldError, ValidationError


class _Dumper(yaml.SafeDumper):
    """SafeDumper writing multi-line strings as ``|`` blocks and indenting lists, as kubectl does."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def load_documents(text: str, source: str = "input") -> list[Any]:
    """Every document of ``text`` (empty ones included, as None); raises ``ValidationError`` on bad YAML."""
    try:
        return list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ValidationError([FieldError(where, f"not valid YAML: {problem}")], kind=source) from exc


def dump_documents(objects: Sequence[Any]) -> str:
    """``objects`` as a multi-document YAML stream, each document starting with ``---``."""
    if not objects:
        return ""
    return yaml.dump_all(
        list(objects),
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        explicit_start=True,
        allow_unicode=True,
        width=100,
    )
