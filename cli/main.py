"""The ``jitnode`` command: operator tools that are neither service.

``jitnode demo`` runs the seed walkthrough on the embedded local cluster; ``jitnode convert``
turns Karpenter manifests into jitnode ones. This package sits on top of the others: it may use
``localcluster`` and ``shared``, and nothing imports it.

``jitnode convert`` exits 0 when everything mapped, 3 when it wrote output but left something
of the input behind (each such field is printed to stderr by path), and 2 on input it cannot
read or does not know (malformed YAML, an unknown kind), in which case it writes nothing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cli.convert import add_arguments as add_convert_arguments
from cli.convert import run_convert


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jitnode", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the seed walkthrough on the embedded local cluster")
    from localcluster.demo.cli import add_arguments as add_demo_arguments  # light; the run is lazy

    add_demo_arguments(demo)
    conv = commands.add_parser(
        "convert",
        help="convert Karpenter manifests to jitnode.io/v1",
        description=(
            "Convert Karpenter manifests (v1alpha5 Provisioner and v1alpha1 AWSNodeTemplate, v1beta1 "
            "and v1 NodePool and EC2NodeClass) to jitnode.io/v1 NodePools and EC2NodeClasses. "
            "Exit status: 0 everything mapped, 3 something was dropped (listed on stderr), 2 invalid input."
        ),
    )
    add_convert_arguments(conv)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``jitnode`` with ``argv`` (default: the process's arguments); the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "convert":
        return run_convert(args, sys.stdin, sys.stdout, sys.stderr)
    from localcluster.demo.cli import run as run_demo  # imports the stack: only when asked

    return run_demo(args)
