"""The last few request bodies and what they parsed to, so prioritize needn't parse filter's body again.

kube-scheduler calls filter and then prioritize for the same pod with the same ExtenderArgs
(the same pod and, unless another extender failed some, the same candidate names), and Go
marshals them to the same bytes. Comparing a body with a remembered one is a memcmp; parsing
it again is the largest single cost of a prioritize call, and for a full NodeList body
(nodeCacheCapable false) it is milliseconds. One scheduling loop works on one pod at a time, so
its match is the latest entry; but several callers interleave (scheduler profiles, a second
scheduler, concurrent connections), so a handful of entries are kept: more entries than
callers in flight keeps every prioritize a hit, and a miss costs one length compare per entry.
Memory is bounded by bytes as well as entries, because full NodeList bodies are large.
"""

from __future__ import annotations

from collections import deque
from typing import Final, Generic, TypeVar

T = TypeVar("T")
_DEFAULT_SIZE: Final = 16
_DEFAULT_MAX_BYTES: Final = 64 * 2**20


class RecentBodies(Generic[T]):
    """A tiny most-recent-first map from exact request bytes to their parsed value."""

    def __init__(self, size: int = _DEFAULT_SIZE, max_bytes: int = _DEFAULT_MAX_BYTES) -> None:
        self._entries: deque[tuple[bytes, T]] = deque()
        self._size = size
        self._max_bytes = max_bytes
        self._bytes = 0

    def get(self, body: bytes) -> T | None:
        length = len(body)
        for seen, value in self._entries:
            if len(seen) == length and seen == body:
                return value
        return None

    def put(self, body: bytes, value: T) -> None:
        if len(body) > self._max_bytes:
            return  # would evict everything else and still not fit
        self._entries.appendleft((body, value))
        self._bytes += len(body)
        while len(self._entries) > self._size or self._bytes > self._max_bytes:
            seen, _ = self._entries.pop()
            self._bytes -= len(seen)

    def __len__(self) -> int:
        return len(self._entries)
