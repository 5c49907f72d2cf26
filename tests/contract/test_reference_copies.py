"""The repository's copies of the team's reference material are faithful.

The captured kube-scheduler bodies (``tests/fixtures/kube-scheduler/``) and the seed's manifests
(``examples/seed/``) are copied into the repository so a clone stands alone. Where the reference
folder sits beside the checkout (a developer's machine, CI), each copy must equal its source
byte for byte; in a user's clone, which has no reference folder, the comparison is skipped.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import KUBE_SCHEDULER_FIXTURES, REPO

REFERENCE = REPO.parent / "shared"
SEED_FILES = ("karpenter-provisioner.yaml", "inflate.yaml")
PAIRS = [
    *((REPO / "examples" / "seed" / name, REFERENCE / "seed" / name) for name in SEED_FILES),
    *(
        (path, REFERENCE / "fixtures" / "kube-scheduler" / path.name)
        for path in sorted(KUBE_SCHEDULER_FIXTURES.glob("*.json"))
    ),
]


def test_every_copy_is_in_the_repository() -> None:
    assert len(PAIRS) == len(SEED_FILES) + 6
    for copy, _ in PAIRS:
        assert copy.is_file(), copy


@pytest.mark.parametrize(("copy", "source"), PAIRS, ids=lambda p: p.name if isinstance(p, Path) else None)
def test_copy_equals_its_source(copy: Path, source: Path) -> None:
    if not REFERENCE.is_dir():
        pytest.skip(f"no reference folder beside the checkout ({REFERENCE}): nothing to compare with")
    assert source.is_file(), f"{source} is gone from the reference folder: drop or replace {copy}"
    assert copy.read_bytes() == source.read_bytes(), f"{copy} differs from {source}"
