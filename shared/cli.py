"""The ``jitnode`` command: operator tools that are neither service.

``jitnode demo`` runs the seed walkthrough on the embedded local cluster; ``jitnode convert``
turns Karpenter manifests into jitnode ones. Subcommands that have not landed yet say so and
exit non-zero rather than pretend to work.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _not_yet(name: str) -> int:
    print(f"jitnode {name}: not yet implemented (see the open issues)", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jitnode", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="run the seed walkthrough on the embedded local cluster")
    commands.add_parser("convert", help="convert Karpenter manifests to jitnode.io/v1")
    args = parser.parse_args(argv)
    return _not_yet(args.command)


if __name__ == "__main__":
    sys.exit(main())
