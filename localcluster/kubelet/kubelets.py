"""One async loop that plays the kubelet of every EC2 instance of a cluster.

It polls EC2 for the cluster's instances and, ``boot_delay`` after an instance runs (or
``boot_from_stopped_delay`` after one seen stopped runs again), registers
its Node as a kubelet would (name, providerID, labels and taints from the user data, capacity
and allocatable as on EKS), then posts Ready heartbeats through the ``status`` subresource.
Pods bound to its nodes become Running and Ready after ``container_start_delay``; pods being
deleted are removed after their grace period. When an instance stops or terminates, it does
what the node lifecycle and cloud node controllers do: the Node goes Ready=Unknown with the
unreachable taints, and ``node_removal_delay`` later its pods and the Node are deleted.

Tests can make a running node unhealthy as it happens on AWS: :meth:`Kubelets.stop_kubelet`
(a hung or crashed kubelet: no heartbeats, no pod work; ``node_monitor_grace_period`` after the
last heartbeat the node lifecycle controller's part marks the Node Unknown and unreachable) and
:meth:`Kubelets.report_condition` (the kubelet, or a node agent, reporting ``Ready`` ``False``,
``DiskPressure`` ``True``, ...). Only stopped kubelets are watched for missed heartbeats: the
others beat from this loop, whose delays on a loaded machine say nothing about the nodes.

A node that cannot bootstrap never joins, as on AWS: an instance listed by ``fail_to_join``,
user data that does not parse (logged with the field at fault) or names another cluster. Once
its Node is deleted by someone else while the instance runs, a kubelet does not re-register
(a real one would not until restarted); the pods bound to it are deleted, as pod GC does.

Everything goes over HTTP: aioboto3 to the EC2 endpoint, kubernetes-asyncio to the API server.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import math
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import aioboto3
import orjson
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.client.exceptions import ApiException

from localcluster.kubelet.instances import STOPPED_STATES, EC2Inventory, Instance
from localcluster.kubelet.node import (
    UNREACHABLE_TAINT,
    NodeShape,
    NodeSoftware,
    ReportedCondition,
    node_object,
    node_shape,
    ready_status,
    unknown_status,
    unreachable_taints,
)
from localcluster.kubelet.pods import PodAddresses, is_started, is_terminal, running_status
from localcluster.userdata import NodeBootstrap, UserDataError, parse_encoded_user_data
from shared.backoff import Backoff
from shared.informer import Informer, Obj, object_key
from shared.logs import get_logger
from shared.tasks import cancel_and_wait

MERGE_PATCH: Final = "application/merge-patch+json"
FailToJoin = Callable[[Instance], bool]

_log = get_logger(__name__)


_session: aioboto3.Session | None = None


def _aws_session() -> aioboto3.Session:
    """One session per process: a new one reloads botocore's EC2 model (0.1-0.4 s, blocking)."""
    global _session
    if _session is None:
        _session = aioboto3.Session()
    return _session


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class KubeletConfig:
    """Timings of the simulated nodes (seconds); the defaults suit the demo."""

    boot_delay: float = 5.0
    # From StartInstances on a stopped (or hibernated) instance to its kubelet registering: no
    # image pulls, but the OS boots (or resumes) again; warm pools (docs/warm-pools.md) rely on it.
    boot_from_stopped_delay: float = 2.0
    container_start_delay: float = 0.5
    heartbeat_interval: float = 10.0
    poll_interval: float = 1.0
    node_removal_delay: float = 5.0
    # kube-controller-manager's --node-monitor-grace-period: a stopped kubelet's Node goes
    # Unknown this long after its last heartbeat.
    node_monitor_grace_period: float = 40.0
    # Upper bound on how long a deleted pod's grace period is honoured (0: remove at once).
    max_termination_grace: float = math.inf
    software: NodeSoftware = field(default_factory=NodeSoftware)

    @classmethod
    def immediate(cls, heartbeat_interval: float = 1.0, poll_interval: float = 0.1) -> KubeletConfig:
        """No delays at all: what tests want."""
        return cls(
            boot_delay=0.0,
            boot_from_stopped_delay=0.0,
            container_start_delay=0.0,
            heartbeat_interval=heartbeat_interval,
            poll_interval=poll_interval,
            node_removal_delay=0.0,
            max_termination_grace=0.0,
            node_monitor_grace_period=4 * heartbeat_interval,
        )


