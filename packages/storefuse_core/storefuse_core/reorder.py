"""Stamp-ordered merge of several live inputs with a bounded wait.

Each source promises, through its watermark, that nothing older will follow. An item is released
once every source's watermark has passed it, so the live graph feeds fusion in the same order as an
offline replay that simply sorts. A source that falls silent holds items for at most max_wait
(node clock), after which they are released and the late release is counted.
"""
from __future__ import annotations

import heapq
import itertools
from typing import Any


class ReorderBuffer:
    def __init__(self, sources, max_wait_ns: int = 3_000_000_000):
        self.watermarks: dict[str, int] = {s: -1 for s in sources}
        self.max_wait_ns = max_wait_ns
        self._heap: list[tuple[tuple, int, int, Any]] = []
        self._counter = itertools.count()
        self.released_by_timeout = 0
        self.late_items = 0
        self._last_key: tuple | None = None

    def push(self, key: tuple, item: Any, now_ns: int) -> None:
        """key starts with the item's stamp (ns); the rest breaks ties deterministically."""
        if self._last_key is not None and key < self._last_key:
            self.late_items += 1
        heapq.heappush(self._heap, (key, now_ns, next(self._counter), item))

    def advance(self, source: str, watermark_ns: int) -> None:
        if watermark_ns > self.watermarks.get(source, -1):
            self.watermarks[source] = watermark_ns

    def low_watermark(self) -> int:
        return min(self.watermarks.values()) if self.watermarks else 2 ** 62

    def pop_ready(self, now_ns: int) -> list[Any]:
        out = []
        low = self.low_watermark()
        while self._heap:
            key, arrived, _, item = self._heap[0]
            if key[0] <= low:
                pass
            elif now_ns - arrived >= self.max_wait_ns:
                self.released_by_timeout += 1
            else:
                break
            heapq.heappop(self._heap)
            self._last_key = key
            out.append(item)
        return out

    def flush(self) -> list[Any]:
        out = []
        while self._heap:
            key, _, _, item = heapq.heappop(self._heap)
            self._last_key = key
            out.append(item)
        return out

    def __len__(self) -> int:
        return len(self._heap)
