"""``python -m localcluster.demo``: the same as ``jitnode demo``."""

import sys

from localcluster.demo.cli import main

sys.exit(main())
