"""Named crash points, like etcd's gofail: the process SIGKILLs itself at a chosen step.

The fault-injection suite (``tests/chaos/test_process_kills.py``) proves that a launcher or
extender killed at the worst moment loses nothing and launches nothing twice. Stopping a
process from outside cannot hit "after the NodeClaim is created, before CreateFleet" reliably;
a crash point in the code can. ``JITNODE_CRASH_AT`` names the points to arm, comma-separated,
each optionally ``name@N`` to die on its Nth hit (default the first). An armed point logs one
line and sends the process SIGKILL: real death, no ``finally``, no graceful shutdown.

Unarmed, :func:`crash_point` costs one dict lookup. The variable is read once, by
:func:`configure`, which both services' ``__main__`` call at startup: an unknown name or a bad
count is refused there with :class:`CrashPointError`, so a typo can never silently test nothing.
Nothing is armed in a process that does not call it (the test process itself, in particular).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Mapping
from typing import Final

from shared.logs import get_logger

ENV_VAR: Final = "JITNODE_CRASH_AT"

CLAIM_CREATED: Final = "claim-created"
"""Provisioner: a NodeClaim was created; the claim controller has not called CreateFleet for it."""

PLAN_PARTLY_CREATED: Final = "plan-partly-created"
"""Provisioner: a claim of a plan was created and more of the same plan remain to be created
(the leader dies mid-plan; the next leader must create the rest, and only the rest)."""

FLEET_RETURNED: Final = "fleet-returned"
"""Claim controller: CreateFleet returned an instance; the claim's status does not record it yet."""

DRAIN_EVICTED: Final = "drain-evicted"
"""Drainer: one pod's eviction was accepted; the rest of the node's pods are still on it."""

INSTANCE_TERMINATED: Final = "instance-terminated"
"""Claim controller: TerminateInstances returned for a deleted claim; its finalizer is still on."""

STREAM_PARTIAL_FRAME: Final = "stream-partial-frame"
"""Extender demand stream: the first bytes of a delta's WebSocket frame are on the wire, the
rest never will be (the launcher sees the connection drop mid-message)."""

KNOWN: Final = frozenset(
    {
        CLAIM_CREATED,
        PLAN_PARTLY_CREATED,
        FLEET_RETURNED,
        DRAIN_EVICTED,
        INSTANCE_TERMINATED,
        STREAM_PARTIAL_FRAME,
    }
)

_log = get_logger(__name__)
_armed: dict[str, int] = {}  # name -> the hit that kills
_hits: dict[str, int] = {}


class CrashPointError(ValueError):
    """``JITNODE_CRASH_AT`` names an unknown crash point or a bad hit count."""


def parse(spec: str) -> dict[str, int]:
    """``name[@N],...`` as {name: N}; raises :class:`CrashPointError` naming what is wrong."""
    armed: dict[str, int] = {}
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        name, sep, count = item.partition("@")
        if name not in KNOWN:
            raise CrashPointError(
                f"{ENV_VAR}: unknown crash point {name!r} (known: {', '.join(sorted(KNOWN))})"
            )
        hit = 1
        if sep:
            if not count.isdigit() or int(count) < 1:
                raise CrashPointError(f"{ENV_VAR}: {item!r}: the hit count must be a positive integer")
            hit = int(count)
        if name in armed:
            raise CrashPointError(f"{ENV_VAR}: crash point {name!r} named twice")
        armed[name] = hit
    return armed


def configure(environ: Mapping[str, str]) -> dict[str, int]:
    """Arm the points ``environ[JITNODE_CRASH_AT]`` names (none if unset); returns them.

    Call once at startup, before serving; raises :class:`CrashPointError` on a bad value.
    """
    armed = parse(environ.get(ENV_VAR, ""))
    _armed.clear()
    _armed.update(armed)
    _hits.clear()
    if armed:
        _log.warning("crash points armed", crash_points=dict(sorted(armed.items())))
    return armed


def crash_point(name: str, before_death: Callable[[], object] | None = None) -> None:
    """Die here by SIGKILL if ``name`` is armed and this is its chosen hit; else do nothing.

    ``before_death`` runs just before the kill (a partial write, say); it must not block.
    """
    if name not in _armed:
        return
    hit = _hits.get(name, 0) + 1
    _hits[name] = hit
    if hit != _armed[name]:
        return
    _log.critical("crash point reached", crash_point=name, hit=hit, pid=os.getpid())
    if before_death is not None:
        before_death()
    os.kill(os.getpid(), signal.SIGKILL)
