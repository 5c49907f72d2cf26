"""The last few request bodies and what they parsed to, so prioritize needn't parse filter's body again.

kube-scheduler calls filter and then prioritize for the same pod with the same ExtenderArgs
(the same pod and, unless another extender failed some, the same candidate names), and Go
marshals them to the same bytes. Comparing a body with a remembered one is a memcmp; parsing
it again is the largest single cost of a prioritize call, and for a full NodeList body
(nodeCacheCapable false) it is milliseconds. Only the last few bodies are kept: the scheduler
works on one pod at a time, so a match, when there is one, is the latest entry.
"""

from __future__ import annotations

from collections import deque
from typing import Final, Generic, TypeVar

T = TypeVar("T")
_DEFAULT_SIZE: Final = 4


class RecentBodies(Generic[T]):
    """A tiny most-recent-first map from exact request bytes to their parsed value."""

    def __init__(self, size: int = _DEFAULT_SIZE) -> None:
        self._entries: deque[tuple[bytes, T]] = deque(maxlen=size)

    def get(self, body: bytes) -> T | None:
        for seen, value in self._entries:
            if len(seen) == len(body) and seen == body:
                return value
        return None

    def put(self, body: bytes, value: T) -> None:
        self._entries.appendleft((body, value))

    def __len__(self) -> int:
        return len(self._entries)
