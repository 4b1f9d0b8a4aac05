"""Cart shoppers: whose smart cart is whose, and what the cart says about a shelf change.

A cart belongs to the visit whose shopper walks with it: every `sample_s` of cart pose (UWB + odometry,
cart.py) is compared with where the cameras' tracks put each open session around that moment
(track.ShopperTracker.whereabouts); a session alone within `near_m` of the cart gets that time
credited, moments when several stand that close credit nobody (shoppers side by side at a shelf say
nothing about whose cart it is). A session's ownership probability is its credited time over all
credited time plus `prior_s` (a few seconds together is not yet a binding).

A shelf PICK of g grams followed by a settled +g change of a cart's scale (within both scales'
noise) and a scan of one of the change's candidate products is what the cart's owner doing it looks
like; a PUT is the owner taking -g out of the cart first. The observation of each cart (both, weight
only, scan only, nothing) has one likelihood if its owner made the change and another if someone
else did; each session's likelihood multiplies the cameras' weight for it (ReceiptBook.attribution),
so a cart that disagrees with the cameras lowers the confidence instead of silently winning. A scan
by the payer's own cart also reweights the scale's product candidates.

Everything is decided from stamps: a pose sample is judged once fusion has applied inputs `lag_s`
past it, a shelf change once fusion is `decide_margin_s` past the end of its cart window, and only
cart data stamped inside the window counts, so a replay decides exactly as the live node did.
"""
from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass, field

from storefuse_core.events import PICK, ShelfEvent

SCAN, WEIGHT = 0, 1        # CartEvent.KIND_SCAN, KIND_WEIGHT

# P(what a cart shows | its owner made the change) and P(... | somebody else did), per kind of change.
OWNER_PICK = {"both": 0.80, "weight": 0.06, "scan": 0.04, "none": 0.10}
STRANGER_PICK = {"both": 0.002, "weight": 0.02, "scan": 0.01, "none": 0.968}
OWNER_PUT = {"weight": 0.85, "none": 0.15}
STRANGER_PUT = {"weight": 0.02, "none": 0.98}


@dataclass
class CartShopperParams:
    near_m: float = 1.2            # a cart this close to a shopper's track is walking with them
    sample_s: float = 0.5          # one ownership sample per cart this often
    lag_s: float = 1.0             # ... judged once fusion is this far past it (tracks and poses are in)
    pose_gap_s: float = 0.3        # a sample needs a cart pose at most this old
    window_s: float = 60.0         # ownership from the samples of the last minute (the tracker's history)
    prior_s: float = 3.0           # credited time an ownership needs before it is believed
    min_owner: float = 0.1         # a smaller ownership is a track's slip, not a second pusher
    pick_before_s: float = 1.0     # cart changes from this long before a pick starts ...
    pick_after_s: float = 4.0      # ... to this long after it settled
    put_before_s: float = 5.0      # a put-back: the item leaves the cart before it is on the shelf
    put_after_s: float = 2.0
    decide_margin_s: float = 0.5   # decided once fusion is this far past the window
    weight_rel_tol: float = 0.03   # weight match: within 3 sd of both scales, or this fraction
    scan_min_probability: float = 0.01    # a scan confirms only a candidate at least this likely
    scan_other: float = 0.02       # P(the payer's cart scans product A | the change was product B)
    camera_slip: float = 0.001     # share the cameras' call keeps for anyone (a swapped track), so a
                                   # cart against a very sure camera call brings it to review
    keep_s: float = 120.0          # cart poses and changes kept this long


@dataclass(frozen=True)
class CartChange:
    """One CartEvent: a barcode scan or a settled change of the cart's scale."""
    stamp_ns: int
    cart_id: str
    kind: int                      # SCAN | WEIGHT
    sku: str = ""
    grams: float = 0.0             # WEIGHT: + into the cart
    noise_sd: float = 2.0
    seq: int = 0


