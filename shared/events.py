"""Kubernetes Events, so that ``kubectl describe`` tells users what jitnode did and why.

Events are best-effort: a failure to record one is logged and never fails the caller. Repeats
of the same reason and message on the same object within the aggregation window update the
existing Event's count instead of creating a new one, as client-go's recorder does.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio import client

from shared.logs import get_logger

log = get_logger("shared.events")

NORMAL = "Normal"
WARNING = "Warning"


def _now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def object_reference(obj: Mapping[str, Any], kind: str, api_version: str = "v1") -> dict[str, Any]:
    """An ``involvedObject`` reference for a plain-dict API object."""
    meta = obj.get("metadata") or {}
    ref = {"kind": kind, "apiVersion": api_version, "name": meta.get("name"), "uid": meta.get("uid")}
    if meta.get("namespace"):
        ref["namespace"] = meta["namespace"]
    return {k: v for k, v in ref.items() if v is not None}


class EventRecorder:
    """Records core/v1 Events for one component (``source.component``)."""

    def __init__(self, api: client.ApiClient, component: str, aggregate_seconds: float = 600.0) -> None:
        self._core = client.CoreV1Api(api)
        self.component = component
        self._aggregate_seconds = aggregate_seconds
        # (object uid or name, reason, message) -> (event name, namespace, count, first seen)
        self._recent: dict[tuple[str, str, str], tuple[str, str, int, float]] = {}

    async def record(self, involved: Mapping[str, Any], event_type: str, reason: str, message: str) -> None:
        namespace = str(involved.get("namespace") or "default")
        key = (str(involved.get("uid") or involved.get("name")), reason, message)
        now = time.monotonic()
        recent = self._recent.get(key)
        try:
            if recent is not None and now - recent[3] < self._aggregate_seconds:
                name, ns, count, first = recent
                await self._core.patch_namespaced_event(
                    name, ns, {"count": count + 1, "lastTimestamp": _now_rfc3339()}
                )
                self._recent[key] = (name, ns, count + 1, first)
                return
            name = f"{involved.get('name', 'object')}.{uuid.uuid4().hex[:16]}"
            stamp = _now_rfc3339()
            body = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": name, "namespace": namespace},
                "involvedObject": dict(involved),
                "reason": reason,
                "message": message,
                "type": event_type,
                "source": {"component": self.component},
                "reportingComponent": self.component,
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
                "count": 1,
            }
            await self._core.create_namespaced_event(namespace, body)  # type: ignore[arg-type]  # dicts serialise as-is
            self._recent[key] = (name, namespace, 1, now)
            if len(self._recent) > 10_000:
                self._recent.clear()
        except Exception as error:  # events are best-effort by design
            log.warning("event not recorded", reason=reason, error=str(error))
