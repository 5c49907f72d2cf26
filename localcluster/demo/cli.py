"""The ``jitnode demo`` command line: options, logging kept out of the view, exit code.

jitnode's own JSON logs would bury the view, so the demo logs warnings only unless
``--log-file`` sends everything from INFO up to a file. Under the live view, which redraws the
terminal, those warnings are held back and printed to stderr once the view has closed; with the
line-by-line log they go to stderr as they come. The last line on stdout is the JSON summary;
the exit code is 0 only when it says ``"ok": true``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import logging
import sys
from collections.abc import Sequence
from typing import Final, TextIO

from localcluster.demo.options import DemoOptions


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The demo's options, for ``jitnode demo`` and ``python -m localcluster.demo``."""
    defaults = DemoOptions()
    parser.add_argument(
        "--replicas", type=int, default=defaults.replicas, help="inflate replicas (default 10)"
    )
    parser.add_argument(
        "--boot-delay", type=float, default=defaults.boot_delay, help="seconds a local instance takes to join"
    )
    parser.add_argument(
        "--empty-ttl",
        type=float,
        default=defaults.empty_ttl,
        help="seconds an empty node lives (the seed's ttlSecondsAfterEmpty, default 30)",
    )
    parser.add_argument("--kubeconfig", help="run against this real cluster, which already runs jitnode")
    parser.add_argument(
        "--cluster",
        help="real clusters: the seed's CLUSTER_NAME (selects eksctl's subnets and security groups; "
        "instances tagged for it that are left running count as leaks)",
    )
    parser.add_argument("--region", help="real clusters: the EC2 region (default AWS_REGION)")
    parser.add_argument(
        "--deadline", type=float, default=defaults.deadline, help="give up after this many seconds"
    )
    parser.add_argument(
        "--log-file", help="write jitnode's logs (INFO and up) here instead of warnings to stderr"
    )
    view = parser.add_mutually_exclusive_group()
    view.add_argument("--live", dest="live", action="store_true", default=None, help="force the live view")
    view.add_argument("--plain", dest="live", action="store_false", help="force the line-by-line log")


def options_from(args: argparse.Namespace) -> DemoOptions:
    if args.replicas < 1:
        raise SystemExit("jitnode demo: --replicas must be at least 1")
    if args.boot_delay < 0 or args.empty_ttl < 0 or args.deadline <= 0:
        raise SystemExit("jitnode demo: delays must not be negative and the deadline must be positive")
    return DemoOptions(
        replicas=args.replicas,
        boot_delay=args.boot_delay,
        empty_ttl=args.empty_ttl,
        kubeconfig=args.kubeconfig,
        cluster=args.cluster,
        region=args.region,
        deadline=args.deadline,
    )


HELD_LINES: Final = 200  # warnings held back under the live view; older ones are counted, not kept


class HeldBack(logging.Handler):
    """Formatted records kept (the last ``capacity``) until :meth:`write_out` writes them out."""

    def __init__(self, capacity: int = HELD_LINES) -> None:
        super().__init__()
        self.lines: collections.deque[str] = collections.deque(maxlen=capacity)
        self.dropped = 0

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.lines) == self.lines.maxlen:
            self.dropped += 1
        self.lines.append(self.format(record))

    def write_out(self, stream: TextIO) -> None:
        """Write what was held to ``stream`` (after the view), then pass records straight on."""
        if self.dropped:
            stream.write(f"({self.dropped} earlier log lines not kept)\n")
        for line in self.lines:
            stream.write(line + "\n")
        self.lines.clear()
        stream.flush()


def configure_demo_logging(log_file: str | None, *, hold: bool = False) -> HeldBack | None:
    """jitnode's structured logs to ``log_file`` (INFO), else warnings only, to stderr.

    ``hold`` (the live view is on) keeps the warnings back instead; the returned handler's
    :meth:`HeldBack.write_out` prints them once the view is done.
    """
    from shared.logs import configure_logging

    configure_logging("demo", level="info" if log_file else "warning", fmt="json", force=True)
    root = logging.getLogger()
    formatter = root.handlers[0].formatter if root.handlers else None
    held = HeldBack() if hold and not log_file else None
    handler: logging.Handler = (
        logging.FileHandler(log_file, encoding="utf-8")
        if log_file
        else held or logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(formatter)
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    return held


def run(args: argparse.Namespace) -> int:
    """Run the demo for parsed ``args``; the exit code (0 only if every pod ran and nothing leaked)."""
    from localcluster.demo.scenario import run_demo  # the stack and the services: heavy imports

    options = options_from(args)
    live = sys.stdout.isatty() if args.live is None else bool(args.live)
    held = configure_demo_logging(args.log_file, hold=live)
    try:
        summary = asyncio.run(run_demo(options, sys.stdout, live=live))
    finally:
        if held is not None:
            held.write_out(sys.stderr)
    if not summary["ok"]:
        print("jitnode demo failed: " + "; ".join(summary["errors"]), file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jitnode demo", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))
