"""Errors that name the field they are about.

Every parser of API input (quantities, requirements, NodePools, demand messages) reports bad
input by field path, such as ``spec.limits.cpu: '1x' is not a quantity``, so that a user can
find the line in their manifest. Parsers collect several :class:`FieldError` into one
:class:`ValidationError` rather than stopping at the first.
"""

from __future__ import annotations

from collections.abc import Iterable


class FieldError(ValueError):
    """One bad value at one field path."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


class ValidationError(ValueError):
    """Every problem found in one object, each with its field path."""

    def __init__(self, errors: Iterable[FieldError], kind: str = "object") -> None:
        self.errors = list(errors)
        self.kind = kind
        joined = "; ".join(str(e) for e in self.errors)
        super().__init__(f"invalid {kind}: {joined}")
