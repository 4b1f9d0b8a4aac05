"""Hand-overs between payers: two shoppers of different visits who stay side by side.

Weight and cameras see an item leave a shelf, not which hand it ends in. When a shopper holding
items stays within arm's length of another visit's shopper for a while, something may have
changed hands; the receipts of both visits then need a human, unless nothing was held. Passing in
an aisle is too short to count, and so is walking up to someone standing at a shelf and past them:
handing something over takes keeping pace with the other shopper (both standing, or walking side by
side), so only a pair whose velocities agree counts. Shoppers of one visit (a party) never count:
their items share a receipt. Where a camera saw the item in a hand between the two, it says what
changed hands (ReceiptBook.resolve_hand_over): the encounter carries where the pair stood.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Encounter:
    session_a: str
    session_b: str
    start_ns: int
    end_ns: int
    x: float = 0.0          # the pair's midpoint when reported
    y: float = 0.0


class HandOverWatch:
    def __init__(self, distance_m: float = 0.9, min_s: float = 1.0, period_s: float = 0.1,
                 max_relative_mps: float = 0.5, apart_s: float = 3.0):
        """`apart_s`: a meeting is over once the pair has been apart this long (tracks jitter, and
        one shopper steps round the other: a short gap is the same meeting)."""
        self.distance_m, self.min_ns, self.period_ns = distance_m, int(min_s * 1e9), int(period_s * 1e9)
        self.apart_ns = int(apart_s * 1e9)
        self.apart_since: dict[tuple[str, str], int] = {}
        self.max_relative_mps = max_relative_mps
        self.close_since: dict[tuple[str, str], int] = {}
        self.midpoint: dict[tuple[str, str], tuple[float, float]] = {}
        self.reported: set[tuple[str, str]] = set()
        self.parted: list[Encounter] = []       # reported pairs that have since moved apart (whole interval)
        self.last_ns: int | None = None

    def observe(self, stamp_ns: int, tracks) -> list[Encounter]:
        """Confirmed tracks (session_id, x) at a camera frame; new encounters, once per meeting."""
        if self.last_ns is not None and stamp_ns - self.last_ns < self.period_ns:
            return []
        self.last_ns = stamp_ns
        bound = [(t.session_id, t.x) for t in tracks if t.session_id]
        close: dict[tuple[str, str], tuple[float, float]] = {}
        if len(bound) > 1:
            x = np.array([[float(v) for v in s[:4]] for _, s in bound])
            d = np.hypot(x[:, None, 0] - x[None, :, 0], x[:, None, 1] - x[None, :, 1])
            dv = np.hypot(x[:, None, 2] - x[None, :, 2], x[:, None, 3] - x[None, :, 3])
            together = (d < self.distance_m) & (dv <= self.max_relative_mps)
            for i, j in zip(*np.nonzero(np.triu(together, 1))):
                a, b = sorted((bound[i][0], bound[j][0]))
                if a != b:
                    close[(a, b)] = (float(x[i, 0] + x[j, 0]) / 2, float(x[i, 1] + x[j, 1]) / 2)
        out = []
        self.midpoint.update(close)
        for pair in sorted(close):
            self.apart_since.pop(pair, None)
            since = self.close_since.setdefault(pair, stamp_ns)
            if stamp_ns - since >= self.min_ns and pair not in self.reported:
                self.reported.add(pair)
                out.append(Encounter(pair[0], pair[1], since, stamp_ns, *close[pair]))
        for pair in [p for p in self.close_since if p not in close]:
            apart = self.apart_since.setdefault(pair, stamp_ns)
            if pair in self.reported and stamp_ns - apart < self.apart_ns:
                continue                    # maybe back together in a moment: the same meeting
            since = self.close_since.pop(pair)
            del self.apart_since[pair]
            if pair in self.reported:       # the meeting is over: a later one is a meeting of its own
                self.reported.discard(pair)
                self.parted.append(Encounter(pair[0], pair[1], since, apart, *self.midpoint[pair]))
            del self.midpoint[pair]
        return out

    def drain_parted(self) -> list[Encounter]:
        out, self.parted = self.parted, []
        return out
