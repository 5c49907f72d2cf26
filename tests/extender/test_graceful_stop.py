"""SIGTERM, as Kubernetes sends it: readiness goes false, the listener closes, in-flight calls
finish, and ``run_until_terminated`` returns after a clean stop."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import aiohttp
from aiohttp import web

from extender.config import ExtenderConfig, ServerConfig
from extender.service import ExtenderService
from localcluster.apiserver.testing import running_apiserver
from tests.extender.helpers import eventually


class SlowCallService(ExtenderService):
    """The service with one slow route, standing in for a filter call still being answered."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ready_during_call: bool | None = None
        self.call_started = asyncio.Event()

    def build_app(self) -> web.Application:
        app = super().build_app()

        async def slow(request: web.Request) -> web.Response:
            self.call_started.set()
            await asyncio.sleep(0.3)
            self.ready_during_call = self.ready()
            return web.Response(text="finished")

        app.router.add_get("/slow", slow)
        return app


async def test_sigterm_drains_in_flight_calls_then_stops() -> None:
    config = ExtenderConfig(
        server=ServerConfig(host="127.0.0.1", port=0, shutdown_grace=5.0), watch_timeout=30
    )
    default_handler = signal.getsignal(signal.SIGTERM)
    async with running_apiserver() as (_, api):
        service = SlowCallService(config, api)
        running = asyncio.create_task(service.run_until_terminated())
        # Wait until the service serves and the SIGTERM handler is in place (else the signal
        # would end the test process).
        await eventually(lambda: service.ready() and signal.getsignal(signal.SIGTERM) != default_handler)
        url = f"http://127.0.0.1:{service.port}"

        async with aiohttp.ClientSession() as session:

            async def call() -> tuple[int, str]:
                async with session.get(f"{url}/slow") as response:
                    return response.status, await response.text()

            in_flight = asyncio.create_task(call())
            await asyncio.wait_for(service.call_started.wait(), 5)
            os.kill(os.getpid(), signal.SIGTERM)
            assert await asyncio.wait_for(in_flight, 5) == (200, "finished")
        assert service.ready_during_call is False  # endpoints drop it while it drains
        await asyncio.wait_for(running, 5)
        # The listener is gone: a new connection is refused.
        async with aiohttp.ClientSession() as session:
            refused: Any = None
            try:
                await session.get(f"{url}/healthz")
            except aiohttp.ClientConnectionError as exc:
                refused = exc
            assert refused is not None
    assert signal.getsignal(signal.SIGTERM) == default_handler  # handlers removed on the way out
