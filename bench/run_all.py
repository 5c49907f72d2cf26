"""Run every benchmark in this folder, one after the other, and print their figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def main() -> int:
    here = Path(__file__).resolve().parent
    failed = 0
    for script in sorted(here.glob("*_bench.py")):
        print(f"== {script.name}", flush=True)
        failed |= subprocess.call([sys.executable, str(script)], cwd=here.parent)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
