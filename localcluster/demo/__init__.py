"""``jitnode demo``: the seed walkthrough on the embedded local cluster (or a real one).

:mod:`localcluster.demo.scenario` holds the steps (``run_demo``), :mod:`localcluster.demo.cli`
the command line. This package module stays light so ``jitnode --help`` imports nothing heavy.
"""

from localcluster.demo.options import DemoOptions

__all__ = ["DemoOptions"]
