"""``jitnode demo``: the seed walkthrough, end to end, with nothing but the repository.

Steps:

1. start the local cluster (API server, moto EC2 seeded like eksctl, the scheduler configured
   with jitnode's extender, simulated kubelets with a boot delay) and the real extender and
   launcher, all on 127.0.0.1;
2. convert the seed's Provisioner and AWSNodeTemplate with ``jitnode convert``, fill in
   ``${CLUSTER_NAME}``, apply the NodePool (``WhenEmpty`` after the empty-node TTL) and
   EC2NodeClass, then the seed's ``inflate`` Deployment at 0 replicas, then scale it through the
   scale subresource;
3. watch pods, NodeClaims and Nodes until every pod runs (live panel on a terminal, one line per
   change otherwise), and print the timeline;
4. delete the Deployment, wait out the empty-node TTL while the launcher drains and deletes the
   nodes, and check EC2 that their instances are terminated;
5. end with one line of JSON (see :mod:`localcluster.demo.report`); the exit code is 0 only if
   every pod ran and no instance leaked. The whole run is bounded by ``--deadline``.

Against a real cluster: ``jitnode demo --kubeconfig FILE`` runs steps 2 to 5 against a cluster
that already runs jitnode (its extender configured in kube-scheduler and its launcher deployed).
``--cluster`` names the cluster, as ``CLUSTER_NAME`` did in the walkthrough: the seed finds the
subnets and security groups eksctl tagged for it. The demo creates or replaces the seed's
NodePool and EC2NodeClass and the ``inflate`` Deployment in ``default``, and leaves the NodePool
and EC2NodeClass in place at the end. EC2 is read with the default AWS credential chain
(``--region``, else ``AWS_REGION``) to confirm the instances it saw launched are terminated, and
any other instance tagged for the cluster counts as a leak too. NodeClaims and Nodes that
existed before the run are ignored. On failure the Deployment is deleted so no pods are left
pending. Not run in CI.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, TextIO

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from launcher.aws.session import AWSClients, AWSSettings
from localcluster.demo.options import DemoOptions
from localcluster.demo.prices import load_prices
from localcluster.demo.report import json_line, summarize
from localcluster.demo.seed import Seed, SeedError, load_seed, with_empty_ttl
from localcluster.demo.snapshot import PriceOf
from localcluster.demo.timeline import LABELS, Milestone, Recorder, timeline_lines
from localcluster.demo.view import View, make_view
from localcluster.demo.watch import ClusterWatcher, InstanceChecker, InstanceReport
from localcluster.ec2 import CREDENTIALS, MotoEC2
from localcluster.kubelet import KubeletConfig
from localcluster.stack import JitnodeStack, StackSettings
from shared.api.group import API_GROUP, API_VERSION, NODECLASS_PLURAL, NODEPOOL_PLURAL
from shared.kubeclient import api_client
from shared.logs import get_logger

log = get_logger(__name__)

MERGE_PATCH: Final = "application/merge-patch+json"
# The pause container exits at once on SIGTERM; the simulated kubelet honours at most this much
# of a deleted pod's grace period, as a real one would see it exit.
PAUSE_EXIT_SECONDS: Final = 1.0


class DemoFailed(Exception):
    """A step did not finish in time or the cluster refused it; the message says which."""


@dataclass
class Outcome:
    """What a run leaves for the report, filled in as it goes (so failures still report)."""

    recorder: Recorder
    seed_source: str = "-"
    instances: InstanceReport | None = None


@dataclass
class _Run:
    """One scenario in progress: what it looks at, what it shows, what it has seen."""

    options: DemoOptions
    view: View
    watcher: ClusterWatcher
    recorder: Recorder

    async def poll(self) -> None:
        snapshot = await self.watcher.snapshot()
        now = time.monotonic()
        self.view.update(snapshot)
        for milestone in self.recorder.observe(now, snapshot):
            self.announce(milestone)

    def announce(self, milestone: Milestone) -> None:
        self.view.note(f"{LABELS[milestone]} (+{self.recorder.seconds(milestone):.1f} s)")

    async def until(self, milestone: Milestone, within: float, what: str) -> None:
        """Poll until ``milestone`` is recorded; :class:`DemoFailed` after ``within`` seconds."""
        deadline = time.monotonic() + within
        while milestone not in self.recorder.times:
            if time.monotonic() > deadline:
                raise DemoFailed(f"{what} did not happen within {within:.0f} s")
            await asyncio.sleep(self.options.interval)
            await self.poll()

    async def until_terminated(self, instances: InstanceChecker) -> InstanceReport:
        """Poll EC2 until none of the launched instances runs, or the timeout passes."""
        deadline = time.monotonic() + self.options.terminate_timeout
        while True:
            report = await instances.check(self.recorder.instance_ids())
            if not report.running:
                if self.recorder.mark(Milestone.INSTANCES_TERMINATED, time.monotonic()):
                    self.announce(Milestone.INSTANCES_TERMINATED)
                return report
            if time.monotonic() > deadline:
                raise DemoFailed(
                    f"instances {', '.join(sorted(report.running))} still running "
                    f"{self.options.terminate_timeout:.0f} s after their nodes went"
                )
            await asyncio.sleep(self.options.interval)


async def _create_or_replace(
    create: Callable[[], Awaitable[Any]],
    read: Callable[[], Awaitable[Any]],
    replace: Callable[[str], Awaitable[Any]],
) -> None:
    """Create the object, or replace what is there (at its current resourceVersion)."""
    try:
        await create()
    except ApiException as exc:
        if exc.status != 409:
            raise
        current = await read()
        version = (
            current["metadata"]["resourceVersion"]
            if isinstance(current, dict)
            else current.metadata.resource_version
        )
        await replace(version)


def _at_version(body: dict[str, Any], version: str) -> dict[str, Any]:
    return {**body, "metadata": {**body["metadata"], "resourceVersion": version}}


async def apply_custom(api: client.ApiClient, plural: str, body: dict[str, Any]) -> None:
    """Create or replace a cluster-scoped jitnode object."""
    custom = client.CustomObjectsApi(api)
    name = body["metadata"]["name"]
    await _create_or_replace(
        lambda: custom.create_cluster_custom_object(API_GROUP, API_VERSION, plural, body),
        lambda: custom.get_cluster_custom_object(API_GROUP, API_VERSION, plural, name),
        lambda version: custom.replace_cluster_custom_object(
            API_GROUP, API_VERSION, plural, name, _at_version(body, version)
        ),
    )


async def apply_deployment(api: client.ApiClient, body: dict[str, Any]) -> None:
    apps: Any = client.AppsV1Api(api)  # Any: dict bodies serialise as-is; the stubs want models
    name, namespace = body["metadata"]["name"], body["metadata"]["namespace"]
    await _create_or_replace(
        lambda: apps.create_namespaced_deployment(namespace, body),
        lambda: apps.read_namespaced_deployment(name, namespace),
        lambda version: apps.replace_namespaced_deployment(name, namespace, _at_version(body, version)),
    )


async def scale_deployment(api: client.ApiClient, name: str, namespace: str, replicas: int) -> None:
    """Scale through the ``scale`` subresource, as ``kubectl scale`` does."""
    apps: Any = client.AppsV1Api(api)  # Any: the stubs lack the ``_content_type`` option
    await apps.patch_namespaced_deployment_scale(
        name, namespace, {"spec": {"replicas": replicas}}, _content_type=MERGE_PATCH
    )


async def delete_deployment(api: client.ApiClient, name: str, namespace: str) -> None:
    try:
        await client.AppsV1Api(api).delete_namespaced_deployment(
            name, namespace, propagation_policy="Background"
        )
    except ApiException as exc:
        if exc.status != 404:
            raise


async def run_scenario(
    api: client.ApiClient,
    seed: Seed,
    options: DemoOptions,
    view: View,
    instances: InstanceChecker,
    outcome: Outcome,
    price_of: PriceOf,
) -> None:
    """Steps 2 to 4 against ``api``, recording into ``outcome`` (see the module docstring)."""
    namespace = seed.deployment["metadata"]["namespace"]
    name = seed.deployment["metadata"]["name"]
    key, value = seed.app_label
    recorder = outcome.recorder
    outcome.seed_source = seed.source
    run = _Run(options, view, ClusterWatcher(api, namespace, f"{key}={value}", price_of), recorder)

    nodepool = with_empty_ttl(seed.nodepool, options.empty_ttl)
    view.step(
        f"applying EC2NodeClass {seed.nodeclass['metadata']['name']} and NodePool "
        f"{nodepool['metadata']['name']} (WhenEmpty, consolidateAfter "
        f"{nodepool['spec']['disruption']['consolidateAfter']}) from {seed.source}"
    )
    await apply_custom(api, NODECLASS_PLURAL, seed.nodeclass)
    await apply_custom(api, NODEPOOL_PLURAL, nodepool)
    await run.watcher.baseline()
    view.step(f"creating Deployment {namespace}/{name} at 0 replicas")
    await apply_deployment(api, seed.deployment)
    view.step(f"scaling Deployment {name} to {options.replicas} replicas")
    await scale_deployment(api, name, namespace, options.replicas)
    recorder.scaled(time.monotonic())
    await run.poll()
    await run.until(
        Milestone.ALL_PODS_RUNNING, options.scale_up_timeout, f"all {options.replicas} pods Running"
    )
    view.block(timeline_lines(recorder))

    view.step(f"deleting Deployment {name}: its nodes are empty, so they go after {options.empty_ttl:g} s")
    await delete_deployment(api, name, namespace)
    recorder.deleted(time.monotonic())
    await run.until(
        Milestone.NODES_DRAINED, options.empty_ttl + options.drain_timeout, "draining the empty nodes"
    )
    view.step("checking EC2: the instances must be terminated")
    outcome.instances = await run.until_terminated(instances)
    view.block(timeline_lines(recorder))


async def _final_check(instances: InstanceChecker, outcome: Outcome) -> None:
    """EC2's word at the very end, even after a failure; a failed check leaves ``None``."""
    try:
        outcome.instances = await instances.check(outcome.recorder.instance_ids())
    except Exception as exc:  # the report says the check failed; the run's own error matters more
        log.warning("demo.instance check failed", error=repr(exc))
        outcome.instances = None