class MemberState(enum.Enum):
    BOOTING = "booting"  # instance seen, kubelet not registered yet
    REFUSED = "refused"  # will never join (fail_to_join, bad user data, other cluster)
    JOINED = "joined"  # Node registered, heartbeats flowing
    LOST = "lost"  # instance gone: Node NotReady, waiting for removal
    REMOVED = "removed"  # Node deleted after the instance went away
    EVICTED = "evicted"  # Node deleted by someone else while the instance ran


@dataclass
class _Member:
    instance: Instance
    first_seen: float
    state: MemberState = MemberState.BOOTING
    shape: NodeShape | None = None
    ready_since: datetime | None = None
    last_heartbeat: float = 0.0
    lost_since: float = 0.0
    marked_unknown: bool = False
    restarted: bool = False  # started again after a stop: boots in boot_from_stopped_delay
    stopped: bool = False  # the kubelet hangs: no heartbeats, no pod work (stop_kubelet)
    reported: dict[str, ReportedCondition] = field(default_factory=dict)  # report_condition


class _PodEvents:
    """Informer handler: every change marks the pod for the pod worker."""

    def __init__(self, owner: Kubelets) -> None:
        self._owner = owner

    def on_added(self, obj: Obj) -> None:
        self._owner._mark_pod(object_key(obj))

    def on_modified(self, old: Obj, new: Obj) -> None:
        self._owner._mark_pod(object_key(new))

    def on_deleted(self, obj: Obj) -> None:
        self._owner._mark_pod(object_key(obj))
        uid = (obj.get("metadata") or {}).get("uid")
        if uid:
            self._owner._addresses.release(str(uid))