@dataclass
class Watch:
    """A billed shelf change waiting for its carts' word."""
    ev: ShelfEvent
    shares: dict[str, float]       # the cameras' probability per pool session (ReceiptBook.attribution)
    window: tuple[int, int]        # cart data stamped in here counts
    deadline_ns: int


@dataclass
class Verdict:
    """What the carts said about one shelf change."""
    event_id: str
    payer: str
    shares: dict[str, float]       # cameras x carts, normalised
    factors: dict[str, float]      # the carts' likelihood per pool session (relative)
    carts: list[dict]              # per cart: owner probabilities, what it showed
    product: dict[str, float] | None = None   # sku -> likelihood, from a scan by the payer's own cart
    product_other: float = 1.0     # ... of a product the scale did not list
    used: dict[str, list[CartChange]] = field(default_factory=dict)   # cart -> changes that explain it

    def as_dict(self) -> dict:
        return {"carts": self.carts, "factors": {k: round(v, 6) for k, v in sorted(self.factors.items())}}


def weight_matches(ev: ShelfEvent, ch: CartChange, rel_tol: float = 0.03) -> bool:
    """The cart's change mirrors the shelf's: +g for a pick, -g for a put, within both scales' noise."""
    if ch.kind != WEIGHT or (ch.grams > 0) != (ev.kind == PICK) or ch.grams == 0:
        return False
    g = abs(float(ev.delta_grams))
    tol = max(3.0 * math.hypot(ch.noise_sd or 2.0, ev.noise_sd or 0.0), rel_tol * g)
    return abs(abs(ch.grams) - g) <= tol


