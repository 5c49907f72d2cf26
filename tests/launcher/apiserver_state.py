"""A local API server with jitnode's CRDs installed and a synced :class:`LauncherState` on it.

The launcher's controllers read the cluster through ``LauncherState``; tests of a controller
against a real API (the local one) start from exactly this.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import yaml
from kubernetes_asyncio import client

from launcher.state import LauncherState
from localcluster.apiserver.testing import running_apiserver

CRDS = Path(__file__).resolve().parents[2] / "manifests" / "crds"


@asynccontextmanager
async def launcher_state_on_apiserver() -> AsyncIterator[tuple[client.ApiClient, LauncherState]]:
    async with running_apiserver() as (_, api):
        extensions = client.ApiextensionsV1Api(api)
        for path in sorted(CRDS.glob("*.yaml")):
            for document in yaml.safe_load_all(path.read_text()):
                if document:
                    await extensions.create_custom_resource_definition(document)
        state = LauncherState(api)
        state.start()
        await state.wait_synced()
        try:
            yield api, state
        finally:
            await state.stop()
