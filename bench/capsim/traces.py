"""Pod arrival traces: what the workloads ask for over time, deterministic for a seed.

A trace sets each workload's desired replicas at given times, as ``kubectl scale`` or an HPA
would; a rollout replaces a Deployment's pods with at most ``max_surge`` extra at a time, each
old pod going once a new one has been Ready for ``ready_after`` seconds (the Deployment
controller's rolling update with maxUnavailable 0), so how fast it goes depends on capacity.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from capsim.params import GIB
from capsim.planning import seed
from shared.resources import CPU, MEMORY, Resources

HOUR: Final = 3600.0
DAY: Final = 24 * HOUR
# The diurnal trace's spikes: (start, height added to the day's 0..1 level), fading linearly.
DIURNAL_SPIKES: Final = ((9.5 * HOUR, 0.35), (18 * HOUR, 0.5))
SPIKE_FADE_S: Final = 15 * 60.0


@dataclass(frozen=True)
class Workload:
    """Pods of one shape: the seed's ``inflate`` is 1 CPU and 1.5 GiB."""

    name: str
    cpu_m: int
    memory: int

    @property
    def shape(self) -> tuple[int, int]:
        return (self.cpu_m, self.memory)


@dataclass(frozen=True)
class Rollout:
    """A rolling update of ``workload`` starting at ``at``."""

    at: float
    workload: str
    max_surge: float = 0.25
    ready_after: float = 10.0


@dataclass(frozen=True)
class Trace:
    name: str
    description: str
    duration: float  # seconds simulated; the table scales costs to a day
    workloads: tuple[Workload, ...]
    steps: tuple[tuple[float, str, int], ...]  # (time, workload, desired replicas), time-ordered
    rollouts: tuple[Rollout, ...] = ()

    def workload(self, name: str) -> Workload:
        return next(w for w in self.workloads if w.name == name)


def seed_workload() -> Workload:
    """The seed's ``inflate`` Deployment as a workload: 1 CPU and 1.5 GiB a pod."""
    deployment = seed().deployment
    requests = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
    parsed = Resources.parse(requests)
    return Workload(str(deployment["metadata"]["name"]), parsed.amount(CPU), parsed.amount(MEMORY))


INFLATE: Final = seed_workload()


def burst(replicas: int) -> Trace:
    """The seed's walkthrough: ``inflate`` scaled from 0 to ``replicas``, kept 10 min, then to 0."""
    return Trace(
        name=f"burst-{replicas}",
        description=f"seed inflate 0->{replicas}, 10 min, ->0",
        duration=HOUR,
        workloads=(INFLATE,),
        steps=((60.0, "inflate", replicas), (660.0, "inflate", 0)),
    )


def _day_shape(t: float) -> float:
    """Traffic over a day, 0..1: night trough at 04:00, morning ramp, peaks at 11:00 and 15:00."""
    hour = (t / HOUR) % 24
    base = 0.5 - 0.5 * math.cos(2 * math.pi * (hour - 4) / 24)
    dip = 0.08 * math.exp(-(((hour - 13) / 1.0) ** 2))  # lunch
    return max(0.0, min(1.0, math.pow(base, 1.5) + 0.05 * math.sin(2 * math.pi * hour / 3) - dip))


def diurnal(seed: int) -> Trace:
    """A day of a web tier and its workers, resized by an HPA every minute, with noise and two
    short spikes (a newsletter at 09:30, a campaign at 18:00)."""
    rng = random.Random(seed)
    web = Workload("web", 500, 1 * GIB)
    worker = Workload("worker", 1000, 2 * GIB)
    steps: list[tuple[float, str, int]] = []
    for minute in range(24 * 60):
        t = minute * 60.0
        level = _day_shape(t)
        for start, height in DIURNAL_SPIKES:
            if start <= t < start + SPIKE_FADE_S:
                level += height * (1 - (t - start) / SPIKE_FADE_S)
        noise = rng.gauss(1.0, 0.04)
        steps.append((t, "web", max(2, round((8 + 160 * level) * noise))))
        lagged = _day_shape(t - 20 * 60)  # workers follow the queue the web tier fills
        steps.append((t, "worker", max(1, round((2 + 40 * lagged) * rng.gauss(1.0, 0.05)))))
    return Trace("diurnal", "web + workers over 24 h, HPA each minute", DAY, (web, worker), tuple(steps))


def batch(seed: int) -> Trace:
    """Spiky batch jobs over 6 h: about 3 an hour, 10 to 60 pods of 2 CPU / 4 GiB, 5 to 15 min each."""
    rng = random.Random(seed)
    job = Workload("batch", 2000, 4 * GIB)
    duration = 6 * HOUR
    changes: list[tuple[float, int]] = []
    t = rng.expovariate(1 / 1200)
    while t < duration - HOUR:
        size = rng.randint(10, 60)
        changes += [(t, size), (t + rng.uniform(300, 900), -size)]
        t += rng.expovariate(1 / 1200)
    changes.sort()
    steps: list[tuple[float, str, int]] = []
    running = 0
    for at, delta in changes:
        running += delta
        steps.append((at, "batch", running))
    return Trace("batch", "Poisson jobs of 10-60 pods (2 CPU)", duration, (job,), tuple(steps))


def rollout_surge() -> Trace:
    """A 60-pod Deployment (1 CPU / 2 GiB) rolled out three times, an hour apart, 25% surge."""
    app = Workload("app", 1000, 2 * GIB)
    return Trace(
        name="rollout",
        description="60 pods, 3 rollouts at 25% surge",
        duration=3 * HOUR,
        workloads=(app,),
        steps=((0.0, "app", 60),),
        rollouts=tuple(Rollout(at=600.0 + i * HOUR, workload="app") for i in range(3)),
    )


TRACES: Final[dict[str, Callable[[int], Trace]]] = {
    "burst-10": lambda seed: burst(10),
    "burst-100": lambda seed: burst(100),
    "diurnal": diurnal,
    "batch": batch,
    "rollout": lambda seed: rollout_surge(),
}
