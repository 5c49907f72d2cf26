"""The whole local cluster in one async context manager: EC2, API server, scheduler, kubelets.

``async with LocalCluster() as cluster`` starts moto (seeded as eksctl leaves an account), the
API server with jitnode's CRDs, the scheduler (with the extenders its configuration lists) and
the kubelets, and writes a kubeconfig; everything listens on 127.0.0.1 only. Leaving the block
stops it all: no task, thread or server outlives it.

Startup: about 0.3 s when moto is already imported in the process (tests pass the session's
moto server as ``ec2``). A fresh process pays about a second more, once, for importing moto's
EC2 models; ``python -m localcluster up`` hides it by spawning moto as a :class:`MotoProcess`
before its own imports, so the two overlap.
"""

from __future__ import annotations

import asyncio
import inspect
import random
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Collection
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TypeVar, overload

import yaml
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.client.exceptions import ApiException

from localcluster.apiserver import APIServer
from localcluster.apiserver.testing import client_configuration
from localcluster.ec2 import DEFAULT_CLUSTER, ClusterNetwork, MotoEC2
from localcluster.kubelet import FailToJoin, KubeletConfig, Kubelets
from localcluster.motoprocess import MotoProcess
from localcluster.scheduler import Scheduler, SchedulerConfig, load_scheduler_config
from shared.logs import get_logger
from shared.tasks import cancel_and_wait

T = TypeVar("T")

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
DEFAULT_CRDS: Final = REPO_ROOT / "manifests" / "crds"
_log = get_logger(__name__)


def _read_crds(folder: Path) -> list[dict[str, Any]]:
    """Every CustomResourceDefinition in ``folder/*.yaml`` (blocking: run in a thread)."""
    crds: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(document, dict) and document.get("kind") == "CustomResourceDefinition":
                crds.append(document)
    return crds


