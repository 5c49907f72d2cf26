# mypy: disable-error-code="arg-type, call-arg"
"""The real kubectl against the emulated server: get, apply, scale, delete."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from kubernetes_asyncio import client

from localcluster.apiserver.testing import running_apiserver

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: c, image: nginx}
"""


async def kubectl(config: Path, *args: str, stdin: str | None = None) -> str:
    assert KUBECTL is not None
    proc = await asyncio.create_subprocess_exec(
        KUBECTL,
        "--kubeconfig",
        str(config),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        out, err = await proc.communicate(stdin.encode() if stdin else None)
    assert proc.returncode == 0, f"kubectl {' '.join(args)}: {err.decode()}"
    return out.decode()


async def test_kubectl_get_apply_scale_delete(tmp_path: Path) -> None:
    async with running_apiserver() as (server, api):
        config = server.write_kubeconfig(tmp_path / "kubeconfig")
        await client.CoreV1Api(api).create_node({"metadata": {"name": "node-a"}})
        assert "node-a" in await kubectl(config, "get", "nodes")
        assert "created" in await kubectl(config, "apply", "--validate=false", "-f", "-", stdin=DEPLOYMENT)
        apps = client.AppsV1Api(api)
        assert (await apps.read_namespaced_deployment("web", "default")).spec.replicas == 2
        assert "configured" in await kubectl(
            config,
            "apply",
            "--validate=false",
            "-f",
            "-",
            stdin=DEPLOYMENT.replace("replicas: 2", "replicas: 3"),
        )
        assert (await apps.read_namespaced_deployment("web", "default")).spec.replicas == 3
        await kubectl(config, "scale", "deployment", "web", "--replicas=1")
        assert (await apps.read_namespaced_deployment("web", "default")).spec.replicas == 1
        await kubectl(config, "delete", "deployment", "web")
        assert (await apps.list_namespaced_deployment("default")).items == []
