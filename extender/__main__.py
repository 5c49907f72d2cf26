"""``python -m extender --config FILE``: flags and ``JITNODE_EXTENDER_*`` variables override the file."""

from __future__ import annotations

import os
import sys

from extender import runtime
from extender.config import ENV_PREFIX, ExtenderConfig
from extender.service import ExtenderService
from shared import crashpoints
from shared.config import config_from_args
from shared.errors import ValidationError
from shared.informer import freeze_listed_pages
from shared.kubeclient import api_client
from shared.logs import configure_logging


async def _main(config: ExtenderConfig) -> None:
    async with await api_client(config.kubeconfig or None) as api:
        await ExtenderService(config, api, manage_heap=True).run_until_terminated()


def main(argv: list[str] | None = None) -> int:
    try:
        config = config_from_args(ExtenderConfig, argv, os.environ, env_prefix=ENV_PREFIX, prog="extender")
    except ValidationError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging("extender", level=config.log_level)
    try:
        crashpoints.configure(os.environ)
    except crashpoints.CrashPointError as exc:
        print(exc, file=sys.stderr)
        return 2
    runtime.tune_collector()
    freeze_listed_pages()
    runtime.run(_main(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
