"""The CapacityBuffer controller: buffers in, virtual pods into the demand book, status out.

Leader only. Watches CapacityBuffers; for each active one reads the PodTemplate or workload it
names (on a change of the buffer and every ``resync`` seconds, so a workload's new replicas or
template reach a ``percentage`` buffer within that), translates it (``decisions``) and hands all
chunks to the :class:`~launcher.demand.book.DemandBook` as one snapshot of the source
:data:`BUFFER_SOURCE`, beside the extenders' streams and the pod watch. The provisioner then
plans for them like any demand: free room on existing nodes holds a chunk, and only the
shortfall launches, within NodePool limits. After each plan :meth:`observe_plan` turns what the
plan did with the chunks into the ``Provisioning`` condition. Status is written with a merge
patch guarded by the resourceVersion it was computed from, and only when it changed.

Work per event: a buffer change re-reads that buffer's references only; a plan costs a pass
over the chunks. Nothing here reads Pods or Nodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any, Final

import orjson
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from launcher import metrics
from launcher.buffers.decisions import (
    SCALABLE_KINDS,
    Source,
    Translation,
    chunk_states,
    invalid,
    is_active,
    provisioning,
    status_patch,
    translate,
    with_condition,
)
from launcher.demand.book import DemandBook
from launcher.kube import MERGE_PATCH
from launcher.planner.inputs import Plan
from shared.api.capacitybuffer import BUFFER_GROUP, BUFFER_PLURAL, BUFFER_VERSION, CapacityBuffer
from shared.api.meta import Condition
from shared.api.nodeclaim import INITIALIZED, NodeClaim
from shared.demand import PodDemand, Snapshot
from shared.errors import ValidationError
from shared.informer import Informer, Obj
from shared.logs import get_logger
from shared.tasks import within

log = get_logger("launcher.buffers")
BUFFER_SOURCE: Final = "launcher/capacity-buffer"


@dataclass(frozen=True)
class BufferSettings:
    resync: float = 10.0  # re-read every buffer's PodTemplate or workload this often


class _Wake:
    """Informer handler: any change to a buffer wakes the controller."""

    def __init__(self, event: asyncio.Event) -> None:
        self._event = event

    def on_added(self, obj: Obj) -> None:
        self._event.set()

    def on_modified(self, old: Obj, new: Obj) -> None:
        self._event.set()

    def on_deleted(self, obj: Obj) -> None:
        self._event.set()


class BufferController:
    def __init__(
        self,
        api: client.ApiClient,
        book: DemandBook,
        settings: BufferSettings | None = None,
        *,
        nodes: Callable[[], Mapping[str, Any]] = dict,
        claims: Callable[[], Mapping[str, NodeClaim]] = dict,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._custom = client.CustomObjectsApi(api)
        self._core = client.CoreV1Api(api)
        self._apps = client.AppsV1Api(api)
        self._book = book
        self.settings = settings or BufferSettings()
        self._nodes = nodes
        self._claims = claims
        self._now = now
        self._wake = asyncio.Event()
        self.informer = Informer(
            partial(self._custom.list_cluster_custom_object, BUFFER_GROUP, BUFFER_VERSION, BUFFER_PLURAL),
            _Wake(self._wake),
            name="capacitybuffers",
        )
        self._seq = 0
        # key -> (the buffer's resourceVersion when read, monotonic time, what it resolved to)
        self._sources: dict[str, tuple[str, float, Source]] = {}
        self.translations: dict[str, Translation] = {}
        self._written: dict[str, dict[str, Any]] = {}  # key -> last status patch written
        self._published: tuple[PodDemand, ...] | None = None
        # key -> the Provisioning condition the last plan gave the buffer
        self._provisioning: dict[str, Condition] = {}

    # Loop -------------------------------------------------------------------------------------

    async def run(self) -> None:
        self.informer.start()
        self._book.connected(BUFFER_SOURCE, time.monotonic())
        try:
            await self.informer.wait_synced()
            while True:
                self._wake.clear()
                try:
                    await self.reconcile_once()
                except asyncio.CancelledError:
                    raise
                except Exception as error:
                    log.exception("capacity buffers not reconciled", error=str(error))
                with contextlib.suppress(TimeoutError):
                    await within(self._wake.wait(), self.settings.resync)
        finally:
            # Chunks belong to the leader that keeps them current: a new leader publishes its own.
            self._seq += 1
            self._book.apply(Snapshot(self._seq, BUFFER_SOURCE, ()), time.monotonic())
            self._book.disconnected(BUFFER_SOURCE, time.monotonic())
            self._published = None
            await self.informer.stop()

    async def reconcile_once(self) -> None:
        """Translate every buffer, publish the chunks, write statuses that changed."""
        now = self._now()
        store = self.informer.store()
        translations: dict[str, Translation] = {}
        for key, raw in sorted(store.items()):
            try:
                buffer = CapacityBuffer.from_api(raw)
            except ValidationError as error:
                translations[key] = invalid(key, raw, error, now)
                continue
            if not is_active(buffer):
                continue  # another provisioner's strategy: neither planned for nor written
            source = await self._source(key, buffer, raw)
            translation = translate(buffer, source, buffer.status, now)
            observed = self._provisioning.get(key)
            if observed is not None and translation.ready:
                # The last plan's verdict stands until the next plan.
                translation = replace(translation, status=with_condition(translation.status, observed))
            translations[key] = translation
        for cache in (self._sources, self._written, self._provisioning):
            for gone in cache.keys() - store.keys():
                del cache[gone]
        self.translations = translations
        self._publish()
        for key, translation in translations.items():
            await self._write(key, translation)

    def observe_plan(self, plan: Plan) -> None:
        """Called by the provisioner after each plan: the chunks' fate becomes ``Provisioning``."""
        # Capacity that is there: Nodes, and claims whose node is initialized (the plan keeps a
        # claim's chunks on it for a while after, until the scheduler would have bound pods).
        nodes = {*self._nodes(), *(n for n, c in self._claims().items() if c.is_true(INITIALIZED))}
        now = self._now()
        uids = [d.uid for t in self.translations.values() for d in t.demands]
        for state, count in chunk_states(uids, plan, nodes).items():
            metrics.BUFFER_CHUNKS.labels(state).set(count)
        store = self.informer.store()
        for key, translation in list(self.translations.items()):
            generation = int(((store.get(key) or {}).get("metadata") or {}).get("generation") or 0)
            condition = provisioning(translation, plan, nodes, generation, now)
            if condition is None:
                self._provisioning.pop(key, None)
                continue
            self._provisioning[key] = condition
            self.translations[key] = replace(
                translation, status=with_condition(translation.status, condition)
            )
        self._wake.set()  # write the statuses from the loop, not from the provisioner's

    def _publish(self) -> None:
        demands = tuple(d for t in self.translations.values() for d in t.demands)
        if demands == self._published:
            return
        self._published = demands
        self._seq += 1
        self._book.apply(Snapshot(self._seq, BUFFER_SOURCE, demands), time.monotonic())
        log.info("capacity buffer chunks", buffers=len(self.translations), chunks=len(demands))

    # References -------------------------------------------------------------------------------

    async def _source(self, key: str, buffer: CapacityBuffer, raw: Obj) -> Source:
        rv = str((raw.get("metadata") or {}).get("resourceVersion") or "")
        cached = self._sources.get(key)
        if cached is not None and cached[0] == rv and time.monotonic() - cached[1] < self.settings.resync:
            return cached[2]
        try:
            source = await self._resolve(buffer)
        except Exception as error:
            if cached is not None:
                return cached[2]  # keep the last good picture through an API blip
            source = Source(problem=("ReferenceUnreadable", str(error)))
        self._sources[key] = (rv, time.monotonic(), source)
        return source

    async def _resolve(self, buffer: CapacityBuffer) -> Source:
        namespace = buffer.namespace
        if buffer.pod_template_ref is not None:
            name = buffer.pod_template_ref
            obj = await _read(self._core.read_namespaced_pod_template, name, namespace)
            if obj is None:
                return Source(problem=("PodTemplateNotFound", f"PodTemplate {namespace}/{name} not found"))
            meta = obj.get("metadata") or {}
            return Source(
                template=obj.get("template") or {},
                template_name=name,
                generation=int(meta.get("generation") or 0) or None,
            )
        ref = buffer.scalable_ref
        assert ref is not None  # the parser requires one of the two
        if (ref.api_group, ref.kind) not in SCALABLE_KINDS:
            kinds = ", ".join(f"{g}/{k}" for g, k in sorted(SCALABLE_KINDS))
            return Source(
                problem=("UnsupportedScalableRef", f"spec.scalableRef: {ref.kind} is not one of {kinds}")
            )
        read = {
            "Deployment": self._apps.read_namespaced_deployment,
            "ReplicaSet": self._apps.read_namespaced_replica_set,
            "StatefulSet": self._apps.read_namespaced_stateful_set,
        }[ref.kind]
        obj = await _read(read, ref.name, namespace)
        if obj is None:
            return Source(problem=("ScalableRefNotFound", f"{ref.kind} {namespace}/{ref.name} not found"))
        spec = obj.get("spec") or {}
        replicas = spec.get("replicas")
        return Source(
            template=spec.get("template") or {},
            replicas=replicas if isinstance(replicas, int) else 1,
        )

    # Status -----------------------------------------------------------------------------------

    async def _write(self, key: str, translation: Translation) -> None:
        patch = status_patch(translation.status)
        comparable = _without_times(patch)
        if self._written.get(key) == comparable:
            return
        raw = self.informer.store().get(key)
        if raw is None:
            return
        meta = raw.get("metadata") or {}
        if _without_times(_current_status(raw)) == comparable:
            self._written[key] = comparable  # already so (written by a former leader)
            return
        body = {"metadata": {"resourceVersion": meta.get("resourceVersion")}, "status": patch}
        try:
            await self._custom.patch_namespaced_custom_object_status(
                group=BUFFER_GROUP,
                version=BUFFER_VERSION,
                namespace=str(meta.get("namespace")),
                plural=BUFFER_PLURAL,
                name=str(meta.get("name")),
                body=body,
                _content_type=MERGE_PATCH,
            )  # type: ignore[call-arg]  # the bundled stubs omit _content_type; the client accepts it
        except ApiException as error:
            # 409: the buffer changed under us; its watch event wakes the next round.
            if error.status not in (404, 409):
                log.warning("capacity buffer status not written", buffer=key, error=str(error))
            return
        self._written[key] = comparable