class Kubelets:
    """The kubelets of every instance tagged for ``cluster`` (see the module docstring).

    ``api_client`` is a kubernetes-asyncio ApiClient the caller owns; ``ec2_client_kwargs`` are
    the keyword arguments of an aioboto3 EC2 client (``MotoEC2.client_kwargs()``), which must
    include ``region_name``. ``fail_to_join`` is a predicate or a collection of instance ids.
    """

    def __init__(
        self,
        api_client: k8s.ApiClient,
        *,
        cluster: str,
        ec2_client_kwargs: Mapping[str, str],
        config: KubeletConfig | None = None,
        fail_to_join: FailToJoin | Collection[str] | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.cluster = cluster
        self.config = config or KubeletConfig()
        self.region = ec2_client_kwargs["region_name"]
        self._ec2_kwargs = dict(ec2_client_kwargs)
        # Typed as Any: the generated stubs know neither dict bodies nor _content_type.
        self._core: Any = k8s.CoreV1Api(api_client)
        self.fail_to_join = fail_to_join
        self._clock = clock
        self._members: dict[str, _Member] = {}
        # Instances seen stopped: when they run again, they boot from stopped.
        self._stopped_seen: set[str] = set()
        self._by_node: dict[str, _Member] = {}
        self._addresses = PodAddresses()
        self._pods = Informer(self._core.list_pod_for_all_namespaces, _PodEvents(self), name="kubelet-pods")
        self._dirty: set[str] = set()
        self._due: dict[str, tuple[float, str]] = {}
        self._deleting_since: dict[str, float] = {}
        self._started_uids: set[str] = set()
        self._wake = asyncio.Event()
        self._synced = asyncio.Event()
        self._stack = contextlib.AsyncExitStack()
        self._tasks: list[asyncio.Task[None]] = []
        self._inventory: EC2Inventory | None = None
        self.errors = 0

    # Lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the EC2 client and start the instance loop, the pod informer and the pod worker."""
        ec2 = await self._stack.enter_async_context(_aws_session().client("ec2", **self._ec2_kwargs))
        self._inventory = EC2Inventory(ec2, self.cluster)
        self._pods.start()
        loop_tasks = ((self._instance_loop(), "kubelets-instances"), (self._pod_worker(), "kubelets-pods"))
        self._tasks = [asyncio.create_task(coro, name=name) for coro, name in loop_tasks]

    async def stop(self) -> None:
        """Stop every task and close the EC2 client; safe to call twice. Nodes are left as they are."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            await cancel_and_wait(task)
        await self._pods.stop()
        await self._stack.aclose()

    async def __aenter__(self) -> Kubelets:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # Introspection, for tests -------------------------------------------------------------

    def node_name(self, instance_id: str) -> str | None:
        """The Node registered for ``instance_id``, if it joined."""
        member = self._members.get(instance_id)
        return member.shape.name if member is not None and member.shape is not None else None

    def state(self, instance_id: str) -> MemberState | None:
        member = self._members.get(instance_id)
        return member.state if member is not None else None

    # Unhealthy nodes, for tests --------------------------------------------------------------

    def _joined(self, node_name: str) -> _Member:
        member = self._by_node.get(node_name)
        if member is None or member.state is not MemberState.JOINED:
            raise KeyError(f"no running kubelet for node {node_name!r}")
        return member

    def stop_kubelet(self, node_name: str) -> None:
        """The node's kubelet hangs (the instance keeps running): no heartbeats, pods left as
        they are; ``node_monitor_grace_period`` later the Node goes Ready=Unknown, unreachable."""
        member = self._joined(node_name)
        member.stopped = True
        _log.info("kubelet.stopped", node=node_name)

    async def start_kubelet(self, node_name: str) -> None:
        """The hung kubelet recovers: Ready again (a new transition), unreachable taints cleared."""
        member = self._joined(node_name)
        member.stopped = False
        member.marked_unknown = False
        member.ready_since = self._clock()
        await self._clear_unreachable(node_name)
        await self._post_ready(member, asyncio.get_running_loop().time())
        self._mark_all_pods()
        _log.info("kubelet.started", node=node_name)

    async def report_condition(
        self, node_name: str, kind: str, status: str | None, reason: str = "", message: str = ""
    ) -> None:
        """Report ``kind`` with ``status`` from now on (None: back to healthy), posted at once.

        The transition time moves only when the status changes, as a kubelet's does.
        """
        member = self._joined(node_name)
        now = self._clock()
        previous = member.reported.get(kind)
        if status is None:
            member.reported.pop(kind, None)
            if kind == "Ready" and previous is not None:
                member.ready_since = now
        else:
            since = previous.since if previous is not None and previous.status == status else now
            member.reported[kind] = ReportedCondition(status, reason or kind, message, since)
        await self._post_ready(member, asyncio.get_running_loop().time())

    async def wait_synced(self) -> None:
        """Wait for the first EC2 poll and the first pod list."""
        await self._synced.wait()
        await self._pods.wait_synced()

    # Instances ----------------------------------------------------------------------------

    async def _instance_loop(self) -> None:
        backoff = Backoff(base=self.config.poll_interval or 0.1, cap=5.0)
        while True:
            try:
                await self.sync_instances()
                backoff.reset()
                self._synced.set()
                delay = self.config.poll_interval
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.errors += 1
                delay = backoff.next_delay()
                _log.warning("kubelets.sync_failed", error=repr(exc), retry_in=round(delay, 3))
            await asyncio.sleep(delay)

    async def sync_instances(self) -> None:
        """One pass: join booted instances, beat hearts, retire nodes of vanished instances."""
        assert self._inventory is not None, "start() first"
        instances = await self._inventory.instances()
        now = asyncio.get_running_loop().time()
        listed = {instance.instance_id: instance for instance in instances}
        joining: list[_Member] = []
        for instance in instances:
            member = self._members.get(instance.instance_id)
            if instance.live:
                if member is None or member.state in (MemberState.LOST, MemberState.REMOVED):
                    # New, or started again after a stop: the kubelet boots (again) and registers.
                    restarted = instance.instance_id in self._stopped_seen
                    self._stopped_seen.discard(instance.instance_id)
                    member = _Member(instance, first_seen=now, restarted=restarted)
                    self._members[instance.instance_id] = member
                member.instance = instance
                delay = self.config.boot_from_stopped_delay if member.restarted else self.config.boot_delay
                booted = instance.running and now - member.first_seen >= delay
                if member.state is MemberState.BOOTING and booted:
                    joining.append(member)
            else:
                if instance.state in STOPPED_STATES:
                    self._stopped_seen.add(instance.instance_id)
                if member is not None:
                    self._lose(member, now)
        for instance_id, member in list(self._members.items()):
            if instance_id not in listed:
                self._lose(member, now)
        await self._each("join", joining, self._join)
        beats = [
            m
            for m in self._members.values()
            if m.state is MemberState.JOINED
            and not m.stopped
            and now - m.last_heartbeat >= self.config.heartbeat_interval
        ]
        await self._each("heartbeat", beats, lambda member: self._post_ready(member, now))
        silent = [
            m
            for m in self._members.values()
            if m.state is MemberState.JOINED
            and m.stopped
            and not m.marked_unknown
            and now - m.last_heartbeat >= self.config.node_monitor_grace_period
        ]
        await self._each("monitor", silent, self._mark_unknown)
        lost = [m for m in self._members.values() if m.state is MemberState.LOST]
        await self._each("retire", lost, lambda member: self._retire(member, now))

    async def _each(
        self, step: str, members: list[_Member], action: Callable[[_Member], Awaitable[None]]
    ) -> None:
        """Run ``action`` on every member at once; one node's failure must not stall the others."""
        results = await asyncio.gather(*(action(member) for member in members), return_exceptions=True)
        for member, result in zip(members, results, strict=True):
            if isinstance(result, Exception):
                self.errors += 1
                _log.warning(
                    "kubelet.step_failed", step=step, instance=member.instance.instance_id, error=repr(result)
                )

    def _refuses(self, instance: Instance) -> bool:
        rule = self.fail_to_join
        if rule is None:
            return False
        if callable(rule):
            return bool(rule(instance))
        return instance.instance_id in rule

    async def _join(self, member: _Member) -> None:
        assert self._inventory is not None
        instance = member.instance
        log = _log.bind(instance=instance.instance_id, instance_type=instance.instance_type)
        if self._refuses(instance):
            member.state = MemberState.REFUSED
            log.info("kubelet.refused_to_join", reason="fail_to_join")
            return
        encoded = await self._inventory.user_data(instance)
        try:
            bootstrap = parse_encoded_user_data(encoded) if encoded else NodeBootstrap()
        except UserDataError as exc:
            member.state = MemberState.REFUSED
            log.error("kubelet.bad_user_data", field=exc.path, error=exc.message)
            return
        if bootstrap.cluster is not None and bootstrap.cluster != self.cluster:
            member.state = MemberState.REFUSED
            log.error("kubelet.other_cluster", user_data_cluster=bootstrap.cluster)
            return
        instance_type = await self._inventory.instance_type(instance.instance_type)
        shape = node_shape(instance, instance_type, bootstrap, self.region, self.config.software)
        try:
            await self._core.create_node(node_object(shape))
        except ApiException as exc:
            if exc.status != 409:
                raise
            log.info("kubelet.node_exists", node=shape.name)
            await self._clear_unreachable(shape.name)
        member.shape = shape
        member.ready_since = self._clock()
        member.state = MemberState.JOINED
        self._by_node[shape.name] = member
        await self._post_ready(member, asyncio.get_running_loop().time())
        log.info("kubelet.joined", node=shape.name, allocatable=shape.allocatable.to_api())
        # Pods may already be bound to the new node (or to a re-registered one).
        self._mark_all_pods()

    async def _post_ready(self, member: _Member, now: float) -> None:
        assert member.shape is not None
        assert member.ready_since is not None
        body = ready_status(
            member.shape, self._clock(), member.ready_since, self.config.software, member.reported
        )
        try:
            await self._core.patch_node_status(member.shape.name, body, _content_type=MERGE_PATCH)
        except ApiException as exc:
            if exc.status != 404:
                raise
            # Deleted under a running kubelet: it does not re-register; pod GC clears its pods.
            member.state = MemberState.EVICTED
            _log.info("kubelet.node_deleted_externally", node=member.shape.name)
            await self._delete_pods_on(member.shape.name)
            return
        member.last_heartbeat = now

    def _lose(self, member: _Member, now: float) -> None:
        if member.state is MemberState.JOINED:
            member.state = MemberState.LOST
            member.lost_since = now
            instance = member.instance
            _log.info("kubelet.instance_gone", instance=instance.instance_id, state=instance.state)
        elif member.state in (MemberState.BOOTING, MemberState.REFUSED, MemberState.EVICTED):
            self._members.pop(member.instance.instance_id, None)

    async def _mark_unknown(self, member: _Member) -> None:
        """What the node lifecycle controller does to a Node whose kubelet went silent."""
        assert member.shape is not None
        name = member.shape.name
        current = await self._read_node(name)
        if current is None:
            return
        await self._taint_and_mark_unknown(name, current)
        member.marked_unknown = True
        _log.info("kubelet.node_status_unknown", node=name)

    async def _taint_and_mark_unknown(self, name: str, current: Obj) -> None:
        """Taint the Node unreachable, then set Ready=Unknown.

        Taints go first so that no reader ever sees an Unknown node without them (the order
        kube-controller-manager's two loops give no guarantee of, but the tests rely on one).
        """
        taints = unreachable_taints((current.get("spec") or {}).get("taints"), self._clock())
        await self._core.patch_node(name, {"spec": {"taints": taints}}, _content_type=MERGE_PATCH)
        await self._core.patch_node_status(
            name,
            unknown_status(self._clock(), (current.get("status") or {}).get("conditions")),
            _content_type=MERGE_PATCH,
        )

    async def _retire(self, member: _Member, now: float) -> None:
        """Mark the node NotReady (once), then delete its pods and the Node when the delay is up."""
        assert member.shape is not None
        name = member.shape.name
        if not member.marked_unknown:
            member.marked_unknown = True
            try:
                current = await self._read_node(name)
                if current is None:
                    # Already deleted (the launcher deletes the Node after TerminateInstances):
                    # nothing to mark, only its pods to collect, as pod GC would.
                    await self._delete_pods_on(name)
                    self._forget(member, name, "kubelet.node_already_deleted")
                    return
                await self._taint_and_mark_unknown(name, current)
                _log.info("kubelet.node_not_ready", node=name)
            except ApiException as exc:
                if exc.status != 404:
                    member.marked_unknown = False
                    raise
        if now - member.lost_since < self.config.node_removal_delay:
            return
        await self._delete_pods_on(name)
        try:
            await self._core.delete_node(name)
        except ApiException as exc:
            if exc.status != 404:
                raise
        self._forget(member, name, "kubelet.node_deleted")

    def _forget(self, member: _Member, name: str, event: str) -> None:
        """The Node is gone for good (its pods already deleted): stop tracking it."""
        member.state = MemberState.REMOVED
        self._by_node.pop(name, None)
        _log.info(event, node=name)

    async def _clear_unreachable(self, name: str) -> None:
        """Drop the unreachable taints of a node whose kubelet is back, as the lifecycle controller does."""
        current = await self._read_node(name)
        if current is None:
            return
        taints = (current.get("spec") or {}).get("taints") or []
        kept = [t for t in taints if t.get("key") != UNREACHABLE_TAINT]
        if len(kept) != len(taints):
            await self._core.patch_node(name, {"spec": {"taints": kept}}, _content_type=MERGE_PATCH)

    async def _read_node(self, name: str) -> Obj | None:
        """The Node as plain JSON, or None when it does not exist.

        With ``_preload_content=False`` kubernetes-asyncio hands back the raw response whatever
        its status, so an error arrives as a ``Status`` body, not as an ApiException: the status
        code must be checked here before the body is read as a Node.
        """
        response = await self._core.read_node(name, _preload_content=False)
        try:
            if response.status == 404:
                return None
            if not 200 <= response.status <= 299:
                raise ApiException(status=response.status, reason=str(response.reason or ""))
            body: Obj = orjson.loads(await response.read())
        finally:
            response.release()
        return body

    async def _delete_pods_on(self, node_name: str) -> None:
        pods = [
            pod for pod in self._pods.store().values() if (pod.get("spec") or {}).get("nodeName") == node_name
        ]
        await asyncio.gather(*(self._delete_pod(pod) for pod in pods))

    # Pods ---------------------------------------------------------------------------------

    def _mark_pod(self, key: str) -> None:
        self._dirty.add(key)
        self._wake.set()

    def _mark_all_pods(self) -> None:
        self._dirty.update(self._pods.store().keys())
        self._wake.set()

    async def _pod_worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            timeout = None
            if self._due:
                timeout = max(0.0, min(t for t, _ in self._due.values()) - loop.time())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            self._wake.clear()
            dirty, self._dirty = self._dirty, set()
            now = loop.time()
            for key in dirty:
                self._plan(key, now)
            ready = [(key, action) for key, (at, action) in self._due.items() if at <= now]
            for key, _ in ready:
                del self._due[key]
            results = await asyncio.gather(
                *(self._act(key, action) for key, action in ready), return_exceptions=True
            )
            for (key, action), result in zip(ready, results, strict=True):
                if isinstance(result, Exception):
                    self.errors += 1
                    _log.warning("kubelet.pod_action_failed", pod=key, action=action, error=repr(result))
                    self._due[key] = (loop.time() + 0.5, action)

    def _plan(self, key: str, now: float) -> None:
        """Decide what the pod at ``key`` needs next, and when."""
        pod = self._pods.store().get(key)
        member = self._by_node.get(str(((pod or {}).get("spec") or {}).get("nodeName") or ""))
        if pod is None or member is None or member.state is not MemberState.JOINED or member.stopped:
            self._due.pop(key, None)
            self._deleting_since.pop(key, None)
            return
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            since = self._deleting_since.setdefault(key, now)
            grace = min(float(meta.get("deletionGracePeriodSeconds") or 0), self.config.max_termination_grace)
            self._due[key] = (since + grace, "delete")
        elif is_terminal(pod) or is_started(pod) or str(meta.get("uid")) in self._started_uids:
            self._due.pop(key, None)
        elif key not in self._due:
            self._due[key] = (now + self.config.container_start_delay, "start")

    async def _act(self, key: str, action: str) -> None:
        pod = self._pods.store().get(key)
        if pod is None:
            return
        if action == "delete":
            await self._delete_pod(pod)
            self._deleting_since.pop(key, None)
            return
        member = self._by_node.get(str((pod.get("spec") or {}).get("nodeName") or ""))
        if member is None or member.shape is None or is_started(pod):
            return
        meta = pod.get("metadata") or {}
        uid = str(meta.get("uid") or "")
        host_ip = member.shape.instance.private_ip
        body = running_status(pod, host_ip, self._addresses.acquire(uid), self._clock())
        try:
            await self._core.patch_namespaced_pod_status(
                meta["name"], meta.get("namespace", "default"), body, _content_type=MERGE_PATCH
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            return
        self._started_uids.add(uid)

    async def _delete_pod(self, pod: Obj) -> None:
        meta = pod.get("metadata") or {}
        try:
            await self._core.delete_namespaced_pod(
                meta["name"], meta.get("namespace", "default"), grace_period_seconds=0
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
        self._started_uids.discard(str(meta.get("uid") or ""))
        self._addresses.release(str(meta.get("uid") or ""))


__all__ = ["FailToJoin", "KubeletConfig", "Kubelets", "MemberState", "utc_now"]
