"""Pick/put detection on the shelves of one scale board.

Works on the shelf sum (an item may rest on two plates) and keeps per-plate deltas to say where the
change happened. A change starts when the shelf leaves its settled level for a few samples in a
row, and ends when the level is flat again; the settled difference is the event. Slow drift is
followed while idle; a hand pressing and lifting without taking anything nets to nothing.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from storefuse_core.events import PICK, PUT, PlateBlock, ShelfEvent
from storefuse_core.layout import Store
from storefuse_core.product import candidates


@dataclass
class ShelfParams:
    trigger_g: float = 8.0          # shelf-sum departure from the settled level that starts a change
    trigger_samples: int = 3        # ... held for this many samples in a row (rejects single spikes)
    settle_s: float = 0.4           # flat for this long = settled
    settle_sd_g: float = 3.0        # "flat": standard deviation of the shelf sum in the window
    settle_shift_g: float = 3.0     # "flat": first and second half of the window agree
    min_delta_g: float = 10.0       # smaller settled changes are absorbed into the level
    max_event_s: float = 30.0       # a shelf busy this long is measured anyway
    drift_alpha: float = 0.01       # per-sample follow rate of the idle level (slow drift)
    plate_change_g: float = 4.0     # a plate counts as changed above this
    max_qty: int = 6

    @classmethod
    def from_dict(cls, values: dict) -> "ShelfParams":
        known = {k: type(getattr(cls, k))(v) for k, v in (values or {}).items() if hasattr(cls, k)}
        return cls(**known)


class _ShelfState:
    __slots__ = ("shelf_id", "idx", "in_event", "start_ns", "pending", "pending_start")

    def __init__(self, shelf_id: str, idx: np.ndarray):
        self.shelf_id, self.idx = shelf_id, idx
        self.in_event, self.start_ns, self.pending, self.pending_start = False, 0, 0, 0


class ShelfDetector:
    def __init__(self, store: Store, board_id: str, params: ShelfParams | None = None):
        self.store, self.board_id = store, board_id
        self.params = params or ShelfParams()
        self.plate_ids = store.board_plates(board_id)
        index = {p: i for i, p in enumerate(self.plate_ids)}
        gid = board_id.removeprefix("scale_")
        self.shelves = [_ShelfState(s, np.array([index[p] for p in store.shelves[s].plate_ids]))
                        for s in store.gondolas[gid].shelf_ids]
        self.base: np.ndarray | None = None
        self.window: deque[tuple[int, np.ndarray]] = deque()
        self.last_ns = 0
        self.events_emitted = 0

    def watermark_ns(self) -> int:
        """No event this detector emits later can start before this stamp."""
        marks = [self.last_ns]
        for s in self.shelves:
            if s.in_event:
                marks.append(s.start_ns - 1)
            elif s.pending:
                marks.append(s.pending_start - 1)
        return min(marks)

    def process(self, block: PlateBlock) -> list[ShelfEvent]:
        events: list[ShelfEvent] = []
        dead = block.plate_status != 0
        rows = block.grams.astype(np.float64)
        if dead.any():
            rows[:, dead] = 0.0
        for t, row in zip(block.stamps_ns.tolist(), rows):
            events.extend(self._sample(int(t), row))
        return events

    def _sample(self, t: int, row: np.ndarray) -> list[ShelfEvent]:
        p = self.params
        self.last_ns = t
        self.window.append((t, row))
        horizon = t - int(p.settle_s * 1e9)
        while self.window and self.window[0][0] < horizon:
            self.window.popleft()
        if self.base is None:
            if t - self.window[0][0] >= int(0.9 * p.settle_s * 1e9):
                self.base = np.mean([r for _, r in self.window], axis=0)
            return []
        out = []
        for s in self.shelves:
            dsum = float(row[s.idx].sum() - self.base[s.idx].sum())
            if not s.in_event:
                if abs(dsum) > p.trigger_g:
                    if s.pending == 0:
                        s.pending_start = t
                    s.pending += 1
                    if s.pending >= p.trigger_samples:
                        s.in_event, s.start_ns = True, s.pending_start
                else:
                    s.pending = 0
                    if abs(dsum) < p.trigger_g / 2:
                        self.base[s.idx] += p.drift_alpha * (row[s.idx] - self.base[s.idx])
                continue
            event = self._try_settle(s, t)
            if event is not None:
                out.append(event)
        return out

    def _try_settle(self, s: _ShelfState, t: int) -> ShelfEvent | None:
        p = self.params
        span_ok = self.window[0][0] >= s.start_ns and t - self.window[0][0] >= int(0.9 * p.settle_s * 1e9)
        timed_out = t - s.start_ns > int(p.max_event_s * 1e9)
        if not span_ok and not timed_out:
            return None
        block = np.array([r[s.idx] for _, r in self.window])
        sums = block.sum(axis=1)
        half = len(sums) // 2
        flat = sums.std() < p.settle_sd_g and abs(sums[:half].mean() - sums[half:].mean()) < p.settle_shift_g
        if not flat and not timed_out:
            return None
        level = block.mean(axis=0)
        deltas = level - self.base[s.idx]
        self.base[s.idx] = level
        s.in_event, s.pending = False, 0
        delta = float(deltas.sum())
        if abs(delta) < p.min_delta_g:
            return None
        noise_sd = float(max(0.5, np.sqrt(2.0) * sums.std() / np.sqrt(len(sums))) + 0.5)
        plates = [(pid, float(d)) for pid, d in zip((self.plate_ids[i] for i in s.idx), deltas)]
        changed = [(pid, d) for pid, d in plates if abs(d) >= p.plate_change_g] or \
            [max(plates, key=lambda item: abs(item[1]))]
        self.events_emitted += 1
        return ShelfEvent(
            event_id=f"{s.shelf_id}-{s.start_ns}", stamp_ns=t, start_ns=s.start_ns,
            gondola_id=self.board_id.removeprefix("scale_"), shelf_id=s.shelf_id,
            plate_ids=[pid for pid, _ in changed], plate_deltas=[round(d, 3) for _, d in changed],
            delta_grams=round(delta, 3), noise_sd=round(noise_sd, 3), kind=PICK if delta < 0 else PUT,
            candidates=candidates(self.store, s.shelf_id, dict(plates), delta, noise_sd, p.max_qty))
