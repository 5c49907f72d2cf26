"""The real kubectl against the emulated server: validation, explain, diff and both kinds of apply.

Runs the ``kubectl`` binary on PATH (skipped where there is none), as a user of a real cluster
would, with the jitnode CRDs installed from ``manifests/crds/``.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from localcluster.apiserver import APIServer

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="no kubectl binary on PATH")

CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  size: "1"
  colour: blue
"""


@dataclass
class Run:
    code: int
    out: str
    err: str


@dataclass
class Cluster:
    server: APIServer
    config: Path

    async def kubectl(self, *args: str, stdin: str | None = None) -> Run:
        assert KUBECTL is not None
        proc = await asyncio.create_subprocess_exec(
            KUBECTL,
            "--kubeconfig",
            str(self.config),
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(60):
            out, err = await proc.communicate(stdin.encode() if stdin else None)
        assert proc.returncode is not None
        return Run(proc.returncode, out.decode(), err.decode())

    async def ok(self, *args: str, stdin: str | None = None) -> str:
        run = await self.kubectl(*args, stdin=stdin)
        assert run.code == 0, f"kubectl {' '.join(args)}: {run.err}"
        return run.out


def nodepool_crd_with_description() -> str:
    """The NodePool CRD with a description on spec.disruption (explain must print it)."""
    crd = yaml.safe_load((ROOT / "manifests/crds/jitnode.io_nodepools.yaml").read_text())
    for version in crd["spec"]["versions"]:
        spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
        spec["properties"]["disruption"]["description"] = "How and when nodes of this pool are disrupted."
    return yaml.safe_dump(crd)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    server = APIServer(controllers=False)
    await server.start()
    try:
        c = Cluster(server, server.write_kubeconfig(tmp_path / "kubeconfig"))
        await c.ok("apply", "-f", str(ROOT / "manifests/crds"))
        yield c
    finally:
        await server.stop()


async def test_apply_validates_against_the_served_openapi(cluster: Cluster) -> None:
    inflate = str(ROOT / "examples/seed/inflate.yaml")
    assert "created" in await cluster.ok("apply", "-f", inflate)
    assert "unchanged" in await cluster.ok("apply", "-f", inflate)


async def test_unknown_field_is_refused_with_the_strict_error(cluster: Cluster) -> None:
    bad = CONFIGMAP.replace("kind: ConfigMap\n", "kind: ConfigMap\nbogus: 1\n")
    run = await cluster.kubectl("apply", "-f", "-", stdin=bad)
    assert run.code != 0
    assert 'strict decoding error: unknown field "bogus"' in run.err
    warned = await cluster.kubectl("apply", "--validate=warn", "-f", "-", stdin=bad)
    assert warned.code == 0
    assert 'Warning: unknown field "bogus"' in warned.err
    stored = yaml.safe_load(await cluster.ok("get", "configmap", "settings", "-o", "json"))
    assert "bogus" not in stored


async def test_unknown_field_of_a_custom_resource_is_refused(cluster: Cluster) -> None:
    pool = yaml.safe_dump(
        {
            "apiVersion": "jitnode.io/v1",
            "kind": "NodePool",
            "metadata": {"name": "pool"},
            "spec": {
                "bogus": 1,
                "template": {
                    "spec": {
                        "nodeClassRef": {"group": "jitnode.io", "kind": "EC2NodeClass", "name": "x"},
                        "requirements": [],
                    }
                },
            },
        }
    )
    run = await cluster.kubectl("apply", "-f", "-", stdin=pool)
    assert run.code != 0
    assert 'unknown field "spec.bogus"' in run.err
    await cluster.ok("apply", "--validate=false", "-f", "-", stdin=pool)
    assert "bogus" not in await cluster.ok("get", "nodepool", "pool", "-o", "jsonpath={.spec}")


async def test_server_side_apply_conflict_then_force(cluster: Cluster) -> None:
    assert "serverside-applied" in await cluster.ok("apply", "--server-side", "-f", "-", stdin=CONFIGMAP)
    other = CONFIGMAP.replace('size: "1"', 'size: "2"').replace("  colour: blue\n", "")
    refused = await cluster.kubectl("apply", "--server-side", "--field-manager=other", "-f", "-", stdin=other)
    assert refused.code != 0
    assert 'Apply failed with 1 conflict: conflict with "kubectl": .data.size' in refused.err
    await cluster.ok(
        "apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", "-", stdin=other
    )
    assert await cluster.ok("get", "configmap", "settings", "-o", "jsonpath={.data.size}") == "2"
    # kubectl stops applying "colour", which nobody else owns: the server removes it.
    await cluster.ok("apply", "--server-side", "-f", "-", stdin=other)
    data = await cluster.ok("get", "configmap", "settings", "-o", "jsonpath={.data}")
    assert "colour" not in data
    assert '"size":"2"' in data
    managers = await cluster.ok(
        "get", "cm", "settings", "-o", "jsonpath={.metadata.managedFields[*].manager}"
    )
    assert managers.split() == ["kubectl", "other"]


async def test_explain_reads_the_custom_resource_schema(cluster: Cluster) -> None:
    await cluster.ok("apply", "-f", "-", stdin=nodepool_crd_with_description())
    out = await cluster.ok("explain", "nodepool.spec.disruption")
    assert "KIND:       NodePool" in out
    assert "How and when nodes of this pool are disrupted." in out
    assert "consolidationPolicy" in out
    replicas = await cluster.ok("explain", "deployment.spec.replicas")
    assert "Number of desired pods" in replicas


async def test_diff_shows_a_change_and_stores_nothing(cluster: Cluster) -> None:
    inflate = (ROOT / "examples/seed/inflate.yaml").read_text()
    await cluster.ok("apply", "-f", "-", stdin=inflate)
    name = yaml.safe_load(inflate)["metadata"]["name"]
    before = await cluster.ok("get", "deployment", name, "-o", "jsonpath={.spec.replicas}")
    changed = yaml.safe_load(inflate)
    changed["spec"]["replicas"] = int(before) + 3
    # Server-side, the replicas kubectl's client-side apply set are another manager's: force.
    for flags in ((), ("--server-side", "--force-conflicts")):
        run = await cluster.kubectl("diff", *flags, "-f", "-", stdin=yaml.safe_dump(changed))
        assert run.code == 1, run.err
        assert f"+  replicas: {int(before) + 3}" in run.out
    same = await cluster.kubectl("diff", "-f", "-", stdin=inflate)
    assert same.code == 0, same.out + same.err
    assert await cluster.ok("get", "deployment", name, "-o", "jsonpath={.spec.replicas}") == before


async def test_imperative_create_sends_protobuf_and_stores_what_was_asked(cluster: Cluster) -> None:
    """``kubectl create <generator>`` sends built-ins as protobuf; the objects read back as asked."""
    await cluster.ok("create", "namespace", "t1")
    await cluster.ok("create", "configmap", "c1", "-n", "t1", "--from-literal=a=b", "--from-literal=n=1")
    await cluster.ok("create", "secret", "generic", "s1", "-n", "t1", "--from-literal=a=b")
    await cluster.ok("create", "serviceaccount", "sa1", "-n", "t1")
    await cluster.ok("create", "deployment", "d1", "-n", "t1", "--image=pause", "--replicas=2", "--port=8080")
    await cluster.ok("create", "service", "clusterip", "s1", "-n", "t1", "--tcp=80:8080")
    await cluster.ok(
        "create", "poddisruptionbudget", "p1", "-n", "t1", "--selector=a=b", "--max-unavailable=20%"
    )
    await cluster.ok("create", "role", "r1", "-n", "t1", "--verb=get,list", "--resource=pods")
    await cluster.ok("create", "rolebinding", "rb1", "-n", "t1", "--role=r1", "--serviceaccount=t1:sa1")

    async def get(*what: str) -> Any:
        return yaml.safe_load(await cluster.ok("get", *what, "-n", "t1", "-o", "json"))

    assert (await get("namespace", "t1"))["status"]["phase"] == "Active"
    assert (await get("configmap", "c1"))["data"] == {"a": "b", "n": "1"}
    assert (await get("secret", "s1"))["data"] == {"a": "Yg=="}
    assert (await get("serviceaccount", "sa1"))["metadata"]["name"] == "sa1"
    deployment = await get("deployment", "d1")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["selector"] == {"matchLabels": {"app": "d1"}}
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert (container["name"], container["image"]) == ("pause", "pause")
    assert [p["containerPort"] for p in container["ports"]] == [8080]
    service = await get("service", "s1")
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [
        {"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080}
    ]
    assert (await get("pdb", "p1"))["spec"] == {
        "maxUnavailable": "20%",
        "selector": {"matchLabels": {"a": "b"}},
    }
    assert (await get("role", "r1"))["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}
    ]
    binding = await get("rolebinding", "rb1")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r1"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "sa1", "namespace": "t1"}]
    # The batch group is not served: the command fails on discovery, not on the body.
    job = await cluster.kubectl("create", "job", "j1", "-n", "t1", "--image=pause")
    assert job.code != 0
    assert "could not find the requested resource" in job.err
