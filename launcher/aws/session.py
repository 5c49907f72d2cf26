"""AWS clients for the launcher, created once from configuration and shared by every caller.

Creating a botocore client reads its JSON service model from disk, which would block the event
loop; :class:`AWSClients` loads the models in a worker thread first, then creates each client
once and keeps it for the process's life. The endpoint override points every client at moto in
tests and demos. Pricing gets its own short timeout and a single attempt: it is optional (a
bundled table stands in) and moto answers it with HTTP 500, which botocore would retry for
seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from contextlib import AsyncExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final

import aioboto3
from botocore.config import Config
from botocore.exceptions import DataNotFoundError

# The Pricing API has endpoints in only a few regions: one per partition serves all its regions'
# prices. GovCloud and the isolated partitions have none (the bundled table stands in there).
PRICING_REGIONS: Final = {"aws": "us-east-1", "aws-cn": "cn-northwest-1"}
SERVICES: Final = ("ec2", "ssm", "iam", "pricing", "sqs")
# SQS long polls hold a ReceiveMessage open up to 20 s: its reads may take that much longer.
LONG_POLL_SECONDS: Final = 20


def partition_of(region: str) -> str:
    """The AWS partition a region belongs to (``aws``, ``aws-cn``, ``aws-us-gov``, ``aws-iso``...)."""
    for prefix, partition in (
        ("cn-", "aws-cn"),
        ("us-gov-", "aws-us-gov"),
        ("us-isob-", "aws-iso-b"),
        ("us-iso-", "aws-iso"),
        ("eu-isoe-", "aws-iso-e"),
        ("us-isof-", "aws-iso-f"),
    ):
        if region.startswith(prefix):
            return partition
    return "aws"


def pricing_region(region: str) -> str | None:
    """Where the Pricing API answers for ``region``'s partition; None where it has none."""
    return PRICING_REGIONS.get(partition_of(region))


_shared_loader: Any = None
_loader_lock = threading.Lock()


@dataclass(frozen=True)
class AWSSettings:
    """Where and how to reach AWS; credentials come from the default chain unless given."""

    region: str = "us-east-1"
    endpoint_url: str | None = None
    max_attempts: int = 3
    retry_mode: str = "adaptive"
    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    pricing_timeout: float = 2.0
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None

    def client_config(self, service: str) -> Config:
        """The botocore config for ``service``: pricing fails fast, the rest retry."""
        if service == "pricing":
            return Config(
                connect_timeout=self.pricing_timeout,
                read_timeout=self.pricing_timeout,
                retries={"max_attempts": 1, "mode": "standard"},
            )
        return Config(
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout + (LONG_POLL_SECONDS if service == "sqs" else 0),
            retries={"max_attempts": self.max_attempts, "mode": self.retry_mode},
        )

    def client_kwargs(self, service: str) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "region_name": (pricing_region(self.region) or self.region)
            if service == "pricing"
            else self.region,
            "config": self.client_config(service),
        }
        if self.endpoint_url:
            kwargs["endpoint_url"] = self.endpoint_url
        if self.aws_access_key_id and self.aws_secret_access_key:
            kwargs["aws_access_key_id"] = self.aws_access_key_id
            kwargs["aws_secret_access_key"] = self.aws_secret_access_key
        return kwargs


class AWSClients:
    """Long-lived EC2, SSM, IAM, Pricing and SQS clients; use as ``async with AWSClients(settings)``."""

    def __init__(self, settings: AWSSettings) -> None:
        self.settings = settings
        self.session = aioboto3.Session()
        self._stack: AsyncExitStack | None = None
        self._clients: dict[str, Any] = {}

    async def open(self) -> AWSClients:
        if self._stack is not None:
            return self
        await asyncio.to_thread(self._load_models)
        stack = AsyncExitStack()
        try:
            for service in SERVICES:
                client = self.session.client(service, **self.settings.client_kwargs(service))
                self._clients[service] = await stack.enter_async_context(client)
        except BaseException:
            await stack.aclose()
            self._clients.clear()
            raise
        self._stack = stack
        return self

    def _load_models(self) -> None:
        """Warm botocore's (synchronous, cached) loader off the loop, so clients skip the disk.

        The loader is shared by every ``AWSClients`` of the process: models are read once.
        """
        global _shared_loader
        with _loader_lock:
            if _shared_loader is None:
                loader = self.session._session.get_component("data_loader")
                for service in SERVICES:
                    for kind in ("service-2", "paginators-1", "endpoint-rule-set-1"):
                        with contextlib.suppress(DataNotFoundError):
                            loader.load_service_model(service, kind)
                for name in ("endpoints", "partitions", "sdk-default-configuration", "_retry"):
                    with contextlib.suppress(DataNotFoundError):
                        loader.load_data(name)
                _shared_loader = loader
            self.session._session.register_component("data_loader", _shared_loader)

    async def close(self) -> None:
        stack, self._stack = self._stack, None
        self._clients.clear()
        if stack is not None:
            await stack.aclose()

    async def __aenter__(self) -> AWSClients:
        return await self.open()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def _client(self, service: str) -> Any:
        try:
            return self._clients[service]
        except KeyError:
            raise RuntimeError("AWSClients used before open()") from None

    @property
    def ec2(self) -> Any:
        return self._client("ec2")

    @property
    def ssm(self) -> Any:
        return self._client("ssm")

    @property
    def iam(self) -> Any:
        return self._client("iam")

    @property
    def pricing(self) -> Any:
        return self._client("pricing")

    @property
    def sqs(self) -> Any:
        return self._client("sqs")
