"""The demo's knobs, apart from the scenario so the command line can parse them cheaply."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DemoOptions:
    replicas: int = 10
    boot_delay: float = 5.0
    container_start_delay: float = 0.5
    empty_ttl: float = 30.0
    kubeconfig: str | None = None  # a real cluster running jitnode; None: the local cluster
    cluster: str | None = None  # real clusters: count instances tagged for it as leaks too
    region: str | None = None  # real clusters: EC2 region (default AWS_REGION, us-east-1)
    poll_interval: float | None = None  # default 0.25 s locally, 1 s on a real cluster
    deadline: float = 300.0  # the whole run, start to JSON line
    scale_up_timeout: float = 180.0
    drain_timeout: float = 120.0  # after the empty TTL has passed
    terminate_timeout: float = 60.0

    @property
    def interval(self) -> float:
        if self.poll_interval is not None:
            return self.poll_interval
        return 1.0 if self.kubeconfig else 0.25
