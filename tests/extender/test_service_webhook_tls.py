"""The running ExtenderService on the local cluster: the admission webhook answers from the
namespace informer, over HTTPS whose certificate is reloaded when the Secret volume changes."""

from __future__ import annotations

import base64
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from kubernetes_asyncio import client

from extender.config import ExtenderConfig, ServerConfig
from extender.service import ExtenderService
from extender.webhook import NOT_SYNCED_WARNING
from localcluster.apiserver.testing import client_configuration, running_apiserver
from shared import labels
from tests.extender.helpers import eventually, eventually_async
from tests.tlsfiles import SecretVolume, client_context, https_get, self_signed

ENABLED = {labels.SCHEDULING_LABEL: labels.SCHEDULING_ENABLED}


def admission_review(namespace: str, uid: str = "b1f5b1b6-0e0a-4c4e-9f55-1c2d3e4f5a6b") -> dict[str, Any]:
    """An AdmissionReview v1 as kube-apiserver sends it for a pod CREATE (schedulerName defaulted)."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "web-", "namespace": namespace, "labels": {"app": "web"}},
        "spec": {
            "containers": [{"name": "web", "image": "nginx", "resources": {"requests": {"cpu": "100m"}}}],
            "schedulerName": "default-scheduler",
            "restartPolicy": "Always",
        },
        "status": {},
    }
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": pod,
            "oldObject": None,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


async def post_review(
    url: str, namespace: str, ssl_context: ssl.SSLContext | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """POST a review to ``/mutate``; returns the response and its decoded JSONPatch (or None)."""
    review = admission_review(namespace)
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{url}/mutate",
            data=orjson.dumps(review),
            headers={"Content-Type": "application/json"},
            ssl=ssl_context if ssl_context is not None else False,
        ) as answer,
    ):
        assert answer.status == 200
        body = orjson.loads(await answer.read())
    assert body["apiVersion"] == "admission.k8s.io/v1"
    assert body["kind"] == "AdmissionReview"
    response = body["response"]
    assert response["uid"] == review["request"]["uid"]
    assert response["allowed"] is True
    if "patch" not in response:
        return response, None
    assert response["patchType"] == "JSONPatch"
    patch: list[dict[str, Any]] = orjson.loads(base64.b64decode(response["patch"]))
    return response, patch


SET_SCHEDULER = [{"op": "add", "path": "/spec/schedulerName", "value": labels.SCHEDULER_NAME}]


def local_config(**server: Any) -> ExtenderConfig:
    return ExtenderConfig(
        server=ServerConfig(host="127.0.0.1", port=0, shutdown_grace=1.0, **server), watch_timeout=30
    )


@pytest.fixture
async def api() -> AsyncIterator[client.ApiClient]:
    async with running_apiserver() as (_, api_client):
        yield api_client


async def test_webhook_patches_pods_of_opted_in_namespaces_only(api: client.ApiClient) -> None:
    core: Any = client.CoreV1Api(api)
    await core.create_namespace(body={"metadata": {"name": "opted", "labels": ENABLED}})
    await core.create_namespace(body={"metadata": {"name": "plain", "labels": {"team": "a"}}})
    service = ExtenderService(local_config(), api)
    await service.start()
    try:
        await eventually(service.ready)
        url = f"http://127.0.0.1:{service.port}"

        response, patch = await post_review(url, "opted")
        assert patch == SET_SCHEDULER
        assert "warnings" not in response
        _, patch = await post_review(url, "plain")
        assert patch is None

        # Opting in later reaches the webhook through the watch, not through a lookup.
        await core.patch_namespace("plain", body={"metadata": {"labels": ENABLED}})

        async def plain_patched() -> bool:
            return (await post_review(url, "plain"))[1] == SET_SCHEDULER

        await eventually_async(plain_patched, within=5)
        # And opting out again.
        await core.patch_namespace("opted", body={"metadata": {"labels": {labels.SCHEDULING_LABEL: "off"}}})

        async def opted_out() -> bool:
            return (await post_review(url, "opted"))[1] is None

        await eventually_async(opted_out, within=5)
        assert service.namespace_labels.get("opted") == {labels.SCHEDULING_LABEL: "off"}
    finally:
        await service.stop()


async def test_before_the_namespace_cache_syncs_pods_pass_unchanged(unused_tcp_port: int) -> None:
    """No API server answers: nothing syncs, readiness stays false, the webhook allows with a warning."""
    async with client.ApiClient(client_configuration(f"http://127.0.0.1:{unused_tcp_port}")) as api:
        service = ExtenderService(local_config(), api)
        await service.start()
        try:
            url = f"http://127.0.0.1:{service.port}"
            response, patch = await post_review(url, "opted")
            assert patch is None
            assert response["warnings"] == [NOT_SYNCED_WARNING]
            assert not service.namespaces.has_synced
            async with aiohttp.ClientSession() as session, session.get(f"{url}/readyz") as ready:
                assert ready.status == 503
        finally:
            await service.stop()


async def test_https_certificate_reloads_without_restart(api: client.ApiClient, tmp_path: Path) -> None:
    a, b = self_signed("extender-a"), self_signed("extender-b")
    volume = SecretVolume(tmp_path / "tls")
    volume.write(a.cert_pem, a.key_pem)
    core: Any = client.CoreV1Api(api)
    await core.create_namespace(body={"metadata": {"name": "opted", "labels": ENABLED}})
    config = local_config(
        tls_cert_file=volume.cert_file, tls_key_file=volume.key_file, tls_reload_interval=0.05
    )
    service = ExtenderService(config, api)
    await service.start()
    try:
        assert service.scheme == "https"
        peer, response = await https_get(service.port, "/healthz", client_context(a))
        assert peer == a.der
        assert response.startswith(b"HTTP/1.1 200")
        assert response.endswith(b"ok")
        # Plain HTTP is not served on the TLS port.
        with pytest.raises(aiohttp.ClientError):
            async with aiohttp.ClientSession() as session:
                await session.get(f"http://127.0.0.1:{service.port}/healthz")
        # The webhook works over TLS, as the API server calls it.
        await eventually(service.ready)
        _, patch = await post_review(f"https://localhost:{service.port}", "opted", client_context(a))
        assert patch == SET_SCHEDULER

        volume.write(b.cert_pem, b.key_pem)  # the Secret is renewed: kubelet swaps ..data

        async def serves_b() -> bool:
            return (await https_get(service.port, "/healthz", client_context(a, b)))[0] == b.der

        await eventually_async(serves_b, within=5, step=0.02)
        with pytest.raises(ssl.SSLCertVerificationError):
            await https_get(service.port, "/healthz", client_context(a))

        volume.write(b"-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n", b"junk")
        failed = service.metrics.tls_reloads.labels("failed")
        await eventually(lambda: failed._value.get() == 1)
        peer, response = await https_get(service.port, "/healthz", client_context(b))
        assert peer == b.der
        assert response.endswith(b"ok")
        assert service.metrics.tls_reloads.labels("ok")._value.get() == 1
    finally:
        await service.stop()
