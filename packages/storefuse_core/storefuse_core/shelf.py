"""Pick/put detection on the shelves of one scale board.

Works on the shelf sum (an item may rest on two plates) and keeps per-plate deltas to say where the
change happened. Real plates are noisy in very different amounts (the AiFi plates: a few at
20-40 g per sample, most near 1 g) but their short averages are steady, so every threshold scales
with each plate's own noise, estimated while the shelf is idle:
- a change starts when the short-average shelf sum leaves the settled level for a few samples;
- it settles when the raw sum is flat again (window halves agree, spread within the noise), and
  is emitted once it has stayed at that level for confirm_s more: a hand that rests on the shelf,
  then lifts an item, is one change, not a PUT of the hand and a PICK of hand and item;
- the settled difference is the event; smaller than a few noise sds is absorbed into the level.
Slow drift is followed while idle; a hand pressing and lifting without taking anything nets zero.
Shoppers side by side at one shelf overlap in time: when the settled change sits on groups of
plates with untouched plates between them, each group is its own event, with the stamp at which
that group started to change (so each is attributed to whoever stood there then).

Plate health rides on the same stream: a plate whose reading has not changed at all (the very same
value) for silent_after_s is reported PLATE_SILENT, and PLATE_LIVE on its next changed value; so is a
plate too noisy to show a unit of its lightest product leaving (decided from the warm-up noise). A dead
load cell reads its tare forever, so an item taken from it makes no event; but a quiet live plate
can repeat one value for half a minute too (the real AiFi plates do), so silence is only a fact
about the plate, for fusion to weigh against where the shoppers stood (plate_watch.py).
"""
from __future__ import annotations

import json
from collections import deque
from dataclasses import asdict, dataclass

import numpy as np

from storefuse_core.events import PICK, PLATE_LIVE, PLATE_SILENT, PUT, PlateBlock, ShelfEvent
from storefuse_core.layout import Store
from storefuse_core.product import candidates


@dataclass
class ShelfParams:
    trigger_g: float = 8.0          # smallest departure of the short-average shelf sum that starts a change
    trigger_sigma: float = 6.0      # ... and at least this many noise sds of that average
    trigger_samples: int = 3        # ... held this many samples in a row (rejects spikes)
    average_s: float = 0.25         # short average used for triggering
    settle_s: float = 0.5           # flat for this long = settled
    settle_sigma: float = 4.0       # "flat": window halves agree within this many sds of their difference
    settle_shift_g: float = 3.0     # ... or within this many grams, whichever is larger
    settle_spread_sigma: float = 2.5  # "flat": sd of the window's shelf sums within this many noise sds
    confirm_s: float = 0.5          # a settled level must hold this long before the event is emitted
    min_delta_g: float = 10.0       # smaller settled changes are absorbed into the level
    min_delta_sigma: float = 5.0    # ... as are changes within this many sds of the delta's noise
    max_event_s: float = 30.0       # a shelf busy this long is measured anyway
    drift_alpha: float = 0.01       # per-sample follow rate of the idle level (slow drift)
    noise_alpha: float = 0.005      # per-sample follow rate of each plate's noise estimate
    warmup_s: float = 1.0           # initial level and noise come from this much data
    plate_change_g: float = 4.0     # a plate counts as changed above this (and above its noise)
    max_qty: int = 6
    silent_after_s: float = 10.0    # a plate reading the very same value this long is silent (0: never)
    deaf_factor: float = 1.5        # a plate whose lightest product weighs less than this many times the
                                    # shelf's noise trigger (or than min_delta_g) cannot show its pick:
                                    # reported silent too (0: never)

    @classmethod
    def from_dict(cls, values: dict) -> "ShelfParams":
        known = {k: type(getattr(cls, k))(v) for k, v in (values or {}).items() if hasattr(cls, k)}
        return cls(**known)

    def as_dict(self) -> dict:
        return asdict(self)


def config_json(board_id: str, params: ShelfParams) -> str:
    """What a scale driver announces about itself (and a bag keeps for replay)."""
    return json.dumps({"board_id": board_id, "detector": params.as_dict()}, sort_keys=True)


def config_from_json(text: str) -> tuple[str, ShelfParams]:
    doc = json.loads(text)
    return doc["board_id"], ShelfParams.from_dict(doc.get("detector") or {})


