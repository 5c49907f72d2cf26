"""Suite-wide test settings: where the captured fixtures live, and the shared plugins.

Fixtures that start servers (moto, the local cluster) live in ``localcluster.testing`` so the
demo and the benchmarks can use the same code outside pytest.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Request bodies captured from real kube-schedulers, copied into the repository (see its README).
KUBE_SCHEDULER_FIXTURES = REPO / "tests" / "fixtures" / "kube-scheduler"

pytest_plugins = ["localcluster.testing"]


@pytest.fixture(scope="session")
def kube_scheduler_fixtures() -> Path:
    """The folder of request bodies captured from a real kube-scheduler (fails loudly if absent)."""
    assert KUBE_SCHEDULER_FIXTURES.is_dir(), f"reference fixtures missing: {KUBE_SCHEDULER_FIXTURES}"
    return KUBE_SCHEDULER_FIXTURES
