"""The invariants of issue 12 as pure decisions: plain snapshots in, violations out.

Kept apart from the watches and API calls that gather the snapshots
(:mod:`localcluster.chaos.observer`, :mod:`localcluster.chaos.invariants`) so that every
violation kind can be unit-tested exhaustively, without a cluster.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from shared import labels
from shared.errors import FieldError
from shared.podaffinity import label_selector
from shared.requirements import Requirements

LEAKED_INSTANCE: Final = "leaked-instance"
INSTANCE_WITHOUT_CLAIM: Final = "instance-without-claim"
MORE_INSTANCES_THAN_CLAIMS: Final = "more-instances-than-claims"
POD_NOT_RUNNING: Final = "pod-not-running"
PDB_VIOLATED: Final = "pdb-violated"
DEMAND_LOST: Final = "demand-lost"
INVARIANTS: Final = (
    LEAKED_INSTANCE,
    INSTANCE_WITHOUT_CLAIM,
    MORE_INSTANCES_THAN_CLAIMS,
    POD_NOT_RUNNING,
    PDB_VIOLATED,
    DEMAND_LOST,
)
# EC2 states of an instance that is gone or going: it no longer counts against a claim.
GONE_STATES: Final = frozenset({"shutting-down", "terminated"})


@dataclass(frozen=True, slots=True)
class Violation:
    invariant: str  # one of INVARIANTS
    detail: str


# Instances and claims --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InstanceView:
    id: str
    state: str
    cluster: str | None  # the TAG_CLUSTER tag
    nodeclaim: str | None  # the TAG_NODECLAIM tag
    private_dns_name: str = ""
    state_reason: str = ""  # StateReason.Code: "Server.*" when EC2 itself ended the instance

    @property
    def lost_to_ec2(self) -> bool:
        """Gone through no request of anyone's: a host failure, a spot interruption."""
        return self.state in GONE_STATES and self.state_reason.startswith("Server.")

    @classmethod
    def from_described(cls, raw: Mapping[str, Any]) -> InstanceView:
        """From one DescribeInstances instance."""
        tags = {t.get("Key"): t.get("Value") for t in raw.get("Tags") or []}
        return cls(
            id=str(raw.get("InstanceId", "")),
            state=str((raw.get("State") or {}).get("Name", "")),
            cluster=tags.get(labels.TAG_CLUSTER),
            nodeclaim=tags.get(labels.TAG_NODECLAIM),
            private_dns_name=str(raw.get("PrivateDnsName") or ""),
            state_reason=str((raw.get("StateReason") or {}).get("Code") or ""),
        )


@dataclass(frozen=True, slots=True)
class ClaimView:
    name: str
    instance_id: str | None  # status.instanceID, else the id at the end of status.providerID

    @classmethod
    def from_object(cls, raw: Mapping[str, Any]) -> ClaimView:
        status = raw.get("status") or {}
        instance_id = status.get("instanceID") or None
        provider_id = status.get("providerID") or ""
        if not instance_id and provider_id:
            instance_id = provider_id.rsplit("/", 1)[-1] or None  # aws:///<zone>/<instance id>
        return cls(name=str((raw.get("metadata") or {}).get("name", "")), instance_id=instance_id)


def instance_violations(
    instances: Iterable[InstanceView], claims: Iterable[ClaimView], cluster: str
) -> list[Violation]:
    """Every live instance tagged for ``cluster`` belongs to a NodeClaim that records it.

    *leaked*: no claim records it and its NodeClaim tag names no claim (what leak collection
    should have terminated); *without claim*: its tagged claim exists but records another
    instance or none (a duplicate launch, which leak collection cannot see); and never more
    live instances than claims.
    """
    claims = list(claims)
    claim_names = {c.name: c for c in claims}
    recorded = {c.instance_id for c in claims if c.instance_id}
    ours = sorted(
        (i for i in instances if i.cluster == cluster and i.state not in GONE_STATES), key=lambda i: i.id
    )
    violations = []
    for instance in ours:
        if instance.id in recorded:
            continue
        claim = claim_names.get(instance.nodeclaim or "")
        if claim is None:
            violations.append(
                Violation(
                    LEAKED_INSTANCE,
                    f"{instance.id} ({instance.state}, tagged nodeclaim={instance.nodeclaim}) "
                    "has no NodeClaim after leak collection",
                )
            )
        else:
            violations.append(
                Violation(
                    INSTANCE_WITHOUT_CLAIM,
                    f"{instance.id} ({instance.state}) is tagged for NodeClaim {claim.name}, "
                    f"which records {claim.instance_id or 'no instance'}",
                )
            )
    if len(ours) > len(claims):
        violations.append(
            Violation(
                MORE_INSTANCES_THAN_CLAIMS,
                f"{len(ours)} live instances ({', '.join(i.id for i in ours)}) for {len(claims)} NodeClaims",
            )
        )
    return violations


