"""The one fusion pipeline: stamp-ordered inputs -> receipts, for the live node and for replay.

Gate events are ordered by their stamp; shelf events by the stamp at which the change *started*,
so an item taken just before the exit scan lands on the receipt even though it settles after it.
Camera detections feed the shopper tracker in the same order; when several sessions are inside, the
tracks at the plate's front say who the payer is. Where shoppers stood *after* the start counts too
(the one who reaches stays at the plate; the one walking past does not), but the live line cannot
wait for it (it is due a moment after the change settles): the line is billed when the stream reaches
the start, and the change is attributed again when the stream has passed the end of the window
(receipt.WINDOW_AFTER_NS); a changed answer amends the line, or the final receipt if the visit has
left meanwhile (ReceiptBook.recheck).
"""
from __future__ import annotations

from storefuse_core.cart_shopper import CartChange, CartShopperParams, CartShoppers
from storefuse_core.events import ENTRY, OPEN, PICK, PUT, GateEvent, Receipt, ShelfEvent
from storefuse_core.handover import HandOverWatch
from storefuse_core.identity import IdentityGuard
from storefuse_core.layout import Store
from storefuse_core.ledger import Ledger
from storefuse_core.plate_watch import PlateWatch, PlateWatchParams
from storefuse_core.product_views import ViewBook
from storefuse_core.receipt import HAND_OVER_AFTER_NS, WINDOW_AFTER_NS, ReceiptBook, long_change
from storefuse_core.reorder import ReorderBuffer
from storefuse_core.track import ShopperTracker


def sources_for(store: Store) -> list[str]:
    return sorted(store.gates) + sorted(store.boards) + sorted(store.cameras)


class _Recheck:
    """A billed change to attribute again once the stream has passed the end of its window."""
    __slots__ = ("ev", "stamp_ns")

    def __init__(self, ev: ShelfEvent, stamp_ns: int):
        self.ev, self.stamp_ns = ev, stamp_ns


class _HandCheck:
    """An encounter to settle with what the cameras saw between the pair, once they have had time to."""
    __slots__ = ("enc", "stamp_ns")

    def __init__(self, enc, stamp_ns: int):
        self.enc, self.stamp_ns = enc, stamp_ns


class _Frame:
    """One camera frame's detections, as an item of the reorder buffer."""
    __slots__ = ("camera_id", "stamp_ns", "detections")

    def __init__(self, camera_id: str, stamp_ns: int, detections):
        self.camera_id, self.stamp_ns, self.detections = camera_id, stamp_ns, detections


