"""Well-known node label, taint and annotation keys.

One place for every key jitnode reads or writes, so the extender, the launcher, the local
cluster and the manifests agree on spelling. Kubernetes' own keys come first, then ours
under ``jitnode.io/`` (shaped like Karpenter's ``karpenter.sh/`` and ``karpenter.k8s.aws/``).
"""

from __future__ import annotations

from typing import Final

GROUP: Final = "jitnode.io"

# Kubernetes well-known labels.
INSTANCE_TYPE: Final = "node.kubernetes.io/instance-type"
ZONE: Final = "topology.kubernetes.io/zone"
REGION: Final = "topology.kubernetes.io/region"
ARCH: Final = "kubernetes.io/arch"
OS: Final = "kubernetes.io/os"
HOSTNAME: Final = "kubernetes.io/hostname"

# jitnode labels, set on every node it launches.
CAPACITY_TYPE: Final = "jitnode.io/capacity-type"
NODEPOOL: Final = "jitnode.io/nodepool"
NODECLAIM: Final = "jitnode.io/nodeclaim"
INSTANCE_FAMILY: Final = "jitnode.io/instance-family"
INSTANCE_SIZE: Final = "jitnode.io/instance-size"
INSTANCE_CATEGORY: Final = "jitnode.io/instance-category"
INSTANCE_GENERATION: Final = "jitnode.io/instance-generation"
INSTANCE_CPU: Final = "jitnode.io/instance-cpu"
INSTANCE_MEMORY: Final = "jitnode.io/instance-memory"

CAPACITY_TYPE_ON_DEMAND: Final = "on-demand"
CAPACITY_TYPE_SPOT: Final = "spot"

# Labels the launcher knows the value of before a node exists (it can plan on them).
WELL_KNOWN_LABELS: Final = frozenset(
    {
        INSTANCE_TYPE,
        ZONE,
        REGION,
        ARCH,
        OS,
        CAPACITY_TYPE,
        NODEPOOL,
        INSTANCE_FAMILY,
        INSTANCE_SIZE,
        INSTANCE_CATEGORY,
        INSTANCE_GENERATION,
        INSTANCE_CPU,
        INSTANCE_MEMORY,
    }
)

# Taint the launcher puts on a node it drains (NoSchedule, as Karpenter's
# ``karpenter.sh/disrupted``); the extender's filter fails such nodes.
DISRUPTED_TAINT: Final = "jitnode.io/disrupted"
# PreferNoSchedule taint the launcher keeps on a node about to be disrupted (it expires soon),
# so kube-scheduler's TaintToleration score steers new pods elsewhere while room remains.
DISRUPTION_CANDIDATE_TAINT: Final = "jitnode.io/disruption-candidate"
# Annotation the launcher sets on a node it is about to delete (before the taint lands).
DISRUPTING_ANNOTATION: Final = "jitnode.io/disrupting"
# Opt-out of voluntary disruption, on a pod or a node.
DO_NOT_DISRUPT_ANNOTATION: Final = "jitnode.io/do-not-disrupt"
# Finalizer the launcher keeps on NodeClaims until their instance is terminated.
TERMINATION_FINALIZER: Final = "jitnode.io/termination"

# EC2 tags on every instance and launch template jitnode creates.
TAG_CLUSTER: Final = "jitnode.io/cluster"
TAG_NODEPOOL: Final = "jitnode.io/nodepool"
TAG_NODECLAIM: Final = "jitnode.io/nodeclaim"
TAG_NODECLASS: Final = "jitnode.io/ec2nodeclass"
TAG_MANAGED_BY: Final = "jitnode.io/managed-by"

# Namespace label that opts a namespace's pods into the jitnode scheduler (the mutating webhook
# sets their schedulerName); the value that enables it; and that scheduler profile's name.
SCHEDULING_LABEL: Final = "jitnode.io/scheduling"
SCHEDULING_ENABLED: Final = "enabled"
SCHEDULER_NAME: Final = "jitnode-scheduler"
# Pod annotation value (under SCHEDULING_LABEL) that keeps one pod on its own scheduler.
SCHEDULING_DISABLED: Final = "disabled"

# Warm pools (see ``launcher/warmpool``). NodeClaim label ("true") while the claim's instance is
# held in its NodePool's warm pool; a warm claim's Node keeps the taint (NoSchedule) while it is
# cordoned; the annotation records, on a claim taken from the pool, the pods it was started for.
WARM_LABEL: Final = "jitnode.io/warm"
WARM_TAINT: Final = "jitnode.io/warm"
WARM_SERVES_ANNOTATION: Final = "jitnode.io/warm-serves"
# On a claim returned to the warm pool on scale-in (reuseOnScaleIn): when it went back. It was
# launched for demand, so the pool's sizing still counts it as demand.
WARM_RETURNED_ANNOTATION: Final = "jitnode.io/warm-returned"
# On a claim taken from the warm pool in a hedged start (``spec.warmPool.hedgedStarts``): the claim
# the start was for. Whichever of them ends up empty goes back to the pool.
WARM_HEDGED_ANNOTATION: Final = "jitnode.io/warm-hedged"