# PodDisruptionBudgets --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PodView:
    uid: str
    namespace: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    phase: str = "Pending"
    node_name: str = ""
    ready: bool = False
    deleting: bool = False  # deletionTimestamp set

    @property
    def healthy(self) -> bool:
        """What the disruption controller counts: Ready and not being deleted."""
        return self.ready and not self.deleting

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def from_object(cls, raw: Mapping[str, Any]) -> PodView:
        meta = raw.get("metadata") or {}
        status = raw.get("status") or {}
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
        )
        return cls(
            uid=str(meta.get("uid", "")),
            namespace=str(meta.get("namespace", "")),
            name=str(meta.get("name", "")),
            labels=dict(meta.get("labels") or {}),
            phase=str(status.get("phase") or "Pending"),
            node_name=str((raw.get("spec") or {}).get("nodeName") or ""),
            ready=ready,
            deleting=bool(meta.get("deletionTimestamp")),
        )


@dataclass(frozen=True, slots=True)
class BudgetView:
    namespace: str
    name: str
    selector: Requirements | None  # None: a null selector, which selects no pod
    required: int  # healthy pods the budget needs

    def selects(self, pod: PodView) -> bool:
        return (
            self.selector is not None
            and pod.namespace == self.namespace
            and self.selector.matches(pod.labels)
        )

    @classmethod
    def from_object(cls, raw: Mapping[str, Any]) -> BudgetView:
        """An integer ``minAvailable`` is taken as is; percentages and ``maxUnavailable`` are
        relative to the controllers' desired replicas, which the disruption controller resolves
        into ``status.desiredHealthy`` (the number evictions are judged against)."""
        meta = raw.get("metadata") or {}
        spec = raw.get("spec") or {}
        min_available = spec.get("minAvailable")
        if isinstance(min_available, int) and not isinstance(min_available, bool):
            required = min_available
        else:
            required = int((raw.get("status") or {}).get("desiredHealthy") or 0)
        try:
            selector = label_selector(spec.get("selector"), "spec.selector")
        except FieldError:
            selector = None
        return cls(
            namespace=str(meta.get("namespace", "")),
            name=str(meta.get("name", "")),
            selector=selector,
            required=required,
        )


@dataclass(frozen=True, slots=True)
class Breach:
    """A moment a PodDisruptionBudget was broken, and the pods whose loss broke it."""

    budget: str  # namespace/name
    required: int
    healthy: int
    lost: tuple[tuple[str, str], ...]  # (pod namespace/name, the node it was on)

    def violation(self) -> Violation:
        pods = ", ".join(f"{pod} (on {node or 'no node'})" for pod, node in self.lost)
        return Violation(
            PDB_VIOLATED,
            f"PodDisruptionBudget {self.budget} needs {self.required} healthy pods, "
            f"{self.healthy} left after {pods} went",
        )


