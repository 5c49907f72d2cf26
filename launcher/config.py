"""The launcher's settings: a YAML file, then ``JITNODE_LAUNCHER_*`` variables, then flags.

Every field has a production default except the cluster's identity (name, API endpoint and
CA), which user data needs so that new nodes can join. See ``shared.config`` for the rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from launcher.disruption.repairpolicy import DEFAULT_MAX_UNHEALTHY_PERCENT, DEFAULT_POLICIES, parse_policies
from shared.config import Seconds
from shared.errors import FieldError

ENV_PREFIX = "JITNODE_LAUNCHER_"


@dataclass(frozen=True)
class ServerSettings:
    """The HTTP server: the demand stream, health and metrics."""

    host: str = field(default="0.0.0.0", metadata={"help": "listen address"})
    port: int = field(default=8443, metadata={"help": "listen port"})
    tls_cert_file: str | None = field(default=None, metadata={"help": "PEM certificate; plain HTTP if unset"})
    tls_key_file: str | None = field(default=None, metadata={"help": "PEM private key"})
    tls_reload_interval: Seconds = field(
        default=5.0, metadata={"help": "how often to check the certificate files for a renewal (0: never)"}
    )
    demand_token_file: str | None = field(
        default=None, metadata={"help": "file holding the bearer token extenders must present"}
    )
    demand_heartbeat: Seconds = field(
        default=5.0,
        metadata={"help": "heartbeat interval on demand streams (announced: extenders adapt to it)"},
    )
    shutdown_grace: Seconds = field(default=10.0, metadata={"help": "time to finish requests on SIGTERM"})


@dataclass(frozen=True)
class ClusterSettings:
    """Who the cluster is: nodes need this in their user data to join it."""

    name: str = field(default="jitnode", metadata={"help": "EKS cluster name, used in tags"})
    endpoint: str = field(default="", metadata={"help": "API server URL nodes join"})
    certificate_authority: str = field(default="", metadata={"help": "cluster CA, base64"})
    cidr: str = field(default="10.100.0.0/16", metadata={"help": "service CIDR"})
    kubernetes_version: str = field(default="1.31", metadata={"help": "for the EKS AMI SSM parameters"})
    kubeconfig: str | None = field(default=None, metadata={"help": "kubeconfig; in-cluster config if unset"})


@dataclass(frozen=True)
class AWSConfig:
    region: str = "us-east-1"
    endpoint_url: str | None = field(default=None, metadata={"help": "EC2/SSM/IAM endpoint override (tests)"})
    zones: tuple[str, ...] = field(default=(), metadata={"help": "limit the catalogue to these zones"})
    instance_types: tuple[str, ...] = field(
        default=(), metadata={"help": "limit the catalogue to these instance types (empty: all)"}
    )
    pricing_api: bool = field(default=True, metadata={"help": "ask the Pricing API (else the bundled table)"})
    catalogue_refresh: Seconds = 3600.0
    spot_price_refresh: Seconds = 300.0


@dataclass(frozen=True)
class ProvisioningSettings:
    coalesce_idle: Seconds = field(default=0.05, metadata={"help": "plan this long after a change"})
    coalesce_max: Seconds = field(default=1.0, metadata={"help": "but no later than this after the first"})
    replan_interval: Seconds = field(default=10.0, metadata={"help": "re-plan while demand is pending"})
    exact_plan_seconds: Seconds = field(
        default=0.08,
        metadata={"help": "solver time a pool to plan a few pods exactly (0: packing heuristic only)"},
    )
    exact_plan_max_pods: int = field(
        default=64, metadata={"help": "pools with more pods to place keep the packing heuristic's plan"}
    )
    watch_pods: bool = field(
        default=True,
        metadata={
            "help": "also find unschedulable pods with the launcher's own watch, not only the extenders'"
        },
    )
    registration_timeout: Seconds = 900.0
    resync: Seconds = 10.0
    offering_unavailable_ttl: Seconds = 180.0
    leak_grace: Seconds = 60.0
    leak_interval: Seconds = 60.0


@dataclass(frozen=True)
class LeaderSettings:
    enabled: bool = True
    namespace: str = "jitnode"
    name: str = "jitnode-launcher"
    identity: str = field(default="", metadata={"help": "this replica's id; POD_NAME or hostname if empty"})
    lease_duration: Seconds = 15.0
    renew_deadline: Seconds = 10.0
    retry_period: Seconds = 2.0


@dataclass(frozen=True)
class RepairSettings:
    """Node repair (docs/node-repair.md): replace nodes that stay unhealthy."""

    enabled: bool = field(
        default=False,
        metadata={"help": "repair the nodes of NodePools that do not set spec.disruption.repair"},
    )
    policies: dict[str, Seconds] = field(
        default_factory=lambda: dict(DEFAULT_POLICIES),
        metadata={"help": "ConditionType:Status -> how long a node may stay so before it is replaced"},
    )
    max_unhealthy_percent: int = field(
        default=DEFAULT_MAX_UNHEALTHY_PERCENT,
        metadata={"help": "no repair in a NodePool with more of its nodes unhealthy (rounded up)"},
    )
    replacement_wait: Seconds = field(
        default=600.0,
        metadata={"help": "how long a repair waits for Ready replacements before deleting the node"},
    )

    def __post_init__(self) -> None:
        parse_policies(self.policies, "policies")
        if not 0 <= self.max_unhealthy_percent <= 100:
            raise FieldError("max_unhealthy_percent", "must be between 0 and 100")


@dataclass(frozen=True)
class DriftConfig:
    """Drift (docs/drift.md): replace nodes whose NodePool or EC2NodeClass asks for something else."""

    enabled: bool = field(default=True, metadata={"help": "mark drifted NodeClaims and replace their nodes"})
    nodeclass_refresh: Seconds = field(
        default=300.0,
        metadata={
            "help": "re-resolve EC2NodeClasses (AMI aliases, selectors) this often: drift shows at this pace"
        },
    )
    resync: Seconds = field(default=60.0, metadata={"help": "check every NodeClaim for drift this often"})


@dataclass(frozen=True)
class BuffersConfig:
    """CapacityBuffers (docs/capacity-buffers.md): spare capacity kept ready as virtual pods."""

    enabled: bool = field(
        default=True, metadata={"help": "keep capacity for autoscaling.x-k8s.io CapacityBuffers"}
    )
    resync: Seconds = field(
        default=10.0,
        metadata={"help": "re-read each buffer's PodTemplate or workload this often (percentage follows)"},
    )


@dataclass(frozen=True)
class InterruptionConfig:
    """Interruption handling (docs/interruption.md): act on the notices EC2 sends before it
    reclaims, stops or maintains an instance, read from an SQS queue fed by EventBridge rules."""

    queue: str = field(
        default="", metadata={"help": "the SQS queue's name or URL (empty: no interruption handling)"}
    )
    rebalance: Literal["act", "report"] = field(
        default="report",
        metadata={"help": "on a rebalance recommendation, replace the node (act) or only record it"},
    )
    visibility_timeout: Seconds = field(
        default=60.0, metadata={"help": "a received message not deleted by then is received again"}
    )
    min_drain: Seconds = field(
        default=30.0, metadata={"help": "the shortest drain a late notice gets before its NodeClaim goes"}
    )


@dataclass(frozen=True)
class LauncherConfig:
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    aws: AWSConfig = field(default_factory=AWSConfig)
    provisioning: ProvisioningSettings = field(default_factory=ProvisioningSettings)
    leader: LeaderSettings = field(default_factory=LeaderSettings)
    drift: DriftConfig = field(default_factory=DriftConfig)
    buffers: BuffersConfig = field(default_factory=BuffersConfig)
    repair: RepairSettings = field(default_factory=RepairSettings)
    interruption: InterruptionConfig = field(default_factory=InterruptionConfig)
    log_level: str = "info"
    log_format: str = "json"
