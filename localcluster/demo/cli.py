"""The ``jitnode demo`` command line: options, logging kept out of the view, exit code.

jitnode's own JSON logs would bury the view, so the demo logs warnings only, to stderr, unless
``--log-file`` sends everything from INFO up to a file. The last line on stdout is the JSON
summary; the exit code is 0 only when it says ``"ok": true``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

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
        "--cluster", help="real clusters: also count instances tagged for this cluster as leaks"
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


def configure_demo_logging(log_file: str | None) -> None:
    """jitnode's structured logs to ``log_file`` (INFO), else warnings only, to stderr."""
    from shared.logs import configure_logging

    configure_logging("demo", level="info" if log_file else "warning", fmt="json", force=True)
    root = logging.getLogger()
    formatter = root.handlers[0].formatter if root.handlers else None
    handler: logging.Handler = (
        logging.FileHandler(log_file, encoding="utf-8") if log_file else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(formatter)
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)


def run(args: argparse.Namespace) -> int:
    """Run the demo for parsed ``args``; the exit code (0 only if every pod ran and nothing leaked)."""
    from localcluster.demo.scenario import run_demo  # the stack and the services: heavy imports

    options = options_from(args)
    configure_demo_logging(args.log_file)
    summary = asyncio.run(run_demo(options, sys.stdout, live=args.live))
    if not summary["ok"]:
        print("jitnode demo failed: " + "; ".join(summary["errors"]), file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jitnode demo", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))