class FusionPipeline:
    def __init__(self, store: Store, ledger: Ledger | None = None, max_wait_s: float = 3.0,
                 review_threshold: float = 0.9, sources: list[str] | None = None,
                 plate_watch: PlateWatchParams | None = None,
                 cart_evidence: bool | CartShopperParams = True, product_views: bool = True,
                 hold_s: float = 8.0):
        self.store = store
        self.book = ReceiptBook(store, ledger, review_threshold)
        self.buffer = ReorderBuffer(sources if sources is not None else sources_for(store),
                                    int(max_wait_s * 1e9), int(hold_s * 1e9))
        self.received: dict[str, int] = {}
        self.pending: dict[str, tuple[int, int]] = {}
        self.tracker = ShopperTracker(store)
        self.handovers = HandOverWatch()
        self.identities = IdentityGuard()
        self.plate_watch = PlateWatch(store, plate_watch)
        # Smart carts' poses and scans/scale changes (cart_shopper.py): not reorder-buffer sources, so
        # a cart outside the store holds nothing back; a billed line is amended when their word is in.
        self.carts = None if cart_evidence is False else CartShoppers(
            cart_evidence if isinstance(cart_evidence, CartShopperParams) else None)
        self.book.locate = self.tracker.whereabouts
        # What cameras saw in hands: not a reorder-buffer source either (sparse, and only needed at a
        # change's recheck, when the cameras' own watermarks are past the window).
        if product_views:
            self.book.views = ViewBook(store)
        # Track snapshots per camera frame, for IDF1/MOTA: only when asked (replay/eval); a live
        # node would otherwise grow this list for as long as it runs.
        self.record_tracks = False
        self._now_ns = 0                # node clock of the latest step (rechecks queued meanwhile arrive then)
        self._released_ns = 0           # the stamp fusion has reached (views older than it by far are dropped)
        self.track_frames: list[tuple[int, list[tuple[str, float, float]]]] = []

    def push_gate(self, ev: GateEvent, now_ns: int = 0) -> None:
        self.buffer.push((ev.stamp_ns, 0, ev.gate_id, ev.seq), ev, now_ns)
        self._received(ev.gate_id)

    def push_shelf(self, ev: ShelfEvent, now_ns: int = 0) -> None:
        self.buffer.push((ev.start_ns, 1, ev.event_id), ev, now_ns)
        self._received(f"scale_{ev.gondola_id}")

    def push_detections(self, camera_id: str, stamp_ns: int, detections, now_ns: int = 0) -> None:
        """A camera frame's detections (objects with x, y, cov, score); frames come in stamp order."""
        self.buffer.push((stamp_ns, 2, camera_id), _Frame(camera_id, stamp_ns, list(detections)), now_ns)
        self.buffer.advance(camera_id, stamp_ns, now_ns or None)

    @property
    def views_on(self) -> bool:
        return self.book.views is not None

    def push_product_view(self, view) -> None:
        """An item a camera saw in a hand (ProductViews), used when a change around it is rechecked.
        product_views.BadView (counted) for a view that cannot be evidence."""
        if self.book.views is not None:
            self.book.views.add(view)
            self.book.views.prune(self._released_ns)

    def push_cart_pose(self, cart_id: str, stamp_ns: int, x: float, y: float) -> None:
        """A cart's pose in map (cart_localizer), in stamp order per cart."""
        if self.carts is not None:
            self.carts.add_pose(cart_id, stamp_ns, x, y)

    def push_cart_change(self, change: CartChange) -> None:
        """A cart's barcode scan or settled scale change (CartEvent)."""
        if self.carts is not None:
            self.carts.add_change(change)

    def advance(self, source: str, watermark_ns: int, items_published: int | None = None) -> None:
        """Apply a source's watermark once all the items it published before it have arrived."""
        if self._now_ns:
            self.buffer.heard_from(source, self._now_ns)       # alive, even with items still on their way
        if items_published is None or self.received.get(source, 0) >= items_published:
            self.buffer.advance(source, watermark_ns)
        else:
            self.pending[source] = (watermark_ns, items_published)

    def _received(self, source: str) -> None:
        self.received[source] = self.received.get(source, 0) + 1
        if source in self.pending and self.received[source] >= self.pending[source][1]:
            self.buffer.advance(source, self.pending.pop(source)[0])

    def step(self, now_ns: int) -> list[Receipt]:
        self._now_ns = now_ns
        return self._apply(self.buffer.pop_ready(now_ns))

    def finish(self, stamp_ns: int, reason: str = "end_of_bag") -> list[Receipt]:
        """Drain everything and close the sessions still open (e.g. at the end of a bag)."""
        out = []
        while len(self.buffer):         # applying may queue rechecks
            out += self._apply(self.buffer.flush())
        out += self._cart_word(stamp_ns, drain=True)
        return out + self.book.finalize_open(stamp_ns, reason)

    def _cart_word(self, stamp_ns: int, leaving: str | None = None, drain: bool = False) -> list[Receipt]:
        """Amend the billed lines whose carts' window fusion has now passed (or whose payer candidate
        is leaving: then on what came so far)."""
        carts = self.carts
        if carts is None or not carts.active:
            return []
        carts.advance(stamp_ns, self.tracker.whereabouts)
        out = []
        for w in carts.drain() if drain else carts.due(carts.now_ns, leaving):
            early = not drain and w.deadline_ns > carts.now_ns
            v = carts.judge(w, carts.now_ns - int(carts.p.decide_margin_s * 1e9) if early else None)
            if v is None:
                continue
            out += self.book.apply_cart_verdict(w.ev, v, carts.now_ns)
            billed = self.book.billed_line(w.ev.event_id)
            if billed is not None and billed[0] == v.payer:
                carts.spend(v)
        return out

    def _apply(self, items) -> list[Receipt]:
        out = []
        for item in items:
            self._released_ns = max(self._released_ns, item.start_ns if isinstance(item, ShelfEvent) else item.stamp_ns)
            out += self._cart_word(item.start_ns if isinstance(item, ShelfEvent) else item.stamp_ns)
            if isinstance(item, _Frame):
                self.tracker.on_detections(item.stamp_ns, item.detections)
                confirmed = self.tracker.confirmed()
                for check in self.identities.observe(item.stamp_ns, confirmed):
                    r = self.book.apply_identity_check(check)
                    if r is not None:
                        out.append(r)
                for enc in self.handovers.observe(item.stamp_ns, confirmed):
                    r = self.book.apply_encounter(enc)
                    if r is not None:
                        out.append(r)
                for enc in self.handovers.drain_parted():
                    if not self.views_on:
                        continue
                    # the pair stood together from start to end: what the cameras saw between them then
                    at = enc.end_ns + HAND_OVER_AFTER_NS
                    self.buffer.push((at, 1, enc.session_a, enc.session_b, "hand_over"), _HandCheck(enc, at),
                                     self._now_ns)
                for stay in self.plate_watch.observe(item.stamp_ns, confirmed):
                    out += self.book.apply_silent_plate(stay)
                if not self.record_tracks:
                    continue
                snap = (item.stamp_ns, [(t.identity, float(t.x[0]), float(t.x[1])) for t in self.tracker.confirmed()])
                if self.track_frames and self.track_frames[-1][0] == item.stamp_ns:
                    self.track_frames[-1] = snap
                else:
                    self.track_frames.append(snap)
                continue
            if isinstance(item, GateEvent):
                if item.direction == ENTRY:
                    self.tracker.on_gate(item)
                    self.identities.on_entry(item.stamp_ns, item.gate_id, item.session_id)
                else:       # an exit scan carries a token, not a session: the book knows whose it is
                    leaving = self.book.session_for_exit(item)
                    self.tracker.on_exit(leaving or "", item)
                    out += self._cart_word(item.stamp_ns, leaving) if leaving else []
                    for check in self.identities.leaving(leaving, item.stamp_ns) if leaving else ():
                        r = self.book.apply_identity_check(check)
                        if r is not None:
                            out.append(r)
            if isinstance(item, ShelfEvent):
                self.plate_watch.on_shelf(item)
                if item.kind not in (PICK, PUT):
                    continue        # plate health: for the watch, never a receipt line
            if isinstance(item, _HandCheck):
                out += self.book.resolve_hand_over(item.enc, item.stamp_ns)
                continue
            if isinstance(item, _Recheck):
                out += self.book.recheck(item.ev, item.stamp_ns)
                a = self.book.last_attribution
                if a is not None and self.carts is not None and self.carts.active:
                    self.carts.rewatch(item.ev.event_id, a.shares)     # the carts weigh the full window's shares
                continue
            r = self.book.apply_gate(item) if isinstance(item, GateEvent) else self.book.apply_shelf(item)
            if r is not None:
                out.append(r)
            if isinstance(item, ShelfEvent) and self.book.billed_line(item.event_id) is not None:
                # several hands may be in a long change: it is decided on the whole change
                at = item.stamp_ns if long_change(item) else item.start_ns + WINDOW_AFTER_NS
                self.buffer.push((at, 1, item.event_id, "recheck"), _Recheck(item, at), self._now_ns)
            if isinstance(item, ShelfEvent) and self.carts is not None and self.carts.active:
                a = self.book.last_attribution
                if a is not None and self.book.billed_line(item.event_id) is not None:
                    self.carts.watch(item, a.shares)
        return out


def finals_json(receipts: list[Receipt]) -> list[dict]:
    """Final receipts as the command-line contract prints them: by final stamp, then session id."""
    finals = {r.session_id: r for r in receipts if r.status != OPEN}
    return [r.as_json() for r in sorted(finals.values(), key=lambda r: (r.stamp_ns, r.session_id))]
