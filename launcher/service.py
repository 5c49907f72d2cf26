"""The launcher process: everything it runs, started and stopped as one.

Every replica serves health and metrics and keeps its informers and the instance catalogue
warm, so a new leader starts with a full picture and plans at once. Only the Lease holder
acts: it keeps the warm launch templates current, plans, launches, tracks claims, collects
leaks and disrupts. The leader also labels its own Pod
``jitnode.io/launcher-leader=true``, which the launcher Service selects on, so the extenders'
demand streams reach the replica that acts on them. Only the leader accepts demand streams
(others answer 503), and one that loses the Lease closes its streams: a Service stops
selecting a Pod for new connections but leaves open ones alone, so without this the new leader
would never hear the demand (found by the rollout drill, ``tests/e2e/test_rollout.py``).

Graceful SIGTERM: stop leading (cancel the leader's work and release the Lease so another
replica takes over at once), close the demand streams (extenders reconnect to the new leader
and send a fresh snapshot), finish in-flight HTTP requests, stop the informers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket
from collections.abc import Callable, Coroutine, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from kubernetes_asyncio import client as k8s
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from launcher.aws.catalogue import CatalogueSettings, InstanceCatalogue
from launcher.aws.inspect import inspect_nodeclass
from launcher.aws.nodeclass import NodeClassResolver, ResolverSettings
from launcher.aws.provider import AWSCloudProvider
from launcher.aws.queue import InterruptionQueue
from launcher.aws.session import AWSClients, pricing_region
from launcher.aws.templates import LaunchTemplates
from launcher.aws.userdata import ClusterInfo
from launcher.buffers.controller import BufferController, BufferSettings
from launcher.config import LauncherConfig, ProvisioningSettings
from launcher.demand.book import DemandBook
from launcher.demand.podwatch import PodWatchDemand
from launcher.demand.server import DemandServer
from launcher.disruption.controller import DisruptionController, DisruptionSettings
from launcher.disruption.repairer import NodeRepairSettings
from launcher.disruption.replacement import ClaimReplacer
from launcher.interruption.controller import InterruptionController
from launcher.interruption.decisions import Policy, RebalancePolicy
from launcher.interruption.instances import ClaimsByInstance
from launcher.kube import NodeClaimWriter, NodeWriter, StatusWriter
from launcher.leader import LeaderElector
from launcher.lifecycle.collector import LeakCollector
from launcher.lifecycle.controller import ClaimController, LifecycleConfig
from launcher.lifecycle.instances import InstanceIndex
from launcher.model import InstanceType
from launcher.planner.exact import ExactSettings
from launcher.planner.offerings import UnavailableOfferings
from launcher.provider import CloudProvider
from launcher.provisioning.provisioner import Provisioner, ProvisionerSettings
from launcher.state import LauncherState
from launcher.status.controller import StatusController
from launcher.status.drift import DriftController, DriftSettings
from launcher.warmpool.controller import WarmPoolController
from shared.events import EventRecorder
from shared.informerstats import InformerCollector
from shared.logs import get_logger
from shared.servingcert import ServingCertificate
from shared.tasks import within

log = get_logger("launcher.service")
LEADER_LABEL = "jitnode.io/launcher-leader"
# How long a plan waits for a template sync under way (a NodeClass resolves in well under this).
PLAN_SETTLE_SECONDS = 10.0


def read_token(path: str | None) -> str | None:
    """The demand-stream bearer token from a file (a mounted Secret), or None (no auth)."""
    if not path:
        return None
    return Path(path).read_text().strip() or None


def exact_settings(provisioning: ProvisioningSettings) -> ExactSettings | None:
    """When the planner solves a pool's new claims exactly, from the configuration (None: never)."""
    if provisioning.exact_plan_seconds <= 0 or provisioning.exact_plan_max_pods <= 0:
        return None
    return ExactSettings(seconds=provisioning.exact_plan_seconds, max_pods=provisioning.exact_plan_max_pods)


def identity(configured: str) -> str:
    return configured or os.environ.get("POD_NAME") or socket.gethostname()


class Catalogue:
    """The instance types of the last refresh, by name, for code that needs them synchronously."""

    def __init__(self, provider: CloudProvider) -> None:
        self._provider = provider
        self.by_name: dict[str, InstanceType] = {}

    async def refresh(self) -> list[InstanceType]:
        types = await self._provider.instance_types()
        self.by_name = {t.name: t for t in types}
        return types

    def get(self) -> Mapping[str, InstanceType]:
        return self.by_name


