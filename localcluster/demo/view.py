"""How the demo shows progress: a live panel on a terminal, a plain log anywhere else.

Both take the same calls (:class:`View`): ``update`` with each new snapshot and ``note`` for a
step or milestone. :class:`LiveView` redraws a small panel in place with ANSI cursor movement
(no curses: any VT100-compatible terminal works), printing notes above it so they scroll as a
record. :class:`PlainLog` writes one line per change, for pipes, files and CI logs.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from typing import Protocol, TextIO

from localcluster.demo.snapshot import Snapshot, changes

_UP = "\x1b[{}A"
_CLEAR_DOWN = "\x1b[J"
_HIDE_CURSOR = "\x1b[?25l"
_SHOW_CURSOR = "\x1b[?25h"
_BAR_WIDTH = 20


Clock = Callable[[], float]


class View(Protocol):
    def update(self, snapshot: Snapshot) -> None: ...

    def note(self, text: str) -> None: ...

    def step(self, text: str) -> None: ...

    def block(self, lines: list[str]) -> None: ...

    def close(self) -> None: ...


def _stamp(elapsed: float) -> str:
    return f"[{elapsed:6.1f}s]"


def _bar(done: int, total: int) -> str:
    if total <= 0:
        return "[" + " " * _BAR_WIDTH + "]"
    filled = min(_BAR_WIDTH, round(_BAR_WIDTH * done / total))
    return "[" + "#" * filled + "-" * (_BAR_WIDTH - filled) + "]"


def panel_lines(elapsed: float, snapshot: Snapshot, replicas: int, step: str) -> list[str]:
    """The live panel's lines for ``snapshot`` (pure, so it is tested without a terminal)."""
    phases = snapshot.claims_by_phase()
    phase_text = "  ".join(f"{phase} {count}" for phase, count in phases.items()) or "none"
    types = snapshot.instance_types()
    type_text = ", ".join(f"{name} x{count}" for name, count in types.items()) or "-"
    return [
        f"jitnode demo {elapsed:6.1f} s   {step}",
        f"  pods        {snapshot.pods_running:3d}/{replicas} running {_bar(snapshot.pods_running, replicas)}"
        f"  {snapshot.pods_pending} pending ({snapshot.pods_unschedulable} unschedulable)",
        f"  nodeclaims  {len(snapshot.claims):3d}   {phase_text}",
        f"  nodes       {len(snapshot.nodes):3d}   {snapshot.nodes_ready} Ready",
        f"  types       {type_text}",
        f"  cost        ${snapshot.cost_per_hour:.4f}/h",
    ]


class PlainLog:
    """One timestamped line per change (see the module docstring)."""

    def __init__(self, stream: TextIO, clock: Clock = time.monotonic) -> None:
        self._stream = stream
        self._clock = clock
        self._started = clock()
        self._last = Snapshot()

    def update(self, snapshot: Snapshot) -> None:
        stamp = _stamp(self._clock() - self._started)
        for line in changes(self._last, snapshot):
            self._write(f"{stamp} {line}")
        self._last = snapshot

    def note(self, text: str) -> None:
        self._write(f"{_stamp(self._clock() - self._started)} == {text}")

    def step(self, text: str) -> None:
        self._write(f"-- {text}")

    def block(self, lines: list[str]) -> None:
        for line in lines:
            self._write(line)

    def close(self) -> None:
        self._stream.flush()

    def _write(self, line: str) -> None:
        self._stream.write(line + "\n")
        self._stream.flush()


class LiveView:
    """A panel redrawn in place; notes and steps scroll above it (see the module docstring)."""

    def __init__(
        self, stream: TextIO, replicas: int, clock: Clock = time.monotonic, width: int | None = None
    ) -> None:
        self._stream = stream
        self._replicas = replicas
        self._clock = clock
        self._started = clock()
        # Lines longer than the terminal would wrap and break the cursor arithmetic: cut them.
        self._width = width or shutil.get_terminal_size().columns
        self._drawn = 0
        self._snapshot = Snapshot()
        self._step = "starting"
        self._stream.write(_HIDE_CURSOR)

    def update(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        self._redraw()

    def note(self, text: str) -> None:
        self._redraw(above=[f"{_stamp(self._clock() - self._started)} {text}"])

    def step(self, text: str) -> None:
        self._step = text
        self._redraw(above=[f"-- {text}"])

    def block(self, lines: list[str]) -> None:
        self._redraw(above=lines)

    def close(self) -> None:
        """Leave the last panel on screen and the cursor visible below it."""
        self._stream.write(_SHOW_CURSOR)
        self._stream.flush()
        self._drawn = 0

    def _redraw(self, above: list[str] | None = None) -> None:
        out: list[str] = []
        if self._drawn:
            out.append(_UP.format(self._drawn) + "\r" + _CLEAR_DOWN)
        out.extend(line + "\n" for line in above or ())
        elapsed = self._clock() - self._started
        panel = [
            line[: self._width - 1]
            for line in panel_lines(elapsed, self._snapshot, self._replicas, self._step)
        ]
        out.extend(line + "\n" for line in panel)
        self._drawn = len(panel)
        self._stream.write("".join(out))
        self._stream.flush()


def make_view(stream: TextIO, replicas: int, live: bool | None = None, clock: Clock = time.monotonic) -> View:
    """A :class:`LiveView` when ``stream`` is a terminal (or ``live`` says so), else a :class:`PlainLog`."""
    if live is None:
        live = stream.isatty()
    return LiveView(stream, replicas, clock) if live else PlainLog(stream, clock)
