"""``python -m cli``: the ``jitnode`` command without installing its entry point."""

import sys

from cli.main import main

sys.exit(main())