class CartShoppers:
    """Cart poses and changes in, ownership and verdicts on shelf changes out (no ROS, no clock)."""

    def __init__(self, params: CartShopperParams | None = None):
        self.p = params or CartShopperParams()
        self.poses: dict[str, deque[tuple[int, float, float]]] = {}
        self.changes: dict[str, list[CartChange]] = {}
        self.samples: dict[str, deque[tuple[int, tuple[str, ...]]]] = {}    # stamp, sessions within near_m
        self._next_sample: dict[str, int] = {}
        self._used: set[tuple[str, int, int, int]] = set()
        self.watches: list[Watch] = []
        self.now_ns = 0
        self.duplicates = 0
        self.late = 0

    @property
    def active(self) -> bool:
        """Any cart seen at all: without one nothing here changes a receipt."""
        return bool(self.poses or self.changes)

    # ---- inputs -----------------------------------------------------------------------------
    def add_pose(self, cart_id: str, stamp_ns: int, x: float, y: float) -> None:
        q = self.poses.setdefault(cart_id, deque())
        if q and stamp_ns <= q[-1][0]:
            self.late += stamp_ns < q[-1][0]
            return
        q.append((stamp_ns, float(x), float(y)))
        while q and q[0][0] < stamp_ns - int(self.p.keep_s * 1e9):
            q.popleft()

    def add_change(self, ch: CartChange) -> None:
        lst = self.changes.setdefault(ch.cart_id, [])
        if any(c.seq == ch.seq and c.stamp_ns == ch.stamp_ns for c in lst):
            self.duplicates += 1
            return
        bisect.insort(lst, ch, key=lambda c: (c.stamp_ns, c.seq))
        horizon = ch.stamp_ns - int(self.p.keep_s * 1e9)
        while lst and lst[0].stamp_ns < horizon:
            lst.pop(0)

    # ---- ownership ----------------------------------------------------------------------------
    def advance(self, now_ns: int, locate) -> None:
        """Judge the pose samples fusion is now `lag_s` past. locate(x, y, t0, t1) -> {session:
        Whereabouts} is the tracker's answer about a point in a time window."""
        self.now_ns = max(self.now_ns, now_ns)
        if locate is None:
            return
        step, lag = int(self.p.sample_s * 1e9), int(self.p.lag_s * 1e9)
        half, gap = step // 2, int(self.p.pose_gap_s * 1e9)
        for cart, q in self.poses.items():
            if not q:
                continue
            t = self._next_sample.get(cart)
            if t is None:
                t = -(-q[0][0] // step) * step              # the sample grid, from the first pose
            out = self.samples.setdefault(cart, deque())
            while t <= self.now_ns - lag:
                pose = self._pose_at(q, t, gap)
                if pose is not None:
                    near = tuple(sorted(k for k, w in locate(pose[0], pose[1], t - half, t + half).items()
                                        if k and w.closest is not None and w.closest <= self.p.near_m))
                    out.append((t, near))
                t += step
            self._next_sample[cart] = t
            while out and out[0][0] < self.now_ns - int(self.p.window_s * 1e9) - lag:
                out.popleft()

    @staticmethod
    def _pose_at(q, t: int, gap: int):
        k = bisect.bisect_right(q, t, key=lambda p: p[0]) - 1
        if k < 0 or t - q[k][0] > gap:
            return None
        return q[k][1], q[k][2]

    def owners(self, cart_id: str, t_ns: int, sessions) -> dict[str, float]:
        """Probability that each of `sessions` pushes the cart, from the samples up to t_ns."""
        want = set(sessions)
        credit: dict[str, float] = {}
        t0 = t_ns - int(self.p.window_s * 1e9)
        for ts, near in self.samples.get(cart_id, ()):
            if ts > t_ns:
                break
            mine = [s for s in near if s in want]
            if ts >= t0 and len(mine) == 1 and len(near) == 1:
                credit[mine[0]] = credit.get(mine[0], 0.0) + self.p.sample_s
        total = sum(credit.values()) + self.p.prior_s
        return {s: c / total for s, c in sorted(credit.items()) if c / total >= self.p.min_owner}

    # ---- shelf changes ------------------------------------------------------------------------
    def watch(self, ev: ShelfEvent, shares: dict[str, float]) -> None:
        """Wait for the carts' word on a billed shelf change."""
        p = self.p
        if ev.kind == PICK:
            t0, t1 = ev.start_ns - int(p.pick_before_s * 1e9), ev.stamp_ns + int(p.pick_after_s * 1e9)
        else:
            t0, t1 = ev.start_ns - int(p.put_before_s * 1e9), ev.stamp_ns + int(p.put_after_s * 1e9)
        self.watches.append(Watch(ev, dict(shares), (t0, t1), t1 + int(p.decide_margin_s * 1e9)))

    def rewatch(self, event_id: str, shares: dict[str, float]) -> None:
        """The cameras decided a watched change again on its whole window (ReceiptBook.recheck): the
        carts' word multiplies those shares, not the ones from when fusion had only reached its start."""
        for w in self.watches:
            if w.ev.event_id == event_id:
                w.shares = dict(shares)

    def due(self, now_ns: int, leaving: str | None = None) -> list[Watch]:
        """Watches whose time has come (fusion is past their deadline), or that involve a session
        about to leave: those are decided now on what came so far."""
        ready = [w for w in self.watches if w.deadline_ns <= now_ns or (leaving and leaving in w.shares)]
        ready.sort(key=lambda w: (w.deadline_ns, w.ev.start_ns, w.ev.event_id))
        for w in ready:
            self.watches.remove(w)
        return ready

    def drain(self) -> list[Watch]:
        return self.due(2 ** 62)

    def judge(self, w: Watch, cutoff_ns: int | None = None) -> Verdict | None:
        """The carts' likelihood for each session in the pool (None: no cart has a word to say)."""
        ev, pool = w.ev, sorted(w.shares)
        t0, t1 = w.window
        if cutoff_ns is not None:
            t1 = min(t1, cutoff_ns)
        decide = min(w.deadline_ns, self.now_ns)
        factors = {s: 1.0 for s in pool}
        carts, seen = [], {}
        for cart in sorted(set(self.poses) | set(self.changes)):
            own = self.owners(cart, decide, pool)
            if not own or not self._alive(cart, t0, t1):
                continue
            weight, scan = self._match(cart, ev, t0, t1)
            shows = ("both" if weight and scan else "weight" if weight else "scan" if scan else "none")
            if ev.kind != PICK and shows != "weight":
                shows = "none"
            owner_t, stranger_t = (OWNER_PICK, STRANGER_PICK) if ev.kind == PICK else (OWNER_PUT, STRANGER_PUT)
            for s in pool:
                b = own.get(s, 0.0)
                factors[s] *= b * owner_t[shows] + (1.0 - b) * stranger_t[shows]
            seen[cart] = (own, weight, scan)
            carts.append({"cart_id": cart, "owners": {k: round(v, 4) for k, v in own.items()}, "shows": shows,
                          "weight": None if weight is None else [weight.stamp_ns, round(weight.grams, 2)],
                          "scan": None if scan is None else [scan.stamp_ns, scan.sku]})
        if not carts:
            return None
        top = max(factors.values())
        factors = {k: v / top for k, v in factors.items()}
        raw = {s: (w.shares[s] + self.p.camera_slip) * factors[s] for s in pool}
        total = sum(raw.values())
        if total <= 0.0:
            return None
        shares = {s: v / total for s, v in raw.items()}
        payer = max(pool, key=lambda s: (shares[s], w.shares[s], s))
        v = Verdict(ev.event_id, payer, shares, factors, carts)
        for cart, (own, weight, scan) in seen.items():
            if own.get(payer, 0.0) < 0.5:
                continue
            v.used[cart] = [c for c in (weight, scan) if c is not None]
            if scan is not None and ev.kind == PICK:
                v.product = {c.sku: 1.0 if c.sku == scan.sku else self.p.scan_other for c in ev.candidates}
                v.product_other = self.p.scan_other
        return v

    def spend(self, verdict: Verdict) -> None:
        """The changes of the payer's own cart explained this shelf change: they explain no other."""
        for cart, used in verdict.used.items():
            for c in used:
                self._used.add((cart, c.stamp_ns, c.seq, c.kind))
        horizon = self.now_ns - int(self.p.keep_s * 1e9)
        self._used = {u for u in self._used if u[1] >= horizon}

    def _alive(self, cart: str, t0: int, t1: int) -> bool:
        """The cart reported a pose around the window (a silent cart's silence says nothing)."""
        q = self.poses.get(cart)
        if not q:
            return bool(self.changes.get(cart))
        k = bisect.bisect_left(q, t0 - int(2e9), key=lambda p: p[0])
        return k < len(q) and q[k][0] <= t1

    def _match(self, cart: str, ev: ShelfEvent, t0: int, t1: int):
        weight = scan = None
        skus = {c.sku for c in ev.candidates if c.probability >= self.p.scan_min_probability}
        for c in self.changes.get(cart, ()):
            if c.stamp_ns < t0:
                continue
            if c.stamp_ns > t1:
                break
            if (cart, c.stamp_ns, c.seq, c.kind) in self._used:
                continue
            if weight is None and weight_matches(ev, c, self.p.weight_rel_tol):
                weight = c
            elif scan is None and c.kind == SCAN and ev.kind == PICK and c.sku in skus:
                scan = c
        return weight, scan


def change_from_msg(msg) -> CartChange:
    """storefuse_interfaces/CartEvent (rclpy or rosbags) -> CartChange."""
    from storefuse_core.convert import stamp_ns
    kind = int(msg.kind)
    return CartChange(stamp_ns(msg.header.stamp), str(msg.cart_id), kind, str(msg.barcode) if kind == SCAN else "",
                      float(msg.delta_grams) if kind == WEIGHT else 0.0, float(msg.noise_sd or 2.0), int(msg.seq))
