"""The clearing memo: remembered values, a bound, and failures never remembered."""

from __future__ import annotations

import pytest

from shared.memo import ClearingMemo


def test_a_value_is_computed_once_then_remembered() -> None:
    memo: ClearingMemo[str, list[int]] = ClearingMemo(4)
    calls: list[str] = []

    def compute(key: str) -> list[int]:
        calls.append(key)
        return [len(key)]

    first = memo.get("ab", lambda: compute("ab"))
    assert memo.get("ab", lambda: compute("ab")) is first
    assert calls == ["ab"]


def test_a_full_memo_is_cleared_and_never_holds_more_than_its_size() -> None:
    memo: ClearingMemo[int, int] = ClearingMemo(3)
    for key in range(10):
        memo.get(key, lambda key=key: key * 2)  # type: ignore[misc]
        assert len(memo) <= 3
    assert memo.get(9, lambda: -1) == 18  # the newest survives a clear


def test_a_failure_is_not_remembered() -> None:
    memo: ClearingMemo[str, int] = ClearingMemo(4)

    def fail() -> int:
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        memo.get("k", fail)
    assert len(memo) == 0
    assert memo.get("k", lambda: 7) == 7
