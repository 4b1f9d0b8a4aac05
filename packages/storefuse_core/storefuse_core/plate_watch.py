"""Silent plates: a shopper who stood at a stocked plate that shows no sign of life may have taken
something no scale saw.

A dead load cell reads its tare forever, and a very noisy one hides a light item; either way a pick
makes no shelf event and the receipt silently lacks it. Silence alone proves nothing (quiet live
plates repeat one value for half a minute), so a visit is flagged only when its shopper stayed within
reach of the front of a silent plate that holds products, and nothing within reach of that spot
started to change meanwhile: a shopper who picks from a neighbour, or from the shelf above or below,
explains the stay. Nothing can say what was taken; the receipt goes to a human. A track the cameras
could not name stands for the visits they lost: each open visit they did not name meanwhile may be
the one who stood there. Shelf events arrive in stamp order with the camera frames (picks and puts
a moment after their start, pipeline.py), so a stay is judged once every change that started during
it is known.
"""
from __future__ import annotations

from dataclasses import dataclass

from storefuse_core.events import PLATE_LIVE, PLATE_SILENT, ShelfEvent
from storefuse_core.layout import Store
from storefuse_core.receipt import WINDOW_AFTER_NS, plate_front


@dataclass
class PlateWatchParams:
    enabled: bool = True
    reach_m: float = 0.7        # a tracked shopper this close to a plate's front could reach it
    dwell_s: float = 1.5        # ... and stayed this long (passing by is shorter)
    gap_s: float = 0.5          # out of reach this long ends a stay (a track's jitter does not)
    margin_s: float = 1.0       # a change on the shelf starting this soon before the stay explains it too
    period_s: float = 0.1       # look at most this often


@dataclass
class SilentPlateStay:
    session_id: str
    plate_id: str
    start_ns: int
    end_ns: int
    silent_since_ns: int
    seen: tuple[str, ...] = ()      # unnamed stay (session_id ""): visits the cameras named meanwhile


class PlateWatch:
    def __init__(self, store: Store, params: PlateWatchParams | None = None):
        self.store = store
        self.params = params or PlateWatchParams()
        self.stocked = {p for p, skus in store.plate_products.items() if skus and p in store.plates}
        self.fronts = {p: plate_front(store, [p]) for p in sorted(self.stocked)}
        self.silent: dict[str, int] = {}                 # stocked silent plate -> silent since
        self.changes: dict[str, list[tuple[int, float, float]]] = {}   # gondola -> recent changes (start, front)
        self.stays: dict[tuple[str, str], list[int]] = {}   # (session, plate) -> [first, last] stamp in reach
        self.seen: dict[str, set[str]] = {}              # plate -> visits named elsewhere during its unnamed stay
        self.reported: set[tuple[str, str]] = set()
        self.ended: list = []                            # (key, first, last, seen) of stays awaiting judgement
        self.last_ns: int | None = None

    def on_shelf(self, ev: ShelfEvent) -> None:
        """Every shelf event, in start-stamp order."""
        if ev.kind == PLATE_SILENT:
            for p in ev.plate_ids:
                if p in self.stocked:
                    self.silent[p] = ev.start_ns
        elif ev.kind == PLATE_LIVE:
            for p in ev.plate_ids:
                self.silent.pop(p, None)
                for key in [k for k in self.stays if k[1] == p]:
                    del self.stays[key]          # it shows life: a pick from it would have made an event
                self.seen.pop(p, None)
        elif ev.plate_ids:
            fx, fy = plate_front(self.store, ev.plate_ids)
            self.changes.setdefault(ev.gondola_id, []).append((ev.start_ns, fx, fy))

    def observe(self, stamp_ns: int, tracks) -> list[SilentPlateStay]:
        """Confirmed tracks at a camera frame; stays that just ended unexplained, once per visit and plate."""
        p = self.params
        if not p.enabled or (self.last_ns is not None and stamp_ns - self.last_ns < int(p.period_s * 1e9)):
            return []
        self.last_ns = stamp_ns
        if self.silent:
            named = {t.session_id for t in tracks if t.session_id}
            for t in tracks:
                x, y = float(t.x[0]), float(t.x[1])
                for plate in self.silent:
                    fx, fy = self.fronts[plate]
                    if (x - fx) ** 2 + (y - fy) ** 2 <= p.reach_m ** 2:
                        stay = self.stays.setdefault((t.session_id, plate), [stamp_ns, stamp_ns])
                        stay[1] = stamp_ns
                        if not t.session_id:
                            self.seen.setdefault(plate, set()).update(named)
        margin = int(p.margin_s * 1e9)
        for key, (first, last) in sorted(self.stays.items()):     # out of reach for gap_s: the stay is over
            if stamp_ns - last > int(p.gap_s * 1e9):
                del self.stays[key]
                seen = tuple(sorted(self.seen.pop(key[1], ()))) if not key[0] else ()
                if last - first >= int(p.dwell_s * 1e9):
                    self.ended.append((key, first, last, seen))
        # ... and judged once every change that may explain it has arrived (picks come WINDOW_AFTER_NS
        # after their start, pipeline.py)
        out, waiting = [], []
        for key, first, last, seen in self.ended:
            if stamp_ns - last <= margin + WINDOW_AFTER_NS:
                waiting.append((key, first, last, seen))
                continue
            session, plate = key
            fx, fy = self.fronts[plate]
            near = p.reach_m ** 2
            explained = any(first - margin <= t <= last + margin and (cx - fx) ** 2 + (cy - fy) ** 2 <= near
                            for t, cx, cy in self.changes.get(self.store.plates[plate].gondola_id, ()))
            if not explained and key not in self.reported:
                if session:             # unnamed stays may be different lost visits each time
                    self.reported.add(key)
                out.append(SilentPlateStay(session, plate, first, last, self.silent.get(plate, first), seen))
        self.ended = waiting
        cutoff = min([first for first, _ in self.stays.values()] + [e[1] for e in self.ended] + [stamp_ns]) - margin
        for gondola in list(self.changes):
            self.changes[gondola] = [c for c in self.changes[gondola] if c[0] >= cutoff]
            if not self.changes[gondola]:
                del self.changes[gondola]
        return out
