"""Kubelet settings: Karpenter kept them on the Provisioner or NodePool, jitnode on the EC2NodeClass.

jitnode's EC2NodeClass ``kubelet`` block holds the settings that change what fits on a node
(``maxPods``, ``kubeReserved``, ``systemReserved``, ``evictionHard``), as Karpenter v1 does.
:func:`split_kubelet` keeps those and reports the rest; the batch then moves the kept ones onto
the node class the pool uses, or reports them too when it cannot (see ``shared.convert.batch``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from shared.api.nodeclass import EVICTION_SIGNALS, KUBELET_RESERVED_RESOURCES
from shared.convert import shape
from shared.convert.report import Report

MAPPED: Final = ("maxPods", "kubeReserved", "systemReserved", "evictionHard")
NOT_ON_POOL: Final = "no jitnode equivalent on a NodePool (set it on the EC2NodeClass kubelet block)"


def split_kubelet(raw: Mapping[str, Any], key: str, path: str, report: Report) -> dict[str, Any]:
    """The settings of ``raw[key]`` jitnode's kubelet block holds; every other one is reported."""
    where = shape.join(path, key)
    out: dict[str, Any] = {}
    for name, value in shape.mapping(raw, key, path).items():
        field = shape.join(where, str(name))
        if name not in MAPPED:
            report.drop(
                field, "no jitnode equivalent (jitnode's kubelet block has " + ", ".join(MAPPED) + ")"
            )
        elif name in ("kubeReserved", "systemReserved"):
            out[name] = _keep(shape.mapping(raw[key], name, where), KUBELET_RESERVED_RESOURCES, field, report)
        elif name == "evictionHard":
            out[name] = _keep(shape.mapping(raw[key], name, where), EVICTION_SIGNALS, field, report)
        else:
            out[name] = value
    return {k: v for k, v in out.items() if v not in ({}, None)}


def _keep(amounts: Mapping[str, Any], allowed: frozenset[str], path: str, report: Report) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for name, amount in amounts.items():
        if name in allowed:
            kept[str(name)] = str(amount) if isinstance(amount, int | float) else amount
        else:
            report.drop(shape.join(path, str(name)), f"jitnode accepts only {', '.join(sorted(allowed))}")
    return kept


def report_unplaced(settings: Mapping[str, Any], path: str, report: Report, why: str = NOT_ON_POOL) -> None:
    """Report kept settings that found no EC2NodeClass to live on."""
    for name in settings:
        report.drop(shape.join(path, name), why)
