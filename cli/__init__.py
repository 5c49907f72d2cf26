"""The ``jitnode`` command line (``jitnode demo``, ``jitnode convert``): see :mod:`cli.main`."""