def budget_breaches(
    budgets: Iterable[BudgetView],
    changed: Mapping[str, tuple[PodView | None, PodView | None]],
    current: Iterable[PodView],
    excused: Collection[str] = (),
) -> list[Breach]:
    """Budgets broken by one batch of pod changes (one watch event, or a relist's difference).

    ``changed`` maps a pod uid to its view before and after (None: absent). A budget is broken
    when a pod it covers stopped being healthy, the test did not declare that loss (``excused``
    uids), and fewer healthy pods than it requires remain in ``current``. Healthy pods that
    merely have not arrived yet (a scale-up) break nothing: only a loss does.
    """
    current = list(current)
    breaches = []
    for budget in budgets:
        lost = sorted(
            (before.key, before.node_name)
            for uid, (before, after) in changed.items()
            if before is not None
            and before.healthy
            and budget.selects(before)
            and not (after is not None and after.healthy)
            and uid not in excused
        )
        if not lost:
            continue
        healthy = sum(1 for p in current if p.healthy and budget.selects(p))
        if healthy < budget.required:
            breaches.append(
                Breach(f"{budget.namespace}/{budget.name}", budget.required, healthy, tuple(lost))
            )
    return breaches


def budget_violations(breaches: Iterable[Breach], involuntary_nodes: Collection[str] = ()) -> list[Violation]:
    """The breaches jitnode answers for: not those where every lost pod was on a node whose
    instance EC2 itself took away (a host failure, a spot interruption). A budget limits
    voluntary disruptions only, as in Kubernetes: no autoscaler can prevent a machine dying."""
    return [
        b.violation() for b in breaches if not all(node and node in involuntary_nodes for _, node in b.lost)
    ]


def nodes_lost_to_ec2(instances: Iterable[InstanceView], node_instances: Mapping[str, str]) -> set[str]:
    """Names of the nodes whose instances EC2 itself ended: by the instance id each node's
    providerID named (``node_instances``), and by private DNS name, the name EKS nodes get."""
    lost = [i for i in instances if i.lost_to_ec2]
    ids = {i.id for i in lost}
    return {i.private_dns_name for i in lost if i.private_dns_name} | {
        node for node, instance_id in node_instances.items() if instance_id in ids
    }


def declared(namespace: str, selector: Mapping[str, str], pod: PodView) -> bool:
    """Whether the test's declaration (``RunObserver.expect_fewer``: a namespace and matchLabels)
    covers ``pod``."""
    return pod.namespace == namespace and all(pod.labels.get(k) == v for k, v in selector.items())


# Pending pods and demand -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PodFate:
    """What became of one pod seen during the run."""

    uid: str
    key: str  # namespace/name
    phase: str
    ever_pending: bool
    served: bool  # was ever bound to a node or Running: capacity was found for it
    running: bool  # Running now
    gone: bool  # deleted
    removed_by_test: bool  # its removal was declared by the test (RunObserver.expect_fewer)


def pods_not_running(fates: Mapping[str, PodFate], pending_at_check: Iterable[str]) -> list[Violation]:
    """Pods pending when the check started that still exist and are not Running (call at the bound).

    A pod that completed (``Succeeded``) ran; one deleted meanwhile is no longer owed capacity.
    """
    violations = []
    for uid in sorted(pending_at_check):
        fate = fates.get(uid)
        if fate is None or fate.gone or fate.running or fate.phase == "Succeeded":
            continue
        violations.append(Violation(POD_NOT_RUNNING, f"pod {fate.key} is {fate.phase}, not Running"))
    return violations


def demand_lost(fates: Iterable[PodFate], reported: Collection[str]) -> list[Violation]:
    """Every pod that was ever pending was served, removed by the test, or reported unschedulable.

    ``reported`` holds the uids of pods with a ``FailedProvisioning`` Warning Event, the launcher's
    way of saying why it cannot serve a pod. Served means bound to a node or Running: a pod bound
    to a node that then died was served, and its replacement is new demand, judged on its own.
    """
    violations = []
    for fate in sorted(fates, key=lambda f: f.key):
        if not fate.ever_pending or fate.served or fate.removed_by_test or fate.uid in reported:
            continue
        if fate.gone:
            what = "was deleted while pending, not by the test"
        elif fate.phase == "Pending":
            what = "is still pending"
        else:
            what = f"ended {fate.phase} without running"
        violations.append(
            Violation(DEMAND_LOST, f"pod {fate.key} {what}, and no FailedProvisioning event says why")
        )
    return violations
