# mypy: disable-error-code="arg-type"
"""PodTemplates (core/v1), which CapacityBuffers name: served like the real API server's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from localcluster.apiserver import APIServer
from localcluster.apiserver.testing import running_apiserver


@pytest.fixture
async def kube() -> AsyncIterator[tuple[APIServer, client.ApiClient]]:
    async with running_apiserver() as pair:
        yield pair


def template(cpu: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "chunk"},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": cpu}}}]},
        },
    }


async def test_pod_templates_are_served_and_their_generation_follows_the_template(
    kube: tuple[APIServer, client.ApiClient],
) -> None:
    _server, api = kube
    core = client.CoreV1Api(api)
    resources = {r.name: r for r in (await core.get_api_resources()).resources}
    assert resources["podtemplates"].namespaced
    assert resources["podtemplates"].kind == "PodTemplate"
    created = await core.create_namespaced_pod_template("default", template("1"))
    assert created.metadata.generation == 1
    read = await core.read_namespaced_pod_template("chunk", "default")
    assert read.template.spec.containers[0].resources.requests == {"cpu": "1"}
    labelled = await core.patch_namespaced_pod_template(
        "chunk", "default", {"metadata": {"labels": {"x": "y"}}}
    )
    assert labelled.metadata.generation == 1  # metadata is not the template
    changed = await core.replace_namespaced_pod_template("chunk", "default", template("2"))
    assert changed.metadata.generation == 2
    await core.delete_namespaced_pod_template("chunk", "default")
    with pytest.raises(ApiException) as gone:
        await core.read_namespaced_pod_template("chunk", "default")
    assert gone.value.status == 404
