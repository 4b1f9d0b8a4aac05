"""What the cameras saw in shoppers' hands, as evidence of which product a shelf change was.

A weight change says how heavy the item was and where it left or landed; look-alikes (Paqui chips
at 63.2 / 63.4 / 64.1 g, a KitKat put back on the Reese's plate) stay in doubt. A camera that saw the
item in the hand around the change adds its classifier's answer. The view is matched to the change by
place (the gondola, near the changed plates) and time (from just before the change started to the
end of the attribution window); the classifier's probabilities over the gondola's products, tempered
because a classifier is never as sure as it says, re-weigh the scale's candidates. Views never say
who took it: attribution stays with the tracks.
"""
from __future__ import annotations

import math
from dataclasses import replace

from storefuse_core.events import PICK, Candidate, ProductView, ShelfEvent
from storefuse_core.layout import Store

BEFORE_NS = 500_000_000         # an item about to be put back is seen in the hand before it lands
PICK_BEFORE_NS = 250_000_000    # a taken item is in the hand only once it left: the change is dated from
                                # the detector's short average (0.25 s); earlier views are another hand's
AFTER_NS = 1_200_000_000        # a taken item is seen once the hand is out of the shelf (the recheck
                                # comes 0.3 s later: a view on its way still arrives in time)
MATCH_M = 0.6                   # the hand is at most this far from the changed plates' centre
TEMPER = 0.7                    # likelihood ratios are raised to this power (over-confidence guard)
FLOOR = 0.002                   # a product the classifier did not list keeps this probability
HAND_OVER_M = 1.5               # an item between two shoppers is seen this close to their midpoint
KEEP_NS = 120_000_000_000       # views this much older than fusion's clock can match nothing still due


class BadView(ValueError):
    """A product view that cannot be evidence (from a broken camera host): dropped, counted."""


def check(view: ProductView, store: Store) -> None:
    """Raise BadView with the reason, for one clear message."""
    if view.stamp_ns <= 0 or not all(math.isfinite(v) for v in (view.x, view.y, view.z, view.pixels)):
        raise BadView(f"view from {view.camera_id!r}: stamp or position is not a finite number")
    body = (view.body_x, view.body_y)
    if not (all(map(math.isnan, body)) or all(map(math.isfinite, body))):
        raise BadView(f"view from {view.camera_id!r}: the linked body's floor point is not two finite numbers "
                      f"(both NaN: not linked)")
    if not view.probabilities:
        raise BadView(f"view from {view.camera_id!r}: no product probabilities")
    total = 0.0
    for sku, p in view.probabilities:
        if sku not in store.products:
            raise BadView(f"view from {view.camera_id!r}: store {store.name!r} has no product {sku!r}")
        if not (math.isfinite(p) and 0.0 <= p <= 1.0):
            raise BadView(f"view from {view.camera_id!r}: probability {p!r} for {sku!r} is not in [0, 1]")
        total += p
    if total > 1.0 + 1e-3:
        raise BadView(f"view from {view.camera_id!r}: probabilities add up to {total:.3f} > 1")
    if view.gondola_id and view.gondola_id not in store.gondolas:
        raise BadView(f"view from {view.camera_id!r}: store {store.name!r} has no gondola {view.gondola_id!r}")


class ViewBook:
    """Recent product views, matched to shelf changes when their window has passed."""

    def __init__(self, store: Store):
        self.store = store
        self.views: list[ProductView] = []
        self.received = 0
        self.rejected = 0

    def add(self, view: ProductView) -> None:
        """Keep a view (BadView, counted, for one that cannot be evidence)."""
        self.received += 1
        try:
            check(view, self.store)
        except BadView:
            self.rejected += 1
            raise
        self.views.append(view)

    def prune(self, now_ns: int) -> None:
        """Forget views no change or meeting still due can use (fusion's clock, not arrivals: the
        same views are kept live and in a replay)."""
        if len(self.views) > 256:
            self.views = [v for v in self.views if v.stamp_ns > now_ns - KEEP_NS]

    def for_event(self, ev: ShelfEvent) -> list[ProductView]:
        """The views of this change's item: on its gondola and shelf (a hand at the shelf above is
        another's), near its plates, in its window."""
        plates = [self.store.plates[p] for p in ev.plate_ids if p in self.store.plates]
        if not plates:
            return []
        cx = sum(p.x for p in plates) / len(plates)
        cy = sum(p.y for p in plates) / len(plates)
        near = []
        before = PICK_BEFORE_NS if ev.kind == PICK else BEFORE_NS
        for v in self.views:
            if v.gondola_id != ev.gondola_id or (v.shelf_id and ev.shelf_id and v.shelf_id != ev.shelf_id) \
                    or not (ev.start_ns - before <= v.stamp_ns <= ev.start_ns + AFTER_NS):
                continue
            d = math.hypot(v.x - cx, v.y - cy)
            if d <= MATCH_M:
                near.append((d, v.stamp_ns, v.camera_id, v))
        return one_per_camera(near)


    def between(self, x: float, y: float, t0_ns: int, t1_ns: int, radius_m: float = HAND_OVER_M) -> list[ProductView]:
        """Every view away from any shelf (an item passing between shoppers) near (x, y) in [t0, t1]."""
        return [v for v in self.views if not v.gondola_id and t0_ns <= v.stamp_ns <= t1_ns
                and math.hypot(v.x - x, v.y - y) <= radius_m]


def one_per_camera(near: list[tuple]) -> list[ProductView]:
    """The nearest view of each camera (two hands at one gondola: the one at these plates), by camera:
    each camera's view is its own evidence; one camera's next frames would only repeat it."""
    best: dict[str, tuple] = {}
    for item in sorted(near, key=lambda item: item[:3]):
        best.setdefault(item[2], item)
    return [best[cid][3] for cid in sorted(best)]


def likelihoods(views: list[ProductView], skus) -> dict[str, float]:
    """Tempered likelihood per sku, up to a common factor (only ratios between skus matter)."""
    out = {sku: 1.0 for sku in skus}
    for v in views:
        probs = dict(v.probabilities)
        for sku in out:
            out[sku] *= max(probs.get(sku, 0.0), FLOOR) ** TEMPER
    return out


def fuse(candidates: list[Candidate], views: list[ProductView]) -> list[Candidate]:
    """The scale's candidates re-weighed by what the cameras saw. The views only share out the
    candidates' own mass: the scale's 'unexplained' part (1 - sum) stays, since a picture of a hand
    cannot make a change that fits no product fit one."""
    if not views or not candidates:
        return candidates
    like = likelihoods(views, {c.sku for c in candidates})
    scores = [c.probability * like[c.sku] for c in candidates]
    mass, total = sum(c.probability for c in candidates), sum(scores)
    if total <= 0:
        return candidates
    fused = [replace(c, probability=mass * s / total) for c, s in zip(candidates, scores)]
    return sorted(fused, key=lambda c: (-c.probability, c.sku, c.qty))


def evidence(views: list[ProductView], top: int = 3) -> list[list]:
    """The views as a ledger row keeps them: camera, stamp, pixels, the classifier's top answers, and
    the floor point of the body the hand was linked to, if any."""
    return [[v.camera_id, v.stamp_ns, v.pixels, [[sku, round(p, 4)] for sku, p in v.probabilities[:top]]]
            + ([[round(v.body_x, 3), round(v.body_y, 3)]] if v.linked else []) for v in views]
