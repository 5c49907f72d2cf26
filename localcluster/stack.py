"""jitnode itself on the local cluster: the real extender and launcher, wired as in production.

The scheduler runs the shipped KubeSchedulerConfiguration and calls the extender through its
``extenders`` entry, the
extender streams demand to the launcher over its WebSocket, and the launcher calls moto's EC2
over HTTP; the kubelets then join the instances it launches. Used by ``jitnode demo`` and the
end-to-end tests. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import yaml
from kubernetes_asyncio import client as k8s

from extender.config import ExtenderConfig, PredictionConfig, ServerConfig, StreamConfig
from extender.service import ExtenderService
from launcher.aws.session import AWSClients, AWSSettings
from launcher.config import (
    AWSConfig,
    ClusterSettings,
    LauncherConfig,
    LeaderSettings,
    ProvisioningSettings,
    RepairSettings,
    ServerSettings,
)
from launcher.service import LauncherService
from localcluster.apiserver.patch import merge_patch
from localcluster.cluster import REPO_ROOT, LocalCluster
from localcluster.demo.seed import Seed, load_seed
from localcluster.ec2 import CREDENTIALS, MotoEC2
from localcluster.kubelet import KubeletConfig
from localcluster.motoprocess import MotoProcess
from shared.api.group import API_GROUP, API_VERSION, NODECLASS_PLURAL, NODEPOOL_PLURAL

EXTENDER_PREFIX = "/jitnode"
SHIPPED_SCHEDULER_CONFIG = REPO_ROOT / "manifests" / "scheduler" / "config.yaml"
# How long start-up waits for the launcher to be ready and lead (the catalogue takes seconds).
READY_TIMEOUT = 120.0


def free_port() -> int:
    """A free loopback port, for the scheduler's urlPrefix before the extender binds it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cluster_settings(cluster: LocalCluster, name: str) -> ClusterSettings:
    """The launcher's view of the local cluster ``name`` (its kubeconfig and a dummy CA)."""
    return ClusterSettings(
        name=name,
        endpoint=cluster.api_url,
        certificate_authority="bG9jYWxjbHVzdGVyLWNh",  # base64 "localcluster-ca"
        kubeconfig=str(cluster.kubeconfig_path),
    )


def aws_config(cluster: LocalCluster, instance_types: tuple[str, ...] = ()) -> AWSConfig:
    """moto's EC2 for the launcher; moto has no Pricing API, so the bundled price table at once."""
    return AWSConfig(
        region=cluster.ec2.region,
        endpoint_url=cluster.ec2.endpoint,
        pricing_api=False,
        instance_types=instance_types,
    )


def extender_config(
    cluster: LocalCluster,
    port: int,
    stream_url: str,
    source: str,
    *,
    prediction: bool = True,
    shutdown_grace: float = 2.0,
) -> ExtenderConfig:
    """An extender replica on ``port`` streaming to ``stream_url`` (``ws://.../v1/demand``)."""
    return ExtenderConfig(
        server=ServerConfig(
            host="127.0.0.1", port=port, prefix=EXTENDER_PREFIX, shutdown_grace=shutdown_grace
        ),
        stream=StreamConfig(url=stream_url, source=source),
        prediction=PredictionConfig(enabled=prediction),
        kubeconfig=str(cluster.kubeconfig_path),
    )


def scheduler_configuration(extender_url: str, *, prioritize: bool = False) -> str:
    """The shipped KubeSchedulerConfiguration (``manifests/scheduler/config.yaml``) for the local
    cluster: its profile scores exactly as shipped, renamed ``default-scheduler`` so every pod
    uses it, and its extender entry points at ``extender_url`` over plain HTTP.

    ``prioritize`` adds the extender's prioritize verb (weight 5), the opt-in described in
    docs/operations.md.
    """
    shipped = yaml.safe_load(SHIPPED_SCHEDULER_CONFIG.read_text(encoding="utf-8"))
    profiles = [{**p, "schedulerName": "default-scheduler"} for p in shipped["profiles"]]
    extenders = []
    for entry in shipped["extenders"]:
        local = {k: v for k, v in entry.items() if k not in ("enableHTTPS", "tlsConfig")}
        local["urlPrefix"] = extender_url
        if prioritize:
            local.update(prioritizeVerb="prioritize", weight=5)
        extenders.append(local)
    return yaml.safe_dump(
        {
            "apiVersion": shipped["apiVersion"],
            "kind": shipped["kind"],
            "profiles": profiles,
            "extenders": extenders,
        }
    )


@dataclass(frozen=True)
class StackSettings:
    cluster: str = "jitnode-local"
    kubelet: KubeletConfig = field(default_factory=KubeletConfig.immediate)
    registration_timeout: float = 900.0
    leak_grace: float = 60.0
    leak_interval: float = 60.0
    leader_election: bool = True
    seed: int | None = 0
    # The launcher's catalogue (empty: every type EC2 offers, ~5 s to load from moto; a few
    # types load in a fraction of a second).
    instance_types: tuple[str, ...] = ()
    # The launcher's AWS read timeout (a fault test makes EC2 answer slower than it).
    aws_read_timeout: float = AWSSettings.read_timeout
    # Node repair as the launcher's config sets it (tests shorten the tolerations).
    repair: RepairSettings = field(default_factory=RepairSettings)