class LauncherService:
    def __init__(self, config: LauncherConfig, api: k8s.ApiClient, clients: AWSClients) -> None:
        self.config = config
        self.api = api
        self.clients = clients
        cluster = config.cluster
        self.state = LauncherState(api)
        # Sync and lag of each informer, served on /metrics beside the process-wide registry.
        self.informer_metrics = CollectorRegistry()
        self.informer_metrics.register(
            InformerCollector(
                (
                    self.state.nodepool_informer,
                    self.state.nodeclass_informer,
                    self.state.nodeclaim_informer,
                    self.state.node_informer,
                    self.state.pod_informer,
                )
            )
        )
        self.book = DemandBook()
        if config.provisioning.watch_pods:
            # Demand from a second path: pending pods are seen even with no extender connected.
            self.state.listen("pod", PodWatchDemand(self.book))
        # Only the leader takes demand streams: one held by a replica that lost the Lease would
        # starve the new leader (the Service stops selecting it, but open connections stay).
        self.demand_server = DemandServer(
            self.book,
            token=read_token(config.server.demand_token_file),
            heartbeat_interval=config.server.demand_heartbeat,
            accepting=self._is_leading,
        )
        self.catalogue_source = InstanceCatalogue(
            clients,
            CatalogueSettings(
                region=config.aws.region,
                zones=config.aws.zones or None,
                instance_types=config.aws.instance_types or None,
                refresh_period=config.aws.catalogue_refresh,
                spot_refresh_period=config.aws.spot_price_refresh,
                # GovCloud and the isolated partitions have no Pricing API: the table at once.
                pricing_api=config.aws.pricing_api and pricing_region(config.aws.region) is not None,
            ),
        )
        resolver = NodeClassResolver(
            clients, ResolverSettings(cluster=cluster.name, kubernetes_version=cluster.kubernetes_version)
        )
        self.templates = LaunchTemplates(
            clients,
            resolver,
            ClusterInfo(
                name=cluster.name,
                endpoint=cluster.endpoint,
                certificate_authority=cluster.certificate_authority,
                cidr=cluster.cidr,
            ),
        )
        self.provider = AWSCloudProvider(self.catalogue_source, self.templates)
        self.catalogue = Catalogue(self.provider)
        self.unavailable = UnavailableOfferings(ttl=config.provisioning.offering_unavailable_ttl)
        self.instances = InstanceIndex(self.provider)
        self.events = EventRecorder(api, "jitnode-launcher")
        self.claims = ClaimController(
            state=self.state,
            provider=self.provider,
            claims=NodeClaimWriter(api),
            nodes=NodeWriter(api),
            events=self.events,
            instances=self.instances,
            unavailable=self.unavailable,
            catalogue=self.catalogue.get,
            config=LifecycleConfig(
                cluster=cluster.name,
                registration_timeout=timedelta(seconds=config.provisioning.registration_timeout),
                resync_seconds=config.provisioning.resync,
            ),
        )
        # CapacityBuffers: their chunks enter the demand book as one more source.
        self.buffers = (
            BufferController(
                api,
                self.book,
                BufferSettings(resync=config.buffers.resync),
                nodes=self.state.nodes,
                claims=self.state.nodeclaims,
            )
            if config.buffers.enabled
            else None
        )
        # Warm pools (docs/warm-pools.md): filled, parked and rotated; started when a plan takes one.
        self.warm_pools = WarmPoolController(
            state=self.state,
            api=api,
            provider=self.provider,
            claims=NodeClaimWriter(api),
            nodes=NodeWriter(api),
            status=StatusWriter(api),
            instances=self.instances,
            unavailable=self.unavailable,
            catalogue=self.catalogue.get,
            enqueue=self.claims.enqueue,
            zones=self.nodeclass_zones,
        )
        self.provisioner = Provisioner(
            state=self.state,
            book=self.book,
            catalogue=self.catalogue,
            unavailable=self.unavailable,
            claims=self.claims,
            writer=NodeClaimWriter(api),
            events=self.events,
            settings=ProvisionerSettings(
                coalesce_idle=config.provisioning.coalesce_idle,
                coalesce_max=config.provisioning.coalesce_max,
                replan_interval=config.provisioning.replan_interval,
                exact=exact_settings(config.provisioning),
            ),
            nodeclass_zones=self.nodeclass_zones,
            before_plan=self._settle_for_plan,
            on_plan=self.buffers.observe_plan if self.buffers is not None else None,
            take_warm=self.warm_pools.activate,
        )
        self.disruption = DisruptionController(
            state=self.state,
            api=api,
            claims=NodeClaimWriter(api),
            nodes=NodeWriter(api),
            events=self.events,
            catalogue=self.catalogue.get,
            pending=self.book.current,
            replacer=ClaimReplacer(NodeClaimWriter(api), on_created=self.claims.enqueue),
            nodeclass_zones=self.nodeclass_zones,
            settings=DisruptionSettings(repair=NodeRepairSettings.from_config(config.repair)),
            reclaimer=self.warm_pools,  # reuseOnScaleIn
        )
        # Interruption notices from the SQS queue (docs/interruption.md), when one is configured.
        self.interruption = self._interruption_controller(config, api, clients)
        # Status on NodePools, EC2NodeClasses and NodeClaims; its index follows events from now on.
        self.status = StatusController(
            state=self.state,
            writer=StatusWriter(api),
            inspect=functools.partial(inspect_nodeclass, resolver),
        )
        # Drifted conditions on NodeClaims, against what a launch would use now (the disruption
        # controller replaces drifted nodes).
        self.drift = DriftController(
            state=self.state,
            writer=StatusWriter(api),
            claims=NodeClaimWriter(api),
            events=self.events,
            resolved=self.templates.resolved,
            instance_of=self.instances.by_claim,
            settings=DriftSettings(resync_seconds=config.drift.resync),
        )
        self.collector = LeakCollector(
            state=self.state,
            provider=self.provider,
            instances=self.instances,
            grace=timedelta(seconds=config.provisioning.leak_grace),
            interval=config.provisioning.leak_interval,
        )
        leader = config.leader
        self.identity = identity(leader.identity)
        self.elector = (
            LeaderElector(
                api,
                namespace=leader.namespace,
                name=leader.name,
                identity=self.identity,
                lease_duration=leader.lease_duration,
                renew_deadline=leader.renew_deadline,
                retry_period=leader.retry_period,
            )
            if leader.enabled
            else None
        )
        self.leading = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._election: asyncio.Task[None] | None = None
        self.url = ""
        server = config.server
        # Renewed certificates (a Secret updated in place) are served without a restart.
        self.certificate = (
            ServingCertificate(
                server.tls_cert_file, server.tls_key_file or "", interval=server.tls_reload_interval
            )
            if server.tls_cert_file
            else None
        )

    def _interruption_controller(
        self, config: LauncherConfig, api: k8s.ApiClient, clients: AWSClients
    ) -> InterruptionController | None:
        settings = config.interruption
        if not settings.queue:
            return None
        index = ClaimsByInstance()
        self.state.listen("nodeclaim", index)  # before the informers start
        return InterruptionController(
            queue=InterruptionQueue(clients, settings.queue, round(settings.visibility_timeout)),
            state=self.state,
            index=index,
            disruption=self.disruption,
            claims=NodeClaimWriter(api),
            unavailable=self.unavailable,
            events=self.events,
            policy=Policy(RebalancePolicy(settings.rebalance), timedelta(seconds=settings.min_drain)),
        )

    async def _settle_for_plan(self) -> bool:
        """Let a template sync under way finish, and the catalogue follow its subnet zones, so a
        plan made right after a NodePool was applied already knows where it can launch. True
        when there was one to wait for."""
        if not self.templates.syncing:
            return False
        await self.templates.sync_settled(PLAN_SETTLE_SECONDS)
        await self.catalogue.refresh()
        return True

    def nodeclass_zones(self, nodeclass: str) -> frozenset[str] | None:
        """The zones of the NodeClass's resolved subnets (None until it resolves): pools offer only these."""
        resolved = self.templates.resolved(nodeclass)
        return resolved.zones if resolved is not None else None

    # HTTP -----------------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 2**20)
        self.demand_server.add_routes(app)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        return app

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, request: web.Request) -> web.Response:
        """Ready once the informers have synced and the instance catalogue is warm.

        A follower is ready too (it may lead next), but only warm: a rollout stops the old leader
        as soon as its replacement is ready, and a cold new leader would plan nothing until its
        first catalogue refresh (10-20 s on a busy machine; found by the rollout drill).
        """
        if not self.state.has_synced or not self.catalogue_source.cached():
            return web.json_response({"status": "syncing"}, status=503)
        return web.json_response({"status": "ok", "leader": self.leading.is_set()})

    async def wait_ready(self) -> None:
        """Until ``/readyz`` would say ok and, with leader election, this replica leads.

        What a rollout waits for before the next component starts: the local stack starts the
        extender only then, so its demand stream connects at the first try, and a scale-up
        right after start-up meets a warm catalogue, as it would on a cluster whose launcher
        Deployment finished rolling out.
        """
        await self.state.wait_synced()
        await self.catalogue_source.wait_refreshed()
        await self.leading.wait()

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest() + generate_latest(self.informer_metrics)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    # Lifecycle ------------------------------------------------------------------------------

    async def start(self) -> str:
        """Start serving and campaigning; returns the URL the demand stream is served at."""
        if self.certificate is not None:
            await self.certificate.load()  # a bad certificate fails the start, before anything runs
        await self.clients.open()
        self.state.start()
        self.catalogue_source.start()
        self.demand_server.start()
        self._runner = web.AppRunner(self.build_app(), shutdown_timeout=self.config.server.shutdown_grace)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner,
            self.config.server.host,
            self.config.server.port,
            ssl_context=self.certificate.context if self.certificate is not None else None,
        )
        await site.start()
        if self.certificate is not None:
            self.certificate.start()
        addresses = self._runner.addresses
        port = int(addresses[0][1]) if addresses else self.config.server.port
        scheme = "https" if self.config.server.tls_cert_file else "http"
        self.url = f"{scheme}://{self.config.server.host}:{port}"
        if self.elector is not None:
            self._election = asyncio.create_task(self.elector.run(self._lead), name="leader-election")
        else:
            self._election = asyncio.create_task(self._lead(), name="leader-work")
        log.info("launcher started", url=self.url, identity=self.identity)
        return self.url

    async def stop(self) -> None:
        if self.elector is not None:
            self.elector.stop()
        if self._election is not None:
            if self.elector is None:
                self._election.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._election
        await self.demand_server.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        if self.certificate is not None:
            await self.certificate.stop()
        await self.catalogue_source.stop()
        await self.state.stop()
        await self.clients.close()
        log.info("launcher stopped", identity=self.identity)

    async def _lead(self) -> None:
        """The leader's work; cancelled when leadership is lost or on shutdown."""
        self.leading.set()
        tasks: list[asyncio.Task[None]] = []
        try:
            await self._set_leader_label(True)
            await self.state.wait_synced()
            # Every replica keeps the catalogue warm (see start): a new leader plans at once
            # instead of spending its first seconds fetching ~1,400 instance types.
            await self.catalogue_source.wait_refreshed()
            await self._sync_templates()
            await self.catalogue.refresh()
            work: list[tuple[str, Callable[[], Coroutine[Any, Any, None]]]] = [
                ("templates", self._template_loop),
                ("claims", self.claims.run),
                ("provisioner", self.provisioner.run),
                ("collector", self.collector.run),
                ("disruption", self.disruption.run),
                ("status", self.status.run),
                ("warm-pools", self.warm_pools.run),
                *([("drift", self.drift.run)] if self.config.drift.enabled else []),
                *([("buffers", self.buffers.run)] if self.buffers is not None else []),
                *([("interruption", self.interruption.run)] if self.interruption is not None else []),
            ]
            tasks = [asyncio.create_task(fn(), name=name) for name, fn in work]
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if task.exception() is not None:
                    log.error("leader task failed", task=task.get_name(), error=repr(task.exception()))
        finally:
            self.leading.clear()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.disruption.stop()  # its drains run as tasks of their own
            with contextlib.suppress(Exception):
                await self._set_leader_label(False)
            # Extenders still streaming here must reconnect, to reach the new leader.
            await self.demand_server.close_streams("leadership lost")

    def _is_leading(self) -> bool:
        return self.leading.is_set()

    async def _sync_templates(self) -> None:
        await self.provider.sync(self.state.nodeclasses().values(), self.state.nodepools().values())

    async def _template_loop(self) -> None:
        """Keep warm templates current: on NodePool/NodeClass changes and periodically (AMIs)."""
        wake = self.state.subscribe()
        seen: tuple[Any, ...] = ()
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            with contextlib.suppress(TimeoutError):
                await within(wake.wait(), self.config.drift.nodeclass_refresh)
            wake.clear()
            key = (
                tuple(sorted((n, p.metadata.resource_version) for n, p in self.state.nodepools().items())),
                tuple(sorted((n, c.metadata.resource_version) for n, c in self.state.nodeclasses().items())),
            )
            if key != seen or loop.time() - last > self.config.drift.nodeclass_refresh:
                seen, last = key, loop.time()
                try:
                    await self._sync_templates()
                    await self.catalogue.refresh()
                except Exception as error:
                    log.warning("template sync failed", error=str(error))

    async def _set_leader_label(self, leading: bool) -> None:
        """Label this replica's Pod so the launcher Service routes demand streams to the leader."""
        pod, namespace = os.environ.get("POD_NAME"), os.environ.get("POD_NAMESPACE")
        if not pod or not namespace:
            return
        patch = {"metadata": {"labels": {LEADER_LABEL: "true" if leading else None}}}
        try:
            await k8s.CoreV1Api(self.api).patch_namespaced_pod(pod, namespace, patch)
        except Exception as error:
            log.warning("leader label not set", error=str(error))