class LocalCluster:
    """A running local cluster (see the module docstring).

    ``scheduler_config`` is a KubeSchedulerConfiguration (path, YAML text or parsed); without it
    the scheduler has the default profile and no extenders. ``ec2`` reuses a started moto
    server (wiped and re-seeded; left running on exit), or takes over a spawned
    :class:`MotoProcess` (already seeding this cluster; stopped on exit). ``kubelet_config`` overrides the
    individual delay knobs. ``seed`` makes the scheduler's tie-breaking reproducible.
    """

    def __init__(
        self,
        *,
        cluster: str = DEFAULT_CLUSTER,
        boot_delay: float = 5.0,
        container_start_delay: float = 0.5,
        heartbeat_interval: float = 10.0,
        kubelet_config: KubeletConfig | None = None,
        fail_to_join: FailToJoin | Collection[str] | None = None,
        scheduler_config: str | Path | SchedulerConfig | None = None,
        kubeconfig_path: str | Path | None = None,
        crds_dir: Path | None = DEFAULT_CRDS,
        ec2: MotoEC2 | MotoProcess | None = None,
        seed: int | None = None,
    ) -> None:
        self.cluster = cluster
        self.kubelet_config = kubelet_config or KubeletConfig(
            boot_delay=boot_delay,
            container_start_delay=container_start_delay,
            heartbeat_interval=heartbeat_interval,
        )
        self._fail_to_join = fail_to_join
        self._scheduler_source = scheduler_config
        self._kubeconfig_request = Path(kubeconfig_path) if kubeconfig_path is not None else None
        self._crds_dir = crds_dir
        if isinstance(ec2, MotoProcess) and ec2.cluster != cluster:
            raise ValueError(f"the moto process seeds cluster {ec2.cluster!r}, not {cluster!r}")
        self._owns_ec2 = not isinstance(ec2, MotoEC2)
        self.ec2: MotoEC2 | MotoProcess = ec2 or MotoEC2()
        self.seed = seed
        self.apiserver = APIServer()
        self._network: ClusterNetwork | None = None
        self._kubeconfig: Path | None = None
        self._tempdir: Path | None = None
        self._client: k8s.ApiClient | None = None
        self.scheduler: Scheduler | None = None
        self.kubelets: Kubelets | None = None
        self.startup_seconds = 0.0

    # Public surface -----------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return self.apiserver.url

    @property
    def kubeconfig_path(self) -> Path:
        if self._kubeconfig is None:
            raise RuntimeError("LocalCluster is not started")
        return self._kubeconfig

    @property
    def network(self) -> ClusterNetwork:
        if self._network is None:
            raise RuntimeError("LocalCluster is not started")
        return self._network

    async def api_client(self) -> k8s.ApiClient:
        """A new kubernetes-asyncio client for this cluster; the caller closes it."""
        return k8s.ApiClient(client_configuration(self.api_url))

    # A deadline per call is the point of this helper, hence the timeout parameters.
    @overload
    async def wait_for(
        self,
        predicate: Callable[[], Awaitable[T]],
        timeout: float = ...,  # noqa: ASYNC109
        interval: float = ...,
    ) -> T: ...

    @overload
    async def wait_for(
        self,
        predicate: Callable[[], T],
        timeout: float = ...,  # noqa: ASYNC109
        interval: float = ...,
    ) -> T: ...

    async def wait_for(
        self,
        predicate: Callable[[], Any],
        timeout: float = 10.0,  # noqa: ASYNC109
        interval: float = 0.05,
    ) -> Any:
        """Poll ``predicate`` (sync or async) until it returns something truthy, and return it.

        Raises :class:`TimeoutError` naming the predicate when ``timeout`` passes first.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = predicate()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result
            if loop.time() >= deadline:
                name = getattr(predicate, "__qualname__", repr(predicate))
                raise TimeoutError(f"{name} still false after {timeout} s (last value {result!r})")
            await asyncio.sleep(interval)

    # Lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start everything; on failure, whatever started is stopped again."""
        started = time.perf_counter()
        try:
            # Only the kubelets need EC2: everything else starts while moto is still seeding.
            ec2_ready = asyncio.ensure_future(self._start_ec2())
            try:
                await self.apiserver.start()
                self._client = k8s.ApiClient(client_configuration(self.api_url))
                await asyncio.gather(self._apply_crds(), self._write_kubeconfig())
                config = await self._scheduler_config()
                self.scheduler = Scheduler(self._client, config, rng=random.Random(self.seed))
                await self.scheduler.start()
                if not isinstance(self.ec2, MotoProcess):
                    # In-process moto is ready to watch only after its (re)seeding; a moto
                    # process has a fresh, empty account whose socket already queues calls.
                    await ec2_ready
                self.kubelets = Kubelets(
                    self._client,
                    cluster=self.cluster,
                    ec2_client_kwargs=self.ec2.client_kwargs(),
                    config=self.kubelet_config,
                    fail_to_join=self._fail_to_join,
                )
                await self.kubelets.start()
                await ec2_ready
            finally:
                await cancel_and_wait(ec2_ready)
            async with asyncio.timeout(30):
                await self.kubelets.wait_synced()
        except BaseException:
            await self.stop()
            raise
        self.startup_seconds = time.perf_counter() - started
        _log.info(
            "localcluster.started",
            api_url=self.api_url,
            ec2_endpoint=self.ec2.endpoint,
            kubeconfig=str(self._kubeconfig),
            seconds=round(self.startup_seconds, 3),
        )

    async def stop(self) -> None:
        """Stop everything that started, in reverse order; safe to call twice."""
        if self.kubelets is not None:
            await self.kubelets.stop()
            self.kubelets = None
        if self.scheduler is not None:
            await self.scheduler.stop()
            self.scheduler = None
        if self._client is not None:
            await self._client.close()
            self._client = None
        await self.apiserver.stop()
        if isinstance(self.ec2, MotoProcess):
            await self.ec2.stop()
        elif self._owns_ec2:
            await asyncio.to_thread(self.ec2.stop)
        if self._tempdir is not None:
            await asyncio.to_thread(shutil.rmtree, self._tempdir, True)
            self._tempdir = None

    async def __aenter__(self) -> LocalCluster:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # Steps --------------------------------------------------------------------------------

    async def _start_ec2(self) -> None:
        moto = self.ec2
        if isinstance(moto, MotoProcess):
            self._network = await moto.ready()
            return

        def start_and_seed() -> ClusterNetwork:
            if self._owns_ec2:
                moto.start()
            else:
                moto.reset()
            return moto.seed_eksctl_cluster(self.cluster)

        self._network = await asyncio.to_thread(start_and_seed)

    async def _apply_crds(self) -> None:
        if self._crds_dir is None or not self._crds_dir.is_dir():
            return
        assert self._client is not None
        crds = await asyncio.to_thread(_read_crds, self._crds_dir)
        api: Any = k8s.ApiextensionsV1Api(self._client)
        for crd in crds:
            try:
                await api.create_custom_resource_definition(crd)
            except ApiException as exc:
                if exc.status != 409:
                    raise

    async def _write_kubeconfig(self) -> None:
        path = self._kubeconfig_request
        if path is None:
            self._tempdir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="localcluster-"))
            path = self._tempdir / "kubeconfig"
        else:
            await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        self._kubeconfig = await asyncio.to_thread(self.apiserver.write_kubeconfig, path)

    async def _scheduler_config(self) -> SchedulerConfig:
        source = self._scheduler_source
        if isinstance(source, SchedulerConfig):
            return source
        if source is None:
            return SchedulerConfig()
        return await asyncio.to_thread(load_scheduler_config, source)
