"""``python -m launcher --config FILE``: flags and ``JITNODE_LAUNCHER_*`` variables override the file."""

from __future__ import annotations

import asyncio
import os
import sys

from launcher.aws.session import AWSClients, AWSSettings
from launcher.config import ENV_PREFIX, LauncherConfig
from launcher.service import LauncherService
from shared import crashpoints
from shared.config import config_from_args
from shared.errors import ValidationError
from shared.informer import freeze_listed_pages
from shared.kubeclient import api_client
from shared.logs import configure_logging, get_logger
from shared.process import until_terminated


async def run(config: LauncherConfig) -> None:
    """Serve until SIGTERM/SIGINT, then stop gracefully (release the Lease, close streams)."""
    api = await api_client(config.cluster.kubeconfig)
    clients = AWSClients(AWSSettings(region=config.aws.region, endpoint_url=config.aws.endpoint_url))
    async with api:
        service = LauncherService(config, api, clients)
        await service.start()
        try:
            await until_terminated()
            get_logger("launcher").info("launcher stopping")
        finally:
            await service.stop()


def main(argv: list[str] | None = None) -> int:
    try:
        config = config_from_args(LauncherConfig, argv, os.environ, env_prefix=ENV_PREFIX, prog="launcher")
    except ValidationError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging("launcher", level=config.log_level, fmt=config.log_format)
    try:
        crashpoints.configure(os.environ)
    except crashpoints.CrashPointError as exc:
        print(exc, file=sys.stderr)
        return 2
    freeze_listed_pages()
    asyncio.run(run(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