class JitnodeStack:
    """A LocalCluster with jitnode's extender and launcher running against it."""

    def __init__(
        self, settings: StackSettings = StackSettings(), *, ec2: MotoEC2 | MotoProcess | None = None
    ) -> None:
        self.settings = settings
        self.extender_port = free_port()
        self.launcher_port = free_port()  # fixed, so a restarted launcher keeps the stream URL
        self.cluster = LocalCluster(
            cluster=settings.cluster,
            kubelet_config=settings.kubelet,
            scheduler_config=scheduler_configuration(
                f"http://127.0.0.1:{self.extender_port}{EXTENDER_PREFIX}"
            ),
            ec2=ec2,
            seed=settings.seed,
        )
        self.api: k8s.ApiClient | None = None
        self.launcher: LauncherService | None = None
        self.extender: ExtenderService | None = None

    def launcher_config(self) -> LauncherConfig:
        return LauncherConfig(
            cluster=cluster_settings(self.cluster, self.settings.cluster),
            server=ServerSettings(host="127.0.0.1", port=self.launcher_port, shutdown_grace=2.0),
            aws=aws_config(self.cluster, self.settings.instance_types),
            provisioning=ProvisioningSettings(
                registration_timeout=self.settings.registration_timeout,
                leak_grace=self.settings.leak_grace,
                leak_interval=self.settings.leak_interval,
                resync=2.0,
            ),
            leader=LeaderSettings(
                enabled=self.settings.leader_election,
                namespace="default",
                identity="launcher-0",
                lease_duration=3.0,
                renew_deadline=2.0,
                retry_period=0.5,
            ),
            repair=self.settings.repair,
        )

    def extender_config(self, launcher_url: str) -> ExtenderConfig:
        stream_url = launcher_url.replace("http", "ws", 1) + "/v1/demand"
        return extender_config(self.cluster, self.extender_port, stream_url, "extender-0")

    async def start(self) -> None:
        """The cluster, then the launcher until it is ready and leads, then the extender.

        The order a rollout gives on a real cluster: the extender's demand stream then connects
        at its first try instead of logging a refused handshake, and a scale-up right after
        start-up meets a launcher with a warm catalogue.
        """
        await self.cluster.start()
        try:
            self.api = await self.cluster.api_client()
            launcher_url = await self.start_launcher()
            assert self.launcher is not None
            async with asyncio.timeout(READY_TIMEOUT):
                await self.launcher.wait_ready()
            self.extender = ExtenderService(self.extender_config(launcher_url), self.api)
            await self.extender.start()
        except BaseException:
            await self.stop()
            raise

    async def start_launcher(self) -> str:
        """Start a launcher (a fresh process's worth of state); returns its URL."""
        assert self.api is not None
        clients = AWSClients(
            AWSSettings(
                region=self.cluster.ec2.region,
                endpoint_url=self.cluster.ec2.endpoint,
                aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                read_timeout=self.settings.aws_read_timeout,
            )
        )
        self.launcher = LauncherService(self.launcher_config(), self.api, clients)
        return await self.launcher.start()

    async def stop_launcher(self) -> None:
        if self.launcher is not None:
            await self.launcher.stop()
            self.launcher = None

    async def stop(self) -> None:
        if self.extender is not None:
            await self.extender.stop()
            self.extender = None
        await self.stop_launcher()
        if self.api is not None:
            await self.api.close()
            self.api = None
        await self.cluster.stop()

    async def __aenter__(self) -> JitnodeStack:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # Helpers for the demo and tests -----------------------------------------------------------

    async def apply_custom(self, plural: str, body: dict[str, Any]) -> None:
        assert self.api is not None
        await k8s.CustomObjectsApi(self.api).create_cluster_custom_object(
            API_GROUP, API_VERSION, plural, body
        )

    async def apply_nodepool(self, body: dict[str, Any]) -> None:
        await self.apply_custom(NODEPOOL_PLURAL, body)

    async def apply_nodeclass(self, body: dict[str, Any]) -> None:
        await self.apply_custom(NODECLASS_PLURAL, body)

    async def apply_seed(self, pool_patch: dict[str, Any] | None = None) -> Seed:
        """Apply the seed's EC2NodeClass and NodePool (converted, as the demo applies them), the
        pool changed by ``pool_patch`` (a JSON merge patch); returns the seed as loaded."""
        seed = load_seed(self.cluster.network.cluster)
        await self.apply_nodeclass(seed.nodeclass)
        await self.apply_nodepool(merge_patch(seed.nodepool, pool_patch or {}))
        return seed
