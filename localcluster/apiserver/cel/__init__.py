"""CEL for CRD validation rules: compile checks per Kubernetes version, cost budgets, evaluation."""

from localcluster.apiserver.cel.rules import (
    PER_CALL_LIMIT,
    STATIC_ESTIMATED_COST_LIMIT,
    STATIC_ESTIMATED_CRD_COST_LIMIT,
    Compiled,
    CompiledRule,
    compile_schema,
)

__all__ = [
    "PER_CALL_LIMIT",
    "STATIC_ESTIMATED_COST_LIMIT",
    "STATIC_ESTIMATED_CRD_COST_LIMIT",
    "Compiled",
    "CompiledRule",
    "compile_schema",
]
