"""Local cluster startup: how long ``LocalCluster`` takes to serve (issue 3 asks for under 2 s).

Two figures, median of ``--runs``: a cluster whose moto server was already started (moto's
one-time import excluded, as in a test session that reuses one), and a whole fresh process
(``python -m localcluster up`` until it says it is up), which includes every import.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from localcluster.cluster import LocalCluster  # noqa: E402
from localcluster.ec2 import MotoEC2  # noqa: E402
from localcluster.kubelet import KubeletConfig  # noqa: E402
from shared.logs import configure_logging  # noqa: E402


async def warm_starts(runs: int) -> list[float]:
    ec2 = MotoEC2()
    await asyncio.to_thread(ec2.start)
    try:
        seconds = []
        for _ in range(runs):
            async with LocalCluster(kubelet_config=KubeletConfig.immediate(), ec2=ec2) as cluster:
                seconds.append(cluster.startup_seconds)
        return seconds
    finally:
        await asyncio.to_thread(ec2.stop)


def cold_start(timeout: float = 60.0) -> float:
    """Seconds from exec to the line where ``python -m localcluster up`` says it is up."""
    kubeconfig = Path(tempfile.mkdtemp()) / "kubeconfig"
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "localcluster", "up", "--kubeconfig", str(kubeconfig)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:  # log lines come first
            if " is up in " in line:
                return time.perf_counter() - started
        raise RuntimeError("localcluster up exited before it was up")
    finally:
        process.terminate()
        process.wait(timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    configure_logging("bench", level="warning")
    warm = asyncio.run(warm_starts(args.runs))
    cold = [cold_start() for _ in range(args.runs)]
    print(
        f"LocalCluster startup, moto already running: median {statistics.median(warm):.2f} s  (runs: "
        + ", ".join(f"{s:.2f}" for s in warm)
        + ")"
    )
    print(
        f"python -m localcluster up, fresh process:  median {statistics.median(cold):.2f} s  (runs: "
        + ", ".join(f"{s:.2f}" for s in cold)
        + ")"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
