"""Stamp-ordered merge of several live inputs with a bounded wait.

Each source promises, through its watermark, that nothing older will follow. An item is released
once every source's watermark has passed it, so the live graph feeds fusion in the same order as an
offline replay that simply sorts. A source that falls silent holds items for at most max_wait
(node clock), after which they are released and the late release is counted. A source that keeps
reporting a watermark that does not move is not silent: a shelf in the middle of a long change (two
hands on one plate: 3-4 s from start to settled) holds its watermark at the change's start, and
releasing the cameras' frames after the start before that change would give the live tracker more of
the window than a replay has. Such a source holds items up to hold_ns.
"""
from __future__ import annotations

import heapq
import itertools
from typing import Any


class ReorderBuffer:
    def __init__(self, sources, max_wait_ns: int = 3_000_000_000, hold_ns: int = 8_000_000_000):
        self.watermarks: dict[str, int] = {s: -1 for s in sources}
        self.heard: dict[str, int] = {}             # source -> node clock of its latest watermark
        self.max_wait_ns = max_wait_ns
        self.hold_ns = max(hold_ns, max_wait_ns)
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

    def advance(self, source: str, watermark_ns: int, now_ns: int | None = None) -> None:
        """`now_ns` (node clock) when the source itself reported: it is alive, even if it holds."""
        if watermark_ns > self.watermarks.get(source, -1):
            self.watermarks[source] = watermark_ns
        if now_ns is not None:
            self.heard_from(source, now_ns)

    def heard_from(self, source: str, now_ns: int) -> None:
        """The source reported at now_ns (node clock), whether or not its watermark moved."""
        self.heard[source] = now_ns

    def _silent_blocker(self, stamp_ns: int, now_ns: int) -> bool:
        """Is some source that holds this stamp back silent (not heard for max_wait)?"""
        return any(wm < stamp_ns and now_ns - self.heard.get(s, -2 ** 62) >= self.max_wait_ns
                   for s, wm in self.watermarks.items())

    def low_watermark(self) -> int:
        return min(self.watermarks.values()) if self.watermarks else 2 ** 62

    def pop_ready(self, now_ns: int) -> list[Any]:
        out = []
        low = self.low_watermark()
        while self._heap:
            key, arrived, _, item = self._heap[0]
            if key[0] <= low:
                pass
            elif now_ns - arrived >= self.hold_ns or \
                    (now_ns - arrived >= self.max_wait_ns and self._silent_blocker(key[0], now_ns)):
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
