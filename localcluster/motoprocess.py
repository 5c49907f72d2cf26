"""moto in a child process, for ``python -m localcluster up``.

Importing moto's EC2 models and building its first backend costs about a second of CPU, and
the rest of the cluster (kubernetes-asyncio, aiohttp, the API server) about as much again. In
one process they add up; in two they overlap, which is what keeps a fresh ``up`` under the two
seconds issue 3 asks for. Tests keep moto in their own process (``MotoEC2``), because they
reach into its backend to inject faults; ``up`` has nothing to inject, so it spawns this.

The parent binds and listens on the port itself and hands the socket to the child, so the
endpoint is known at once and clients (the kubelets) can connect right away: the kernel queues
their connections until moto answers. The child starts moto on that socket, seeds it as eksctl
leaves an account (the seeding also writes to the backend directly, so it has to happen in the
process that holds it), prints one JSON line with the :class:`ClusterNetwork`, then serves
until its stdin closes. The parent
holds that stdin, so the child goes away with the parent even if the parent is killed: no
orphaned moto outlives a crashed ``up``.

This module imports only the standard library and ``localcluster.ec2`` (also stdlib-only at
import time), so the parent can spawn the child before its own heavy imports begin.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict
from typing import IO, Any, Final

from localcluster.ec2 import DEFAULT_CLUSTER, DEFAULT_REGION, ClusterNetwork, EC2Endpoint, MotoEC2

READY_TIMEOUT: Final = 60.0
STOP_TIMEOUT: Final = 10.0


class MotoProcessError(RuntimeError):
    """The child exited or printed something else before it was ready."""


class MotoProcess(EC2Endpoint):
    """A seeded moto server in a child process; :meth:`spawn` it, ``await`` :meth:`ready`, :meth:`stop`."""

    def __init__(self, process: subprocess.Popen[str], endpoint: str, cluster: str, region: str) -> None:
        super().__init__(region)
        self.endpoint = endpoint
        self.cluster = cluster
        self._process = process

    @classmethod
    def spawn(cls, cluster: str = DEFAULT_CLUSTER, region: str = DEFAULT_REGION) -> MotoProcess:
        """Start the child now (a fork and exec: milliseconds); it seeds ``cluster`` on its own."""
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(128)
            host, port = listener.getsockname()[:2]
            fd = listener.fileno()
            process = subprocess.Popen(
                [sys.executable, "-m", __name__, "--fd", str(fd), "--cluster", cluster, "--region", region],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                pass_fds=(fd,),
            )
        # Our copy of the socket is closed; the child's keeps listening.
        return cls(process, f"http://{host}:{port}", cluster, region)

    async def ready(self, timeout: float = READY_TIMEOUT) -> ClusterNetwork:  # noqa: ASYNC109
        """Wait for the child's ready line; raises :class:`MotoProcessError` if it died instead."""
        if self.network is not None:
            return self.network
        stdout = self._process.stdout
        assert stdout is not None
        async with asyncio.timeout(timeout):
            line = await asyncio.to_thread(stdout.readline)
        if not line:
            code = await asyncio.to_thread(self._process.wait)
            raise MotoProcessError(f"moto child exited with code {code} before it was ready")
        try:
            self.network = ClusterNetwork(**json.loads(line)["network"])
        except (ValueError, KeyError, TypeError) as exc:
            raise MotoProcessError(f"moto child printed {line.strip()!r}, not its ready line") from exc
        return self.network

    async def stop(self) -> None:
        """:meth:`close` from the event loop."""
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        """Close the child's stdin (its signal to stop) and reap it; kill it if it hangs. Idempotent."""
        process = self._process
        if process.stdin is not None and not process.stdin.closed:
            process.stdin.close()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def share_botocore_loader() -> None:
    """Give every botocore session in this process one data loader, so each JSON file is parsed once.

    moto builds a fresh ``boto3.Session()`` a dozen times while it imports and creates its
    backends (region lists per partition, per service), and each new session parses botocore's
    endpoint and service files again: about 0.4 s of this child's startup. A loader only reads
    and caches those files, and the clients of one session already share theirs, so sharing it
    across sessions changes nothing else. Done only in this child, which nothing but moto uses;
    if botocore ever stops creating loaders this way, the child is merely slower.
    """
    import botocore.loaders
    import botocore.session

    sessions: Any = botocore.session
    create: Any = botocore.loaders.create_loader
    shared = functools.lru_cache(maxsize=None)(create)
    if getattr(sessions, "create_loader", None) is create:
        sessions.create_loader = shared


def serve(fd: int, cluster: str, region: str, stdin: IO[str], stdout: IO[str]) -> None:
    """The child's life: start moto on ``fd``, seed it, announce it, serve until ``stdin`` closes."""
    moto = MotoEC2(region)
    moto.start(listening_fd=fd)
    try:
        network = moto.seed_eksctl_cluster(cluster)
        stdout.write(json.dumps({"network": asdict(network)}) + "\n")
        stdout.flush()
        stdin.read()  # returns at EOF: the parent closed the pipe or died
    finally:
        moto.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {__name__}", description=__doc__.splitlines()[0])
    parser.add_argument("--fd", type=int, required=True, help="a listening socket inherited from the parent")
    parser.add_argument("--cluster", default=DEFAULT_CLUSTER)
    parser.add_argument("--region", default=DEFAULT_REGION)
    args = parser.parse_args(argv)
    # Ctrl-C in a terminal reaches the whole process group: the parent decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    share_botocore_loader()
    serve(args.fd, args.cluster, args.region, sys.stdin, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
