"""Evaluating rules with cel-python, plus the Kubernetes library functions the CRDs call.

cel-python supplies the language (macros, ``has``, ``size``, ``matches`` with RE2, ``in``); the
quantity library (``quantity()``, ``isQuantity``, ``compareTo``, ...) is registered here, as the
API server registers it on top of cel-go.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Any, cast

import celpy
import lark
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError

from shared.quantity import QuantityError, parse_quantity


class Quantity(celtypes.StringType):
    """A parsed ``resource.Quantity``; keeps its text for messages."""

    amount: Fraction

    def __new__(cls, text: str) -> Quantity:
        self = cast(Quantity, super().__new__(cls, text))
        self.amount = parse_quantity(str(text))
        return self


def _quantity(text: Any) -> Quantity:
    try:
        return Quantity(str(text))
    except QuantityError as exc:
        raise ValueError(f"quantities must match the regular expression for {text!r}") from exc


def _is_quantity(text: Any) -> celtypes.BoolType:
    try:
        parse_quantity(str(text))
    except QuantityError:
        return celtypes.BoolType(False)
    return celtypes.BoolType(True)


def _cmp(a: Fraction, b: Fraction) -> int:
    return (a > b) - (a < b)


def _compare_to(a: Quantity, b: Quantity) -> celtypes.IntType:
    return celtypes.IntType(_cmp(a.amount, b.amount))


def _sign(a: Quantity) -> celtypes.IntType:
    return celtypes.IntType(_cmp(a.amount, Fraction(0)))


def _is_integer(a: Quantity) -> celtypes.BoolType:
    return celtypes.BoolType(a.amount.denominator == 1 and -(2**63) <= a.amount < 2**63)


def _as_integer(a: Quantity) -> celtypes.IntType:
    if not _is_integer(a):
        raise ValueError("cannot convert value to integer")
    return celtypes.IntType(int(a.amount))


def _as_float(a: Quantity) -> celtypes.DoubleType:
    return celtypes.DoubleType(float(a.amount))


def _greater(a: Quantity, b: Quantity) -> celtypes.BoolType:
    return celtypes.BoolType(a.amount > b.amount)


def _less(a: Quantity, b: Quantity) -> celtypes.BoolType:
    return celtypes.BoolType(a.amount < b.amount)


def _format(amount: Fraction) -> str:
    return str(amount.numerator) if amount.denominator == 1 else f"{float(amount)!r}"


def _plus(a: Quantity, b: Any) -> Quantity:
    other = b.amount if isinstance(b, Quantity) else Fraction(int(b))
    return Quantity(_format(a.amount + other))


def _minus(a: Quantity, b: Any) -> Quantity:
    other = b.amount if isinstance(b, Quantity) else Fraction(int(b))
    return Quantity(_format(a.amount - other))


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "quantity": _quantity,
    "isQuantity": _is_quantity,
    "compareTo": _compare_to,
    "sign": _sign,
    "isInteger": _is_integer,
    "asInteger": _as_integer,
    "asApproximateFloat": _as_float,
    "isGreaterThan": _greater,
    "isLessThan": _less,
    "add": _plus,
    "sub": _minus,
}

_ENV = celpy.Environment()


class EvalError(Exception):
    """A rule that failed to evaluate (no such key, bad conversion, ...)."""


class Program:
    """One compiled rule, evaluated against plain JSON values."""

    def __init__(self, tree: lark.Tree[Any]) -> None:
        self._runner = _ENV.program(tree, functions=FUNCTIONS)

    def __call__(self, activation: dict[str, Any]) -> bool:
        try:
            result = self._runner.evaluate(activation)
        except CELEvalError as exc:
            raise EvalError(_describe(exc)) from exc
        except (ValueError, TypeError, KeyError, ZeroDivisionError) as exc:
            raise EvalError(str(exc)) from exc
        if isinstance(result, CELEvalError):
            raise EvalError(_describe(result))
        return bool(result)


def to_cel(value: Any) -> Any:
    """A JSON value as cel-python's types (done once per object, shared by its rules)."""
    return json_to_cel(value)


def _describe(exc: CELEvalError) -> str:
    args = exc.args
    if len(args) >= 3 and args[1] is KeyError and args[2]:
        return f"no such key: {args[2][0]}"
    if args and isinstance(args[0], str):
        return args[0].split(" (in activation")[0]
    return str(exc)