def _current_status(raw: Obj) -> dict[str, Any]:
    """The object's current status in the shape :func:`status_patch` writes."""
    status = raw.get("status") if isinstance(raw.get("status"), dict) else {}
    out: dict[str, Any] = dict.fromkeys(
        ("podTemplateRef", "replicas", "podTemplateGeneration", "provisioningStrategy", "conditions")
    )
    out.update({k: v for k, v in (status or {}).items() if k in out})
    return out


def _without_times(patch: Mapping[str, Any]) -> dict[str, Any]:
    conditions = patch.get("conditions")
    if not isinstance(conditions, list):
        return dict(patch)
    return {
        **patch,
        "conditions": sorted(
            ({k: v for k, v in c.items() if k != "lastTransitionTime"} for c in conditions),
            key=lambda c: str(c.get("type")),
        ),
    }


async def _read(call: Callable[..., Any], name: str, namespace: str) -> dict[str, Any] | None:
    """The object as the API sends it, or None when it does not exist."""
    response = await call(name, namespace, _preload_content=False)
    try:
        body = await response.read()
        if response.status == 404:
            return None
        if response.status != 200:
            raise ApiException(status=response.status, reason=body[:300].decode(errors="replace"))
        obj = orjson.loads(body)
        return obj if isinstance(obj, dict) else None
    finally:
        response.release()