def local_stack_settings(options: DemoOptions) -> StackSettings:
    return StackSettings(
        kubelet=KubeletConfig(
            boot_delay=options.boot_delay,
            container_start_delay=options.container_start_delay,
            heartbeat_interval=5.0,
            poll_interval=min(1.0, max(0.1, options.boot_delay / 5)),
            node_removal_delay=1.0,
            max_termination_grace=PAUSE_EXIT_SECONDS,
        )
    )


async def run_local(
    options: DemoOptions, view: View, outcome: Outcome, started: float, ec2: MotoEC2 | None = None
) -> None:
    """Step 1 (the local stack), then the scenario against it; ``ec2`` reuses a moto server."""
    view.step("starting the local cluster, extender and launcher on 127.0.0.1")
    price_of = await asyncio.to_thread(load_prices)
    async with JitnodeStack(local_stack_settings(options), ec2=ec2) as stack:
        assert stack.api is not None
        network = stack.cluster.network
        seed = await asyncio.to_thread(load_seed, network.cluster)
        view.step(
            f"local cluster up in {time.monotonic() - started:.1f} s "
            f"(API {stack.cluster.api_url}, EC2 double {stack.cluster.ec2.endpoint}); "
            f"watch it with: kubectl --kubeconfig {stack.cluster.kubeconfig_path} "
            "get nodepools,ec2nodeclasses,nodeclaims,nodes"
        )
        settings = AWSSettings(
            region=stack.cluster.ec2.region,
            endpoint_url=stack.cluster.ec2.endpoint,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        async with AWSClients(settings) as clients:
            instances = InstanceChecker(clients, stack.settings.cluster)
            try:
                await run_scenario(stack.api, seed, options, view, instances, outcome, price_of)
            finally:
                await _final_check(instances, outcome)


async def run_remote(options: DemoOptions, view: View, outcome: Outcome) -> None:
    """The scenario against a real cluster that already runs jitnode (see the module docstring)."""
    assert options.kubeconfig is not None
    price_of = await asyncio.to_thread(load_prices)
    if not options.cluster:
        raise DemoFailed("--cluster is required with --kubeconfig: the seed selects the network by its name")
    seed = await asyncio.to_thread(load_seed, options.cluster)
    region = (
        options.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    )
    api = await api_client(options.kubeconfig)
    try:
        async with AWSClients(AWSSettings(region=region)) as clients:
            instances = InstanceChecker(clients, options.cluster)
            try:
                await run_scenario(api, seed, options, view, instances, outcome, price_of)
            finally:
                deployment = seed.deployment["metadata"]
                with contextlib.suppress(Exception):
                    await delete_deployment(api, deployment["name"], deployment["namespace"])
                await _final_check(instances, outcome)
    finally:
        await api.close()


async def run_demo(
    options: DemoOptions, out: TextIO, *, live: bool | None = None, ec2: MotoEC2 | None = None
) -> dict[str, Any]:
    """The whole demo; writes the view and the final JSON line to ``out``, returns the summary.

    ``live`` forces the live view on or off (default: live when ``out`` is a terminal); ``ec2``
    reuses a started moto server for the local cluster (tests), which is then wiped first.
    """
    started = time.monotonic()
    view = make_view(out, options.replicas, live)
    outcome = Outcome(Recorder(replicas=options.replicas))
    error: str | None = None
    try:
        async with asyncio.timeout(options.deadline):
            if options.kubeconfig:
                await run_remote(options, view, outcome)
            else:
                await run_local(options, view, outcome, started, ec2)
    except TimeoutError:
        error = f"the demo did not finish within its {options.deadline:g} s deadline"
    except (DemoFailed, SeedError) as exc:
        error = str(exc)
    except ApiException as exc:
        error = f"the Kubernetes API refused a request: HTTP {exc.status} {exc.reason}: {str(exc.body)[:300]}"
    finally:
        view.close()
    instances = outcome.instances
    summary = summarize(
        outcome.recorder,
        nodes_terminated=len(instances.terminated) if instances else 0,
        leaked_instances=len(instances.running) if instances else None,
        wall_seconds=time.monotonic() - started,
        seed_source=outcome.seed_source,
        error=error,
    )
    out.write(json_line(summary) + "\n")
    out.flush()
    return summary
