"""``python -m localcluster up``: run the local cluster until Ctrl-C, for the demo and for poking.

Prints the kubeconfig to use with kubectl and the environment that points AWS SDKs (the
launcher, the aws CLI) at the emulated EC2, then stays up; SIGINT or SIGTERM stops everything
cleanly and exits 0.

moto is spawned as a child process first thing, before this process imports the rest of the
cluster, so that the two one-time import costs overlap (see :mod:`localcluster.motoprocess`).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from localcluster.ec2 import DEFAULT_CLUSTER
from localcluster.motoprocess import MotoProcess

if TYPE_CHECKING:
    from localcluster.cluster import LocalCluster


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m localcluster", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the local cluster and stay up until Ctrl-C")
    up.add_argument(
        "--kubeconfig", type=Path, default=Path("localcluster.kubeconfig"), help="kubeconfig to write"
    )
    up.add_argument("--scheduler-config", type=Path, help="a KubeSchedulerConfiguration (may list extenders)")
    up.add_argument("--boot-delay", type=float, default=5.0, help="seconds from instance running to Node")
    up.add_argument("--container-start-delay", type=float, default=0.5, help="seconds from bound to Running")
    up.add_argument("--heartbeat-interval", type=float, default=10.0, help="seconds between node heartbeats")
    up.add_argument("--cluster", default=DEFAULT_CLUSTER, help="cluster name (EC2 tags, eksctl seeding)")
    up.add_argument("--seed", type=int, help="seed for the scheduler's tie-breaking")
    return parser


def usage_text(cluster: LocalCluster) -> str:
    """What a user needs to talk to the running cluster."""
    kubeconfig = cluster.kubeconfig_path.resolve()
    env = cluster.ec2.environment()
    exports = "\n".join(f"  export {name}={value}" for name, value in env.items())
    return (
        f"localcluster {cluster.cluster!r} is up in {cluster.startup_seconds:.2f} s\n"
        f"API server:   {cluster.api_url}\n"
        f"kubeconfig:   {kubeconfig}\n"
        f"  kubectl --kubeconfig {kubeconfig} get nodes\n"
        f"EC2 endpoint: {cluster.ec2.endpoint} (region {cluster.ec2.region})\n"
        f"AWS SDK environment:\n{exports}\n"
        "Press Ctrl-C to stop.\n"
    )


async def run_up(args: argparse.Namespace, moto: MotoProcess) -> None:
    from localcluster.cluster import LocalCluster

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    cluster = LocalCluster(
        cluster=args.cluster,
        boot_delay=args.boot_delay,
        container_start_delay=args.container_start_delay,
        heartbeat_interval=args.heartbeat_interval,
        scheduler_config=args.scheduler_config,
        kubeconfig_path=args.kubeconfig,
        seed=args.seed,
        ec2=moto,
    )
    async with cluster:
        sys.stdout.write(usage_text(cluster))
        sys.stdout.flush()
        await stop.wait()
        sys.stdout.write("stopping localcluster\n")
        sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "up":
        moto = MotoProcess.spawn(cluster=args.cluster)
        try:
            from shared.logs import configure_logging

            configure_logging("localcluster", fmt="console")
            asyncio.run(run_up(args, moto))
        finally:
            moto.close()  # idempotent: LocalCluster has usually stopped it already
    return 0


if __name__ == "__main__":
    sys.exit(main())