class _ShelfState:
    __slots__ = ("shelf_id", "idx", "k", "in_event", "start_ns", "pending", "pending_start", "settled_ns", "level",
                 "rows")

    def __init__(self, shelf_id: str, idx: np.ndarray, k: int = 0):
        self.shelf_id, self.idx, self.k = shelf_id, idx, k
        self.in_event, self.start_ns, self.pending, self.pending_start = False, 0, 0, 0
        self.settled_ns, self.level = 0, 0.0
        self.rows: list[tuple[int, np.ndarray]] = []     # this shelf's samples since its change started


def _sum_groups(shelf_idx: list[np.ndarray], n_plates: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Gather indices that sum every shelf's plates of three stacked rows in one numpy call per group.

    The per-shelf sums must equal `row[idx].sum()` bit for bit (events are compared across live and
    replay runs and across versions). numpy sums one contiguous row of n < 8 values strictly left to
    right, so shelves shorter than 8 plates share one group padded with a zero column (x + 0.0 == x);
    from 8 plates on numpy sums pairwise in blocks whose shape depends on n, so longer shelves are
    grouped by exact length. Each gather is a C-contiguous (3 * shelves, length) array, summed along
    its rows exactly as the per-shelf 1-D sums were. Returns (shelf numbers, flat gather indices)
    into a C-contiguous (3, n_plates + 1) buffer whose last column is zero.
    """
    if not shelf_idx:
        return []
    lengths = np.array([len(i) for i in shelf_idx])
    groups = []
    if lengths.max() < 8:
        plan = [(np.arange(len(shelf_idx)), int(lengths.max()))]
    else:
        plan = [(np.flatnonzero(lengths == n), int(n)) for n in sorted(set(lengths.tolist()))]
    for sel, width in plan:
        idx = np.full((len(sel), width), n_plates, dtype=np.intp)
        for row, k in enumerate(sel):
            idx[row, :len(shelf_idx[k])] = shelf_idx[k]
        flat = (np.arange(3)[:, None, None] * (n_plates + 1) + idx[None]).reshape(3 * len(sel), width)
        groups.append((sel, flat))
    return groups


def _part(deltas: np.ndarray, g: np.ndarray) -> np.ndarray:
    """The change of plate group g alone (zero on the shelf's other plates)."""
    part = np.zeros_like(deltas)
    part[g] = deltas[g]
    return part


def _group_sd(plate_sd: np.ndarray, g) -> float:
    """Noise sd of plate group g's summed change (+0.5 g, as for a whole shelf's)."""
    return float(np.sqrt(np.sum(np.square(plate_sd[g]))) + 0.5)


class ShelfDetector:
    def __init__(self, store: Store, board_id: str, params: ShelfParams | None = None):
        self.store, self.board_id = store, board_id
        self.params = params or ShelfParams()
        self.plate_ids = store.board_plates(board_id)
        index = {p: i for i, p in enumerate(self.plate_ids)}
        gid = board_id.removeprefix("scale_")
        self.shelves = [_ShelfState(s, np.array([index[p] for p in store.shelves[s].plate_ids], dtype=np.intp), k)
                        for k, s in enumerate(store.gondolas[gid].shelf_ids)]
        self.base: np.ndarray | None = None
        self.sd: np.ndarray | None = None
        # All shelves are tested at once per sample (the detector's hot path): rows 0, 1, 2 of _buf
        # hold the short average, the idle level (self.base is a view of row 1) and the squared noise.
        n = len(self.plate_ids)
        self._buf = np.zeros((3, n + 1))
        self._flat = self._buf.reshape(-1)
        self._groups = _sum_groups([s.idx for s in self.shelves], n)
        self._sums = np.zeros((3, len(self.shelves)))
        self._busy = np.zeros(len(self.shelves), dtype=bool)      # in_event, per shelf
        self._nbusy = 0
        self._pending: set[int] = set()                            # shelves with pending > 0
        self._shelf_of = np.zeros(n, dtype=np.intp)
        for s in self.shelves:
            self._shelf_of[s.idx] = s.k
        self.window: deque[tuple[int, np.ndarray]] = deque()
        self.avg_rows: deque[np.ndarray] = deque()
        self.avg_sum: np.ndarray | None = None
        self.avg_span_ns = int(self.params.average_s * 1e9)
        self.last_ns = 0
        self.events_emitted = 0
        self._warm: list[np.ndarray] = []
        self._warm_start = None
        self._last_value: np.ndarray | None = None     # per plate: its latest reading, ...
        self._changed_ns = np.zeros(n, dtype=np.int64)  # ... when that reading last changed, ...
        self._silent = np.zeros(n, dtype=bool)          # ... and whether it is silent now
        self._deaf = np.zeros(n, dtype=bool)            # too noisy for its lightest product (set at warm-up)
        units = [[store.products[k].grams for k in store.plate_products.get(p, ()) if k in store.products]
                 for p in self.plate_ids]
        self._lightest = np.array([min((g for g in u if g > 0), default=np.inf) for u in units])
        self._stocked = [frozenset(store.plate_products.get(p, ())) for p in self.plate_ids]

    def watermark_ns(self) -> int:
        """No event this detector emits later can start before this stamp."""
        marks = [self.last_ns - self.avg_span_ns]
        for s in self.shelves:
            if s.in_event:
                marks.append(s.start_ns - 1)
            elif s.pending:
                marks.append(s.pending_start - 1)
        return min(marks)

    def noise(self) -> dict[str, float]:
        """Current per-plate noise estimates (sd of one sample, grams)."""
        return {} if self.sd is None else {p: float(v) for p, v in zip(self.plate_ids, self.sd)}

    def process(self, block: PlateBlock) -> list[ShelfEvent]:
        events: list[ShelfEvent] = []
        dead = block.plate_status != 0
        rows = block.grams.astype(np.float64)
        if dead.any():
            rows[:, dead] = 0.0
        for t, row in zip(block.stamps_ns.tolist(), rows):
            events.extend(self._sample(int(t), row))
        if self.params.silent_after_s > 0 and len(rows):
            events.extend(self._health(block.stamps_ns.astype(np.int64), rows))
        return events

    def silent_plates(self) -> list[str]:
        return [p for p, s in zip(self.plate_ids, self._silent.tolist()) if s]

    def _health(self, stamps: np.ndarray, rows: np.ndarray) -> list[ShelfEvent]:
        """PLATE_SILENT / PLATE_LIVE transitions within one block, for all plates at once: at each
        sample, a plate is silent when its latest change is silent_after_s old or more."""
        if self._last_value is None:
            self._last_value = rows[0].copy()
            self._changed_ns[:] = stamps[0]
        before = np.vstack([self._last_value[None], rows[:-1]])
        changed = rows != before
        marks = np.where(changed, stamps[:, None], np.int64(np.iinfo(np.int64).min))
        last_change = np.maximum.accumulate(np.vstack([self._changed_ns[None], marks]), axis=0)[1:]
        silent = ((stamps[:, None] - last_change) >= int(self.params.silent_after_s * 1e9)) | self._deaf[None, :]
        flips = silent != np.vstack([self._silent[None], silent[:-1]])
        self._last_value = rows[-1].copy()
        self._changed_ns = last_change[-1].copy()
        self._silent = silent[-1].copy()
        if not flips.any():
            return []
        groups: dict[tuple[int, int, str], list[str]] = {}
        for i, j in zip(*np.nonzero(flips)):
            pid = self.plate_ids[j]
            kind = PLATE_SILENT if silent[i, j] else PLATE_LIVE
            groups.setdefault((int(stamps[i]), kind, self.store.plates[pid].shelf_id), []).append(pid)
        out = []
        for (t, kind, shelf), plates in sorted(groups.items()):
            word = "silent" if kind == PLATE_SILENT else "live"
            out.append(ShelfEvent(event_id=f"{shelf}-{word}-{t}", stamp_ns=t, start_ns=t,
                                  gondola_id=self.board_id.removeprefix("scale_"), shelf_id=shelf,
                                  plate_ids=plates, plate_deltas=[0.0] * len(plates), delta_grams=0.0,
                                  noise_sd=0.0, kind=kind, candidates=[]))
        self.events_emitted += len(out)
        return out

    def _sample(self, t: int, row: np.ndarray) -> list[ShelfEvent]:
        p = self.params
        self.last_ns = t
        self.window.append((t, row))
        horizon = t - int(p.settle_s * 1e9)
        while self.window and self.window[0][0] < horizon:
            self.window.popleft()
        self.avg_rows.append(row)
        self.avg_sum = row.copy() if self.avg_sum is None else self.avg_sum + row
        rate = max(1.0, self._rate())
        while len(self.avg_rows) > 1 and (len(self.avg_rows) - 1) / rate > p.average_s:
            self.avg_sum -= self.avg_rows.popleft()     # (more than one after a gap in the stream)
        if self.base is None:
            return self._warmup(t, row)
        n = len(self.plate_ids)
        np.divide(self.avg_sum, len(self.avg_rows), out=self._buf[0, :n])
        sd2 = np.square(self.sd, out=self._buf[2, :n])
        sums = self._shelf_sums()
        departure = np.abs(sums[0] - sums[1])     # |short-average shelf sum - its idle level|
        sum_sd = np.sqrt(sums[2])
        trigger = np.maximum(p.trigger_g, p.trigger_sigma * sum_sd / np.sqrt(len(self.avg_rows)))
        over = departure > trigger
        busy = self._busy.copy() if self._nbusy else None
        out = []
        if busy is not None or over.any():
            for k in np.flatnonzero(over | busy if busy is not None else over).tolist():
                s = self.shelves[k]
                if busy is not None and busy[k]:
                    out.extend(self._try_settle(s, t, float(sum_sd[k])))
                    continue
                if s.pending == 0:
                    s.pending_start = t - self.avg_span_ns
                s.pending += 1
                self._pending.add(k)
                if s.pending >= p.trigger_samples:
                    s.in_event, s.start_ns = True, s.pending_start
                    s.rows = [(ts, r[s.idx]) for ts, r in self.window if ts >= s.start_ns - self.avg_span_ns]
                    self._busy[k] = True
                    self._nbusy += 1
        if self._pending:
            for k in [k for k in self._pending if not over[k] and not (busy is not None and busy[k])]:
                self.shelves[k].pending = 0
                self._pending.discard(k)
        # Idle shelves near their level follow slow drift and their plates' noise. Element-wise, so
        # it is the same arithmetic as per shelf; -(6 sd + 1) == -6 sd - 1 exactly (IEEE rounding is
        # sign-symmetric), and sd2 is still sd ** 2 (nothing above changes sd).
        quiet = departure < trigger / 2
        if busy is not None:
            quiet &= ~busy
        every = bool(quiet.all())
        if every:
            base, sd, r = self.base, self.sd, row
        elif quiet.any():
            m = np.flatnonzero(quiet[self._shelf_of])
            base, sd, r, sd2 = self.base[m], self.sd[m], row[m], sd2[m]
        else:
            return out
        diff = r - base
        hi = 6 * sd + 1
        dev = np.minimum(np.maximum(diff, -hi), hi)
        new_base = base + p.drift_alpha * diff
        new_sd = np.sqrt((1 - p.noise_alpha) * sd2 + p.noise_alpha * np.square(dev, out=dev))
        if every:
            self.base[:] = new_base
            self.sd[:] = new_sd
        else:
            self.base[m] = new_base
            self.sd[m] = new_sd
        return out

    def _shelf_sums(self) -> np.ndarray:
        """(3, shelves): per shelf, the sums of the short average, the level and the squared noise."""
        if len(self._groups) == 1:
            sel, flat = self._groups[0]
            return self._flat[flat].sum(axis=1).reshape(3, len(sel))
        for sel, flat in self._groups:
            self._sums[:, sel] = self._flat[flat].sum(axis=1).reshape(3, len(sel))
        return self._sums

    def _rate(self) -> float:
        if len(self.window) < 2:
            return 60.0
        return (len(self.window) - 1) * 1e9 / max(1, self.window[-1][0] - self.window[0][0])

    def _warmup(self, t: int, row: np.ndarray) -> list[ShelfEvent]:
        if self._warm_start is None:
            self._warm_start = t
        self._warm.append(row)
        if t - self._warm_start >= int(self.params.warmup_s * 1e9) and len(self._warm) >= 8:
            data = np.array(self._warm)
            n = len(self.plate_ids)
            self._buf[1, :n] = np.median(data, axis=0)
            self.base = self._buf[1, :n]
            diffs = np.diff(data, axis=0)
            self.sd = np.maximum(0.1, 1.4826 * np.median(np.abs(diffs), axis=0) / np.sqrt(2))
            self._warm = []
            self._deaf = self._too_noisy()
        return []

    def _too_noisy(self) -> np.ndarray:
        """Plates this detector cannot be trusted to see a unit of their lightest product leave: lighter
        than the smallest settled change it keeps, than deaf_factor times the shelf's noise trigger
        (its summed noise over the short average), or than deaf_factor times the change that marks
        the plate itself as changed once settled (4 sds of its mean over settle_s). A noisy load cell
        hides a pick as surely as a dead one. Decided once, from the warm-up noise. (Simulated 46 g
        picks: all seen down to 1.35x the trigger, 27 of 30 at 1.19x, 21 of 30 at 1.06x.)"""
        p = self.params
        if p.deaf_factor <= 0:
            return np.zeros(len(self.plate_ids), dtype=bool)
        n_avg = max(1.0, p.average_s * self._rate())
        limit = np.zeros(len(self.plate_ids))
        for s in self.shelves:
            sum_sd = float(np.sqrt(np.sum(np.square(self.sd[s.idx]))))
            limit[s.idx] = max(p.min_delta_g, p.trigger_g, p.deaf_factor * p.trigger_sigma * sum_sd / np.sqrt(n_avg))
        n_settle = max(2.0, p.settle_s * self._rate())
        limit = np.maximum(limit, p.deaf_factor * 4.0 * self.sd * np.sqrt(2.0 / n_settle))
        return self._lightest < limit

    def _try_settle(self, s: _ShelfState, t: int, sum_sd: float) -> list[ShelfEvent]:
        p = self.params
        s.rows.append((t, self.window[-1][1][s.idx]))
        span_ok = self.window[0][0] >= s.start_ns and t - self.window[0][0] >= int(0.9 * p.settle_s * 1e9)
        timed_out = t - s.start_ns > int(p.max_event_s * 1e9)
        if not span_ok and not timed_out:
            return []
        block = np.array([r[s.idx] for _, r in self.window])
        sums = block.sum(axis=1)
        half = len(sums) // 2
        shift_sd = sum_sd * np.sqrt(2.0 / max(1, half))
        flat = abs(sums[:half].mean() - sums[half:].mean()) < max(p.settle_shift_g, p.settle_sigma * shift_sd) \
            and sums.std() < max(p.settle_shift_g, p.settle_spread_sigma * sum_sd)
        if flat and s.settled_ns and abs(sums.mean() - s.level) > max(p.trigger_g, p.settle_sigma * shift_sd):
            flat = False                                  # flat again, but at another level: keep going
        if not flat and not timed_out:
            s.settled_ns = 0
            return []
        if not timed_out:
            if not s.settled_ns:
                s.settled_ns, s.level = t, float(sums.mean())
            if t - s.settled_ns < int(p.confirm_s * 1e9):
                return []
        s.settled_ns = 0
        level = block.mean(axis=0)
        before = self.base[s.idx].copy()
        deltas = level - before
        self.base[s.idx] = level
        rows, s.rows = s.rows, []
        s.in_event, s.pending = False, 0
        self._busy[s.k] = False
        self._nbusy -= 1
        self._pending.discard(s.k)
        noise_sd = float(sum_sd * np.sqrt(2.0 / len(sums)) + 0.5)
        plate_sd = self.sd[s.idx] * np.sqrt(2.0 / len(sums))
        groups = self._plate_groups(deltas, plate_sd)
        by_product = self._plate_groups(deltas, plate_sd, s.idx)
        if len(by_product) > len(groups) and self._fits_better(s, deltas, noise_sd, plate_sd, by_product):
            groups = by_product
        if len(groups) == 1:
            return self._event(s, t, s.start_ns, deltas, noise_sd, plate_sd, s.shelf_id)
        out = []
        for g in groups:
            start = self._group_start(s, rows, g, before, plate_sd)
            out += self._event(s, t, start, _part(deltas, g), _group_sd(plate_sd, g), plate_sd,
                               f"{s.shelf_id}-P{int(g[0]) + 1}")
        return sorted(out, key=lambda e: (e.start_ns, e.event_id))

    def _plate_groups(self, deltas: np.ndarray, plate_sd: np.ndarray,
                      idx: np.ndarray | None = None) -> list[np.ndarray]:
        """Runs of neighbouring changed plates with untouched plates between them (with `idx`, the
        shelf's plates on the board: also where the planogram changes product between two changed
        neighbours); a run too small to be an event by itself stays with the largest one (one event,
        as before)."""
        p = self.params
        changed = np.flatnonzero(np.abs(deltas) >= np.maximum(p.plate_change_g, 4 * plate_sd))
        if len(changed) < 2:
            return [np.arange(len(deltas))]
        cut = np.diff(changed) > 1
        if idx is not None:
            own = [self._stocked[int(idx[i])] for i in changed]
            cut |= np.array([bool(a) and bool(b) and not (a & b) for a, b in zip(own, own[1:])], dtype=bool)
        runs = np.split(changed, np.flatnonzero(cut) + 1)
        big = [r for r in runs
               if abs(deltas[r].sum()) >= max(p.min_delta_g, p.min_delta_sigma * _group_sd(plate_sd, r))]
        if len(big) < 2:
            return [np.arange(len(deltas))]
        largest = max(range(len(big)), key=lambda i: abs(deltas[big[i]].sum()))
        small = [r for r in runs if not any(r is b for b in big)]
        if small:
            big[largest] = np.sort(np.concatenate([big[largest]] + small))
        return big

    def _fits_better(self, s: _ShelfState, deltas: np.ndarray, noise_sd: float, plate_sd: np.ndarray,
                     groups: list[np.ndarray]) -> bool:
        """Two neighbouring products' plates changed at once: two hands (each its own product), or one
        item resting across both? Split when each part is its own product's weight more likely than
        the whole is one candidate's (a 512 g bottle across two plates stays one; a Sprite, a Dasani
        and a Coke taken at once, 1.5 kg that fits nothing, are three)."""
        p = self.params
        plates = [self.plate_ids[i] for i in s.idx]
        sds = {pid: float(sd) for pid, sd in zip(plates, plate_sd)}

        def best(part: np.ndarray, sd: float) -> float:
            d = {pid: float(v) for pid, v in zip(plates, part)}
            found = candidates(self.store, s.shelf_id, d, float(part.sum()), sd, p.max_qty, plate_sd=sds)
            return found[0].probability if found else 0.0

        split = 1.0
        for g in groups:
            split *= best(_part(deltas, g), _group_sd(plate_sd, g))
        return split > best(deltas, noise_sd)

    def _group_start(self, s: _ShelfState, rows, g: np.ndarray, before: np.ndarray, plate_sd: np.ndarray) -> int:
        """When a group of plates started to change: its sum leaves the old level for a few samples."""
        p = self.params
        level = float(before[g].sum())
        limit = max(p.trigger_g, 4.0 * float(np.sqrt(np.sum(np.square(self.sd[s.idx][g])))))
        run = 0
        for i, (_ts, r) in enumerate(rows):
            run = run + 1 if abs(float(r[g].sum()) - level) > limit else 0
            if run >= p.trigger_samples:
                return max(s.start_ns, rows[i - run + 1][0])
        return s.start_ns

    def _event(self, s: _ShelfState, t: int, start_ns: int, deltas: np.ndarray, noise_sd: float,
               plate_sd: np.ndarray, name: str) -> list[ShelfEvent]:
        p = self.params
        delta = float(deltas.sum())
        if abs(delta) < max(p.min_delta_g, p.min_delta_sigma * noise_sd):
            return []
        plates = [(pid, float(d)) for pid, d in zip((self.plate_ids[i] for i in s.idx), deltas)]
        changed = [(pid, d) for (pid, d), sd in zip(plates, plate_sd) if abs(d) >= max(p.plate_change_g, 4 * sd)] \
            or [max(plates, key=lambda item: abs(item[1]))]
        self.events_emitted += 1
        return [ShelfEvent(
            event_id=f"{name}-{start_ns}", stamp_ns=t, start_ns=start_ns,
            gondola_id=self.board_id.removeprefix("scale_"), shelf_id=s.shelf_id,
            plate_ids=[pid for pid, _ in changed], plate_deltas=[round(d, 3) for _, d in changed],
            delta_grams=round(delta, 3), noise_sd=round(noise_sd, 3), kind=PICK if delta < 0 else PUT,
            candidates=candidates(self.store, s.shelf_id, dict(plates), delta, noise_sd, p.max_qty,
                                  plate_sd={pid: float(sd) for (pid, _), sd in zip(plates, plate_sd)}))]
