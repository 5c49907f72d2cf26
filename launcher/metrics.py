"""The launcher's Prometheus metrics (names are part of the dashboards' contract)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

NODECLAIMS = Gauge("jitnode_launcher_nodeclaims", "NodeClaims by phase", ["phase"])
LAUNCH_SECONDS = Histogram(
    "jitnode_launcher_launch_seconds",
    "Time from a claim's first demand to a launch milestone",
    ["milestone"],  # fleet_returned | registered | ready
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 900),
)
FLEET_SECONDS = Histogram(
    "jitnode_launcher_create_fleet_seconds",
    "Duration of one CreateFleet call",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
)
LAUNCHES = Counter("jitnode_launcher_launches_total", "CreateFleet calls by outcome", ["outcome"])
PLAN_COST = Gauge("jitnode_launcher_plan_cost_per_hour", "Cost per hour of the last plan's new claims")
PLAN_GAP = Gauge(
    "jitnode_launcher_plan_gap_ratio",
    "Last plan's cost over the best lower bound known: the exact optimum when proven, else the LP bound",
)
PLAN_GAPS = Histogram(
    "jitnode_launcher_plan_gap",
    "Each plan's cost over the best lower bound known (1 is proven optimal)",
    buckets=(1.0, 1.00001, 1.001, 1.005, 1.01, 1.02, 1.05, 1.1, 1.25, 1.5, 2.0),
)
EXACT_PLANS = Counter(
    "jitnode_launcher_exact_plans_total",
    "Pools of plans by what the exact solver did: optimal (proven), improved (cheaper, unproven), "
    "timeout, rejected (its plan failed a check) or skipped (too many pods)",
    ["outcome"],
)
PLAN_SECONDS = Histogram(
    "jitnode_launcher_plan_seconds",
    "Time to plan once",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
PENDING_DEMAND = Gauge("jitnode_launcher_pending_pods", "Pods in the demand book")
PLANNED_PODS = Counter(
    "jitnode_launcher_planned_pods_total",
    "Pods that plans launched capacity for, by the kind of source that reported them "
    "(extender: the demand stream; pod-watch: the launcher's own watch)",
    ["source"],
)
UNSERVABLE = Gauge("jitnode_launcher_unservable_pods", "Pods no NodePool can serve in the last plan")
OFFERINGS_UNAVAILABLE = Counter(
    "jitnode_launcher_offerings_marked_unavailable_total",
    "Offerings marked unavailable after insufficient capacity",
    ["capacity_type"],
)
LEAKS_COLLECTED = Counter("jitnode_launcher_leaked_instances_collected_total", "Leaked instances terminated")
REGISTRATION_TIMEOUTS = Counter(
    "jitnode_launcher_registration_timeouts_total", "Claims deleted for not registering in time"
)
NODES_REPAIRED = Counter(
    "jitnode_launcher_nodes_repaired_total",
    "Unhealthy nodes whose repair started, by the Node condition and status that triggered it and NodePool",
    ["condition", "status", "nodepool"],
)
REPAIR_BLOCKED = Gauge(
    "jitnode_launcher_repair_blocked_nodes",
    "Nodes past their repair toleration left alone because too many of their NodePool's nodes are unhealthy",
    ["nodepool"],
)
WARM_INSTANCES = Gauge(
    "jitnode_launcher_warm_instances",
    "Warm-pool instances by NodePool and state (Stopped, Hibernated, Running, Filling)",
    ["nodepool", "state"],
)
WARM_POOL_COST = Gauge(
    "jitnode_launcher_warm_pool_cost_per_hour",
    "What a NodePool's warm instances cost per hour: as they are (EBS only while stopped), or running",
    ["nodepool", "basis"],  # current | running
)
WARM_STARTS = Counter(
    "jitnode_launcher_warm_starts_total", "Warm instances the planner took for pending pods", ["nodepool"]
)
WARM_REUSED = Counter(
    "jitnode_launcher_warm_reused_total",
    "Nodes consolidation drained that went back to their NodePool's warm pool (reuseOnScaleIn)",
    ["nodepool"],
)
INTERRUPTION_MESSAGES = Counter(
    "jitnode_launcher_interruption_messages_total",
    "Interruption queue messages by event (SpotInterrupted, InstanceStopping..., invalid) and what it asked",
    ["event", "action"],  # replace | report | ignore | deleted (invalid)
)
BUFFER_CHUNKS = Gauge(
    "jitnode_launcher_capacity_buffer_chunks",
    "CapacityBuffer chunks by what the last plan did with them: held (free room on nodes holds "
    "them), launching (capacity on its way) or unavailable (no NodePool can take them)",
    ["state"],
)
