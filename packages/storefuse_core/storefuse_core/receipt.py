"""Receipts: one open receipt per session, built as a fold over the append-only ledger.

Inputs arrive in stamp order (see reorder.py). Each input becomes at most one ledger row, keyed so a
redelivered input is a no-op; the receipts are always recomputed from the rows, so a restarted
node rebuilds exactly what it had. The payer of a shelf change is the open session whose shopper the
cameras put at the plate when it started (or, without cameras, the one inside).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from storefuse_core.events import (
    ENTRY,
    FINAL,
    NEEDS_REVIEW,
    OPEN,
    PICK,
    PUT,
    REVIEWED,
    GateEvent,
    ProductView,
    Receipt,
    ReceiptLine,
    ShelfEvent,
)
from storefuse_core.layout import Store
from storefuse_core.ledger import Ledger
from storefuse_core.product import candidates as weight_candidates
from storefuse_core.product_views import FLOOR, TEMPER, ViewBook, evidence, fuse, likelihoods, one_per_camera

# Attribution from tracks (see ReceiptBook.attribution).
STAND_OFF_M = 0.45        # a reaching shopper's floor point is this far in front of the gondola
POSITION_SD_M = 0.3       # spread of a tracked reaching shopper's floor point around the plate's front
UNSEEN_WEIGHT = 0.05      # weight of a shopper no camera saw around the event (could be anywhere)
FAR_WEIGHT = 1e-4         # weight of a shopper seen elsewhere (tracks can be wrong, rarely)
WALK_MPS = 1.5            # how far an unseen shopper can have walked since last seen
OTHERS_MIN = 1e-3         # smaller shares of an event are not worth a ledger entry
MAX_SHARE = 0.99          # ... and none is certain (a share is a factor that must be divisible out again)
# Where each shopper stood while the hand was on the shelf and the item went into the basket: from the
# change's start (the detector dates it from its short average, 0.25 s early, when the reaching shopper
# already stands there) to well after it; a shopper still walking away from the plate's front as the
# change starts did not make it, nor did one walking past it, the one who stays did. The pipeline holds
# picks, puts and exit scans back until the cameras are past the window's end (pipeline.py).
WINDOW_BEFORE_NS = 0
WINDOW_AFTER_NS = 1_500_000_000
# Whose arm held the item a camera saw (ProductView.body_x/y, the camera host's pose estimate): the
# body point against each session's track around the view's moment.
LINK_SD_M = 0.25          # a body point around the tracked floor point (pose estimate and track, together)
MISLINK = 0.1             # that the pose estimate gave the hand to another body near the arm
LINK_NOBODY = 0.02        # ... or to a body that is none of these sessions' (staff, someone unnamed)
LINK_UNSEEN = 0.1         # a session with no track at that moment could stand anywhere
LINK_WINDOW_NS = 300_000_000     # the track's points this close in time to the view ...
LINK_RECENT_NS = 1_500_000_000   # ... or, lost in a crowd, its last point this recent
LONG_CHANGE_NS = 2_400_000_000      # start to settled longer than one hand's pick or put-back takes (580
                                    # single actions on harsh and day bags: <= 2.33 s; 10 of 14 merged
                                    # actions of two shoppers were longer): several hands may be in it


def long_change(ev: ShelfEvent) -> bool:
    """Longer from start to settled than one hand's pick or put-back takes: several hands may be in it."""
    return ev.stamp_ns - ev.start_ns > LONG_CHANGE_NS


def plate_front(store: Store, plate_ids) -> tuple[float, float]:
    """Where on the floor a shopper stands to reach these plates (one gondola's)."""
    xs = [store.plates[p].x for p in plate_ids]
    ys = [store.plates[p].y for p in plate_ids]
    gondola = store.gondolas[store.plates[plate_ids[0]].gondola_id]
    stand = gondola.depth_m / 2 + STAND_OFF_M      # plate centre -> where a shopper stands to reach it
    return sum(xs) / len(xs) + math.sin(gondola.yaw) * stand, sum(ys) / len(ys) - math.cos(gondola.yaw) * stand


@dataclass
class _Line:
    sku: str
    name: str
    unit_price: float
    qty: int = 0
    confidence: float = 1.0
    evidence: list[str] = field(default_factory=list)


@dataclass
class _Session:
    session_id: str
    token_hash: str
    entry_ns: int
    staff: bool
    party_size: int
    lines: dict[str, _Line] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    unbilled: float = 1.0       # probability that none of the events given to others was this session's
    revision: int = 0
    last_ns: int = 0
    closed: bool = False
    closed_ns: int = 0          # the exit scan's stamp (a change that started before it may still be theirs)
    status: int = OPEN
    reason: str = ""


@dataclass
class Attribution:
    """Who could have made one shelf change, and how likely each one is."""
    pool: list[_Session]                  # the sessions the payer is chosen from
    holders: bool                         # a put-back: the pool is the sessions holding a candidate
    weights: dict[str, float] | None      # from the cameras, unnormalised (None: no camera evidence)
    where: dict                           # what tracking said per session (track.Whereabouts)
    payer: _Session
    shares: dict[str, float]              # probability per pool session


@dataclass
class BookStats:
    events: int = 0
    duplicates: int = 0
    unattributed: int = 0
    unmatched_exits: int = 0
    unexplained: int = 0
    staff_events: int = 0


# What a camera saw between two shoppers settles a hand-over only when this sure among what they hold.
HAND_OVER_MIN_PROBABILITY = 0.8
UNSEEN_ITEM_PRIOR = 0.1                 # that the item changing hands is on neither receipt (a missed pick)
UNLISTED_PICK_PRIOR = 0.02              # that a unit taken is another product someone left on the plate unseen
UNLISTED_VIEW_MIN = 0.05                # ... one a camera named at least this likely in the hand
HAND_OVER_BEFORE_NS = 1_000_000_000     # the item may be seen a moment before the pair counted as together
HAND_OVER_SEEN_NS = 1_500_000_000       # ... and until this long after they parted
HAND_OVER_AFTER_NS = 2_000_000_000      # the pipeline checks then (a view on its way still arrives in time)

# A put-back candidate less likely than this is no evidence that the payer holds it: the scale's
# long tail (a 45 g put also lists a 55 g product at ~1e-12) must never cancel someone's line.
PUT_BACK_MIN_PROBABILITY = 0.05
NOT_HELD_PUT = 0.05


def _meeting(kind: str, enc) -> str:
    """Ledger key of one meeting of two visits (a pair may meet more than once)."""
    return f"{kind}/{enc.session_a}/{enc.session_b}/{enc.start_ns}"


def _holds(s: _Session, c, billed: dict | None = None) -> bool:
    """`billed`: this change's own line body, already on the receipt (a recheck): not counted."""
    line = s.lines.get(c.sku)
    qty = 0 if line is None else line.qty - (billed["qty"] if billed and billed["sku"] == c.sku else 0)
    return c.probability >= PUT_BACK_MIN_PROBABILITY and line is not None and qty >= c.qty


class ReceiptBook:
    def __init__(self, store: Store, ledger: Ledger | None = None, review_threshold: float = 0.9):
        self.store = store
        self.ledger = ledger or Ledger()
        self.review_threshold = review_threshold
        self.sessions: dict[str, _Session] = {}
        self.stats = BookStats()
        self.locate = None          # (x, y, t0, t1) -> {session: track.Whereabouts}: from tracking
        self.last_attribution: Attribution | None = None    # the latest shelf change's (cart_shopper.py)
        self.views: ViewBook | None = None      # what cameras saw in hands (product_views.py), if fed
        self._event_lines: dict[str, tuple[str, dict]] = {}  # event id -> (session, line body) in force
        # Units put back onto another product's plate, and those since taken from there (event id ->
        # (plate, sku)): the next pick there may be the stray, which the scale's planogram cannot know.
        self._stray_count: dict[tuple[str, str], int] = {}          # (plate, sku) -> units there
        self._stray_rows: dict[str, tuple[str, str, int]] = {}      # event id -> (plate, sku, +1 put / -1 taken)
        for row in self.ledger.entries():
            self._fold(*row)

    # ---- inputs -------------------------------------------------------------------------------
    def apply_gate(self, ev: GateEvent) -> Receipt | None:
        if ev.direction == ENTRY:
            body = {"token_hash": ev.token_hash, "staff": ev.staff, "party_size": ev.party_size,
                    "gate_id": ev.gate_id}
            return self._write(f"open/{ev.session_id}", ev.session_id, ev.stamp_ns, "open", body)
        session = self._exit_session(ev)
        if session is None:
            self.stats.unmatched_exits += 1
            return None
        return self._write(f"close/{session.session_id}", session.session_id, ev.stamp_ns, "close",
                           {"reason": "exit", "gate_id": ev.gate_id})

    def apply_shelf(self, ev: ShelfEvent) -> Receipt | None:
        if ev.kind not in (PICK, PUT):
            return None         # plate health (shelf.py): for plate_watch.py, never a line
        self.stats.events += 1
        key = f"event/{ev.event_id}"
        self.last_attribution = None
        if self.ledger.has(key):
            self.stats.duplicates += 1
            return None
        inside = self._inside_at(ev.start_ns)
        ev = self._with_strays(ev)
        evidence = {"event_id": ev.event_id, "delta_grams": ev.delta_grams, "kind": ev.kind,
                    "plates": list(ev.plate_ids),
                    "candidates": [[c.sku, c.qty, round(c.probability, 6)] for c in ev.candidates]}
        if not inside:
            self.stats.unattributed += 1
            self.ledger.append(key, "", ev.stamp_ns, "unattributed", evidence)
            return None
        payer, attribution, others = self._attribute(inside, ev)
        evidence["attribution"] = round(attribution, 6)
        if others:
            evidence["others"] = others
        if payer.staff:
            self.stats.staff_events += 1
            return self._write(key, payer.session_id, ev.stamp_ns, "staff", evidence)
        choice = self._choose(payer, ev)
        if choice is None:
            self.stats.unexplained += 1
            return self._write(key, payer.session_id, ev.stamp_ns, "unexplained", evidence)
        cand, prob = choice
        product = self.store.products[cand.sku]
        qty = cand.qty if ev.kind == PICK else -cand.qty
        attribution, others = self._every_unit(attribution, others, qty, payer.session_id)
        evidence["attribution"] = round(attribution, 6)
        if others:
            evidence["others"] = others
        body = dict(evidence, sku=cand.sku, name=product.name, unit_price=product.price, qty=qty,
                    confidence=round(prob * attribution, 6))
        return self._write(key, payer.session_id, ev.stamp_ns, "line", body)

    def strays(self, before: str = "") -> dict[str, set[str]]:
        """plate -> products put back onto it (that belong elsewhere) and not yet taken from it; as
        it was before the change `before` took one (a recheck weighs the same stray again)."""
        count = dict(self._stray_count)
        took = self._stray_rows.get(before)
        if took is not None and took[2] < 0:
            count[took[:2]] = count.get(took[:2], 0) + 1
        out: dict[str, set[str]] = {}
        for (plate, sku), n in sorted(count.items()):
            if n > 0:
                out.setdefault(plate, set()).add(sku)
        return out

    def _with_strays(self, ev: ShelfEvent) -> ShelfEvent:
        """A pick from a plate holding a stray: the stray is a candidate as likely as the plate's own
        product. The scale's own candidates keep their proportions (only the stray's share is
        computed here, from the same planogram model with the stray added)."""
        if ev.kind != PICK or not self._stray_count:
            return ev
        strays = {p: v for p, v in self.strays(before=ev.event_id).items() if p in ev.plate_ids}
        if not strays:
            return ev
        skus = set().union(*strays.values())
        deltas = dict(zip(ev.plate_ids, ev.plate_deltas))
        extra = [c for c in weight_candidates(self.store, ev.shelf_id, deltas, ev.delta_grams, ev.noise_sd,
                                              strays=strays) if c.sku in skus]
        share = sum(c.probability for c in extra)
        kept = [replace(c, probability=c.probability * (1.0 - share)) for c in ev.candidates if c.sku not in skus]
        return replace(ev, candidates=sorted(kept + extra, key=lambda c: (-c.probability, c.sku, c.qty)))

    def _unlisted(self, ev: ShelfEvent, seen) -> list:
        """A pick's candidates plus the products of its gondola that the cameras saw in the hand and
        the weight fits, had one of them been left on this plate: a stray whose put-back was billed
        as the plate's own look-alike is on no list, and the scale alone would bill its pick as the
        plate's product, however sure the views. They come in at a small prior, as likely among
        themselves as their weights say; only the views can make one of them the answer."""
        if ev.kind != PICK or not ev.plate_ids:
            return ev.candidates
        listed = {c.sku for c in ev.candidates}
        gondola = self.store.gondola_skus(ev.gondola_id)
        named = {sku for v in seen for sku, p in v.probabilities
                 if p >= UNLISTED_VIEW_MIN and sku in gondola and sku not in listed}
        if not named:
            return ev.candidates
        deltas = dict(zip(ev.plate_ids, ev.plate_deltas))
        extra = [c for c in weight_candidates(self.store, ev.shelf_id, deltas, ev.delta_grams, ev.noise_sd,
                                              strays={ev.plate_ids[0]: named}) if c.sku in named]
        fit = sum(c.probability for c in extra)
        if fit <= 0:
            return ev.candidates
        extra = [replace(c, probability=UNLISTED_PICK_PRIOR * c.probability) for c in extra]
        kept = [replace(c, probability=c.probability * (1.0 - UNLISTED_PICK_PRIOR * fit)) for c in ev.candidates]
        return sorted(kept + extra, key=lambda c: (-c.probability, c.sku, c.qty))

    def _note_stray(self, body: dict) -> None:
        """A line on a plate that is not its product's own: a stray put there, or one taken from
        there (only while one is known to be there)."""
        plates = body.get("plates") or []
        product = self.store.products.get(body["sku"])
        if product is None or not plates or any(p in product.plates for p in plates):
            return
        key = (plates[0], body["sku"])
        sign = 1 if body["qty"] < 0 else -1
        if sign < 0 and self._stray_count.get(key, 0) <= 0:
            return
        self._stray_count[key] = self._stray_count.get(key, 0) + sign
        self._stray_rows[body["event_id"]] = (*key, sign)

    def _forget_stray(self, event_id: str) -> None:
        row = self._stray_rows.pop(event_id, None)
        if row is not None:
            key = row[:2]
            self._stray_count[key] = max(0, self._stray_count.get(key, 0) - row[2])
            if not self._stray_count[key]:
                del self._stray_count[key]

    def _inside_at(self, start_ns: int) -> list[_Session]:
        """Who was inside when a change started, including a visit that has scanned out since (its
        exit may be applied before a change that started just before it reaches the book)."""
        return [s for s in self.sessions.values()
                if s.entry_ns <= start_ns and (not s.closed or s.closed_ns > start_ns)]

    def recheck(self, ev: ShelfEvent, stamp_ns: int) -> list[Receipt]:
        """Decide a billed change again once the cameras have seen the whole window after its start
        (the live line was billed when fusion reached the start, with nothing after it): a pick is
        attributed again (the shopper still walking up loses to one passing by at the start), and the
        product of a pick or put-back is chosen again with what the cameras saw in the hand
        (product_views.py). When the answer changed, one append-only row `window/<event>` replaces
        the line's contribution (the first stays in the ledger); a receipt already final is amended
        and published again."""
        key = f"window/{ev.event_id}"
        self.last_attribution = None
        old = self._event_lines.get(ev.event_id)
        if old is None or self.ledger.has(key):
            return []
        old_sid, old_body = old
        if "cart" in old_body or not old_body.get("confidence"):
            return []               # the carts have spoken on the full window already (or nothing to divide out)
        ev = self._with_strays(ev)
        seen = self.views.for_event(ev) if self.views is not None else []
        if seen:
            ev = replace(ev, candidates=fuse(self._unlisted(ev, seen), seen))
        inside = self._inside_at(ev.start_ns)
        if ev.kind == PICK and len(inside) >= 2:
            payer, attribution, others = self._attribute(inside, ev, seen)
        elif seen and old_sid in self.sessions:     # a put-back goes to whoever holds the item, decided
            payer = self.sessions[old_sid]          # when it was billed: only the product is in question
            attribution, others = old_body.get("attribution", 1.0), old_body.get("others") or {}
        else:
            return []
        own = old_body if payer.session_id == old_sid else None
        choice = None if payer.staff else self._choose(payer, ev, own)
        if choice is None:
            return []               # staff or nothing to put back: the first answer stands
        cand, prob = choice
        # (a put-back kept its payer: no attribution was made, so nothing to share out)
        attribution, others = self._every_unit(attribution, others, cand.qty, payer.session_id, ev)
        extra = {"views": evidence(seen), "seen_candidates": [[c.sku, c.qty, round(c.probability, 6)]
                                                             for c in ev.candidates]} if seen else {}
        return self._amend(key, stamp_ns, old_sid, old_body, payer.session_id, cand.sku,
                           cand.qty if ev.kind == PICK else -cand.qty, prob, attribution, others, extra)

    def apply_encounter(self, enc) -> Receipt | None:
        """Two visits' shoppers stayed side by side (handover.py): if either held something, both
        receipts are in doubt (an item may have changed hands) and go to review."""
        a, b = self.sessions.get(enc.session_a), self.sessions.get(enc.session_b)
        if a is None or b is None or a.closed or b.closed or a.staff or b.staff:
            return None
        if not any(ln.qty > 0 for s in (a, b) for ln in s.lines.values()):
            return None
        body = {"other": b.session_id, "start_ns": enc.start_ns}
        self._write(_meeting("encounter", enc), a.session_id, enc.end_ns, "encounter", body)
        return self.receipt(a.session_id)

    def resolve_hand_over(self, enc, stamp_ns: int) -> list[Receipt]:
        """Cameras saw an item in a hand between the two shoppers of a meeting that sent both
        receipts to review: if every view points at the same item, one that only one of them holds,
        the unit moves to the other (billed to whoever leaves with it) and that meeting's doubt is
        lifted from both receipts. An append-only row `hand_over/<a>/<b>/<start>`; anything less
        clear (two items, an item neither holds, a doubtful view) leaves the receipts to a human."""
        key = _meeting("hand_over", enc)
        a, b = self.sessions.get(enc.session_a), self.sessions.get(enc.session_b)
        if self.views is None or a is None or b is None or a.staff or b.staff or self.ledger.has(key) \
                or not self.ledger.has(_meeting("encounter", enc)):
            return []
        seen = self.views.between(enc.x, enc.y, enc.start_ns - HAND_OVER_BEFORE_NS, enc.end_ns + HAND_OVER_SEEN_NS)
        held = sorted({sku for s in (a, b) for sku, ln in s.lines.items() if ln.qty > 0})
        if not seen or not held:
            return []
        said = [dict(v.probabilities) for v in seen]
        if len({max(held, key=lambda k: (p.get(k, 0.0), k)) for p in said}) != 1:
            return []               # the views disagree: more than one item may have changed hands
        seen = one_per_camera([(math.hypot(v.x - enc.x, v.y - enc.y), v.stamp_ns, v.camera_id, v) for v in seen])
        # Only what they hold can change hands, unless one of them holds something no scale saw: a
        # small prior for that, as likely as the views find "none of what they hold".
        like = likelihoods(seen, held)
        other = 1.0
        for v in seen:
            other *= max(1.0 - sum(p for k, p in v.probabilities if k in held), FLOOR) ** TEMPER
        posterior = {k: (1 - UNSEEN_ITEM_PRIOR) / len(held) * like[k] for k in held}
        sku = max(held, key=lambda k: (posterior[k], k))
        prob = posterior[sku] / (sum(posterior.values()) + UNSEEN_ITEM_PRIOR * other)
        givers = [s for s in (a, b) if s.lines.get(sku) is not None and s.lines[sku].qty > 0]
        if len(givers) != 1 or not prob >= HAND_OVER_MIN_PROBABILITY:
            return []
        giver = givers[0]
        taker = b if giver is a else a
        product = self.store.products[sku]
        body = {"from": giver.session_id, "sku": sku, "name": product.name, "unit_price": product.price, "qty": 1,
                "confidence": round(prob, 6), "start_ns": enc.start_ns, "views": evidence(seen)}
        r = self._write(key, taker.session_id, stamp_ns, "hand_over", body)
        return [r, self.receipt(giver.session_id)] if r is not None else []

    def apply_identity_check(self, check) -> Receipt | None:
        """Two visits' shoppers met and parted (identity.py); when their colours could not say who
        is who, and either holds something, both receipts go to review."""
        a, b = self.sessions.get(check.session_a), self.sessions.get(check.session_b)
        if check.conclusive or a is None or b is None or a.closed or b.closed or a.staff or b.staff:
            return None
        body = {"other": b.session_id, "keep_cost": round(check.keep_cost, 4), "swap_cost": round(check.swap_cost, 4)}
        self._write(f"identity/{a.session_id}/{b.session_id}/{check.stamp_ns}", a.session_id, check.stamp_ns,
                    "identity", body)
        return self.receipt(a.session_id)

    def apply_silent_plate(self, stay) -> list[Receipt]:
        """A visit's shopper stayed at a stocked plate that shows no sign of life (plate_watch.py):
        an item taken there would be on no scale, so the receipt goes to review. A track the cameras
        could not name stands for every open visit they did not name meanwhile."""
        if stay.session_id:
            who = [self.sessions.get(stay.session_id)]
        else:
            who = [s for s in self.sessions.values() if s.entry_ns <= stay.end_ns and s.session_id not in stay.seen]
        out = []
        for s in who:
            key = f"silent_plate/{s.session_id}/{stay.plate_id}" if s is not None else ""
            if s is None or s.closed or s.staff or self.ledger.has(key):
                continue
            body = {"plate": stay.plate_id, "start_ns": stay.start_ns, "end_ns": stay.end_ns,
                    "silent_since_ns": stay.silent_since_ns, "unnamed_track": not stay.session_id}
            r = self._write(key, s.session_id, stay.end_ns, "silent_plate", body)
            if r is not None:
                out.append(r)
        return out

    def billed_line(self, event_id: str) -> tuple[str, dict] | None:
        """(session, ledger body) of the receipt line a shelf change is billed as, if any."""
        return self._event_lines.get(event_id)

    def apply_cart_verdict(self, ev: ShelfEvent, verdict, stamp_ns: int) -> list[Receipt]:
        """Amend a billed line with what the smart carts said (cart_shopper.py): the cameras' shares
        times the carts' likelihoods pick the payer, a scan by the payer's cart the product. One
        append-only row `cart/<event>` replaces the line's contribution (the old one stays in the ledger)."""
        key = f"cart/{ev.event_id}"
        old = self._event_lines.get(ev.event_id)
        if old is None or self.ledger.has(key):
            return []
        old_sid, old_body = old
        shares = dict(verdict.shares)
        payer = max(shares, key=lambda k: (shares[k], k == old_sid, k))
        new_s, old_s = self.sessions.get(payer), self.sessions.get(old_sid)
        if old_s is None or old_s.closed or not old_body.get("confidence"):
            return []
        old_line = old_s.lines.get(old_body["sku"])
        movable = new_s is not None and not new_s.closed and not new_s.staff and old_line is not None \
            and (old_body["qty"] < 0 or old_line.qty >= old_body["qty"])
        if payer != old_sid and not movable:
            payer = old_sid                 # the carts cannot move it: the doubt stays on the line
        prob = old_body["confidence"] / (old_body.get("attribution") or 1.0)
        sku = old_body["sku"]
        if ev.kind == PICK and verdict.product and ev.candidates:
            post = [c.probability * verdict.product.get(c.sku, 1.0) for c in ev.candidates]
            rest = max(0.0, 1.0 - sum(c.probability for c in ev.candidates)) * verdict.product_other
            same_qty = [k for k, c in enumerate(ev.candidates) if c.qty == abs(old_body["qty"])]
            if same_qty:            # the scan names the product; the quantity stays the scale's
                k = max(same_qty, key=lambda k: (post[k], ev.candidates[k].sku))
                sku, prob = ev.candidates[k].sku, post[k] / (sum(post) + rest)
        elif ev.kind != PICK and payer != old_sid:
            choice = self._choose(self.sessions[payer], ev)
            if choice is None:
                payer = old_sid
            else:
                sku, prob = choice[0].sku, choice[1]
        others = {k: round(p, 6) for k, p in sorted(shares.items()) if k != payer and p >= OTHERS_MIN}
        extra = {"cameras": {"payer": old_sid, "attribution": old_body.get("attribution", 1.0)},
                 "cart": verdict.as_dict()}
        return self._amend(key, stamp_ns, old_sid, old_body, payer, sku,
                           abs(old_body["qty"]) * (1 if ev.kind == PICK else -1), prob, shares[payer], others, extra)

    def _amend(self, key: str, stamp_ns: int, old_sid: str, old_body: dict, payer: str, sku: str, qty: int,
               prob: float, attribution: float, others: dict, extra: dict) -> list[Receipt]:
        """A billed line's new answer (payer, product, confidence) as one append-only `amend` row that
        replaces its contribution; nothing is written when the answer is the same. The receipts of
        the new payer and, if it moved, of the old one come back to be published."""
        product = self.store.products[sku]
        body = {k: v for k, v in old_body.items() if k not in ("others", "cart")}
        body.update(sku=sku, name=product.name, unit_price=product.price, qty=qty,
                    attribution=round(attribution, 6), confidence=round(prob * attribution, 6),
                    **extra, replaces=old_sid)
        if others:
            body["others"] = others
        if not body["confidence"] or (payer == old_sid and sku == old_body["sku"]
                                      and body["confidence"] == old_body["confidence"]
                                      and others == (old_body.get("others") or {})):
            return []
        r = self._write(key, payer, stamp_ns, "amend", body)
        out = [r] if r is not None else []
        if r is not None and old_sid != payer:
            out.append(self.receipt(old_sid))
        return out

    def finalize_open(self, stamp_ns: int, reason: str = "end_of_bag") -> list[Receipt]:
        out = []
        for s in sorted(self.sessions.values(), key=lambda s: (s.entry_ns, s.session_id)):
            if not s.closed:
                r = self._write(f"close/{s.session_id}", s.session_id, stamp_ns, "close", {"reason": reason})
                if r is not None:
                    out.append(r)
        return out

    def resolve_review(self, session_id: str, lines: list[ReceiptLine], reviewer: str, note: str,
                       stamp_ns: int) -> Receipt:
        s = self.sessions.get(session_id)
        if s is None:
            raise KeyError(f"no session {session_id!r}")
        for ln in lines:    # checked before the append-only write: a bad row would break every restart
            if ln.sku not in self.store.products:
                raise KeyError(f"store {self.store.name!r} has no product {ln.sku!r}")
        body = {"lines": [[ln.sku, ln.qty] for ln in lines], "reviewer": reviewer, "note": note}
        key = f"review/{session_id}/{s.revision}"
        receipt = self._write(key, session_id, stamp_ns, "review", body)
        return receipt or self.receipt(session_id)

    # ---- state --------------------------------------------------------------------------------
    def receipt(self, session_id: str) -> Receipt:
        s = self.sessions[session_id]
        lines = [ReceiptLine(ln.sku, ln.name, ln.qty, ln.unit_price, round(ln.confidence, 6),
                             list(ln.evidence))
                 for ln in s.lines.values() if ln.qty > 0]
        confidence = s.unbilled
        for ln in s.lines.values():     # a cancelled line's doubt stays: which item went back decides what is left
            confidence *= ln.confidence
        if s.flags:
            confidence = min(confidence, 0.5)
        total = float(round(sum(ln.qty * ln.unit_price for ln in lines), 2))
        return Receipt(s.session_id, s.last_ns, s.status, s.reason, s.revision, lines, total,
                       self.store.currency, float(round(confidence, 6)))

    def open_sessions(self) -> list[str]:
        return [s.session_id for s in self.sessions.values() if not s.closed]

    def session_for_exit(self, ev: GateEvent) -> str | None:
        """The open session an EXIT scan will close (None if it matches none)."""
        s = self._exit_session(ev)
        return s.session_id if s is not None else None

    def _exit_session(self, ev: GateEvent) -> _Session | None:
        open_ = [s for s in self.sessions.values() if not s.closed and s.entry_ns <= ev.stamp_ns]
        by_token = [s for s in open_ if s.token_hash == ev.token_hash]
        if by_token:
            return by_token[0]
        shoppers = [s for s in open_ if not s.staff]
        return shoppers[0] if len(shoppers) == 1 else None

    def _attribute(self, inside: list[_Session], ev: ShelfEvent,
                   seen: list[ProductView] = ()) -> tuple[_Session, float, dict[str, float]]:
        """The payer, its probability, and the others' shares worth a ledger entry: a receipt is only
        as sure as the events it might have had and was not given."""
        a = self.attribution(inside, ev, seen)
        self.last_attribution = a
        others = {k: round(p, 6) for k, p in sorted(a.shares.items())
                  if k != a.payer.session_id and p >= OTHERS_MIN}
        return a.payer, a.shares[a.payer.session_id], others

    def attribution(self, inside: list[_Session], ev: ShelfEvent, seen: list[ProductView] = ()) -> Attribution:
        """Who made a shelf change (no ledger write; `storefuse explain` shows the same answer).

        A put-back goes to whoever holds one of the candidates; among several shoppers, each gets
        a weight from what the cameras say about the plate's front while the change started (a
        track standing there, one far away, one not seen at all), times, for a put-back, how likely
        the items each one holds are to be the one put back; the payer is the heaviest, and
        its share of the weight is the attribution probability. Without any camera evidence the
        latest arrival pays, at 1/n. `seen`, the change's product views (given by the recheck only, once
        every view of the window is in, live and replayed alike): whose arm they saw holding the item
        weighs in too."""
        pool, holders = inside, False
        if ev.kind != PICK:
            held = [s for s in inside if any(_holds(s, c) for c in ev.candidates)]
            if held:
                pool, holders = held, True
        where = self._where(pool, ev)
        weights = self._weights(pool, ev, where) if where else None
        if weights is not None and holders:
            # what each holder holds is evidence too: the one holding the likelier item put it back
            # (a look-alike's holder nearby must not take the put-back of a plate's own product)
            weights = {h.session_id: weights[h.session_id] * sum(c.probability for c in ev.candidates if _holds(h, c))
                       for h in pool}
        if weights is not None:
            links = self._links(pool, seen)
            if links is not None:       # whose arm the cameras saw holding the item
                weights = {k: w * links[k] for k, w in weights.items()}
        if weights is None:
            payer = max(pool, key=lambda s: (s.entry_ns, s.session_id))
            raw = {s.session_id: 1.0 for s in pool}
        else:
            payer = max(pool, key=lambda s: (weights[s.session_id], s.entry_ns, s.session_id))
            raw = weights
        total = sum(raw.values())
        return Attribution(pool, holders, weights, where, payer, {k: w / total for k, w in raw.items()})

    def _links(self, pool: list[_Session], seen: list[ProductView]) -> dict[str, float] | None:
        """Per session, the tempered likelihood of the body points the cameras linked this change's
        hand to (None: no linked view). A point on a session's track says it was their arm, unless the
        estimate gave the hand to a neighbour (MISLINK) or to someone outside the pool (LINK_NOBODY):
        one camera can never make it certain."""
        linked = [v for v in seen if v.linked]
        if not linked or self.locate is None or len(pool) < 2:
            return None
        ids = [s.session_id for s in pool]
        out = dict.fromkeys(ids, 1.0)
        for v in linked:
            where = self.locate(v.body_x, v.body_y, v.stamp_ns - LINK_WINDOW_NS, v.stamp_ns + LINK_WINDOW_NS)
            g = {}
            for k in ids:
                w = where.get(k)
                if w is not None and w.mean is None and w.last_ns is not None and \
                        v.stamp_ns - w.last_ns <= LINK_RECENT_NS:      # lost in the crowd a moment ago
                    d = w.last_d
                else:
                    d = None if w is None else w.mean
                g[k] = LINK_UNSEEN if d is None else math.exp(-0.5 * (d / LINK_SD_M) ** 2)
            total = sum(g.values())
            for k in ids:
                like = (1 - MISLINK) * g[k] + MISLINK * (total - g[k]) / (len(ids) - 1) + LINK_NOBODY
                out[k] *= like ** TEMPER
        return out

    def _every_unit(self, attribution: float, others: dict, qty: int, payer: str,
                    ev: ShelfEvent | None = None) -> tuple[float, dict]:
        """A pick of several units, or one change that lasted longer than one hand takes, while
        another shopper of the pool also came within reach of the plate: the scale saw one settled
        change, but two hands may have made it (one unit each, or one's pick and the other's put-back).
        The line is only as sure as every unit being the payer's, and another's receipt only as sure
        as none of them being theirs; each unit is shared out by how close each one came (closest
        approach, not where they stood on average: a second shopper stepping up for the last unit
        stood there briefly), over the whole change when it was long. Uses the attribution just made
        (last_attribution)."""
        a = self.last_attribution
        long = ev is not None and long_change(ev)
        if (qty < 2 and not long) or a is None or not a.where or len(a.shares) < 2:
            return attribution, others
        where = a.where
        if long and self.locate is not None and ev.plate_ids:
            where = self.locate(*plate_front(self.store, ev.plate_ids), ev.start_ns, ev.stamp_ns)
        near = {k: math.exp(-0.5 * (w.closest / POSITION_SD_M) ** 2) for k, w in where.items()
                if k in a.shares and w.closest is not None}
        if payer not in near:
            return attribution, others
        total = sum(near.values()) + FAR_WEIGHT * len(a.shares)
        others = dict(others)
        for k, v in sorted(near.items()):
            took_one = min(1.0 - (1.0 - (v + FAR_WEIGHT) / total) ** qty, MAX_SHARE)
            if k != payer and took_one >= OTHERS_MIN:
                others[k] = round(max(others.get(k, 0.0), took_one), 6)
        # never 0: a line's confidence is a factor an amend divides out again
        return min(attribution, max(((near[payer] + FAR_WEIGHT) / total) ** qty, 1.0 - MAX_SHARE)), others

    def _where(self, pool: list[_Session], ev: ShelfEvent) -> dict:
        """What tracking says about the front of the changed plates ({}: not needed, or no tracking)."""
        if len(pool) < 2 or self.locate is None or not ev.plate_ids:
            return {}
        fx, fy = plate_front(self.store, ev.plate_ids)
        return self.locate(fx, fy, ev.start_ns - WINDOW_BEFORE_NS, ev.start_ns + WINDOW_AFTER_NS)

    @staticmethod
    def _weights(pool: list[_Session], ev: ShelfEvent, where: dict) -> dict[str, float]:
        """Unnormalised weight per session that it made this shelf change."""
        weights = {}
        unseen = []
        for s in pool:
            w = where.get(s.session_id)
            if w is None or (w.mean is None and w.last_ns is None):
                weights[s.session_id] = UNSEEN_WEIGHT
            elif w.mean is not None:
                weights[s.session_id] = math.exp(-0.5 * (w.mean / POSITION_SD_M) ** 2) + FAR_WEIGHT
            else:
                gap_s = (ev.start_ns - w.last_ns) / 1e9
                reachable = w.last_d <= WALK_MPS * gap_s + 2 * POSITION_SD_M
                weights[s.session_id] = UNSEEN_WEIGHT if reachable else FAR_WEIGHT
            if weights[s.session_id] == UNSEEN_WEIGHT:
                unseen.append(s.session_id)
        anonymous = where.get("")
        if anonymous is not None and anonymous.mean is not None and unseen:
            # someone the cameras could not name stood there: one of the shoppers they lost
            share = math.exp(-0.5 * (anonymous.mean / POSITION_SD_M) ** 2) / len(unseen)
            for k in unseen:
                weights[k] += share
        return weights

    def _choose(self, s: _Session, ev: ShelfEvent, billed: dict | None = None):
        if not ev.candidates:
            return None
        if ev.kind == PICK:
            return ev.candidates[0], ev.candidates[0].probability
        held = [(c.probability, c) for c in ev.candidates if _holds(s, c, billed)]
        if not held:
            return None
        total = sum(p for p, _ in held)
        prob, cand = max(held, key=lambda item: (item[0], item[1].sku))
        # What the scale gives the rest (products the payer does not hold, or nothing it knows) stays
        # a doubt, though a small one: a shopper puts back what they took, rarely what no scale saw.
        return cand, min(1.0, prob / max(total + NOT_HELD_PUT * max(0.0, 1.0 - total), 1e-12))

    def _unfold_line(self, session_id: str, body: dict, stamp_ns: int) -> None:
        """Undo one line row's contribution (its quantity, its confidence factor, the doubt it put on others)."""
        for other, share in (body.get("others") or {}).items():
            if other in self.sessions and other != session_id and share < 1.0:
                self.sessions[other].unbilled /= 1.0 - share
        self._forget_stray(body["event_id"])
        s = self.sessions.get(session_id)
        line = s.lines.get(body["sku"]) if s is not None else None
        if line is None or body["event_id"] not in line.evidence:
            return
        line.qty -= body["qty"]
        line.confidence /= body["confidence"]
        line.evidence.remove(body["event_id"])
        if not line.evidence and line.qty == 0:
            del s.lines[body["sku"]]
        s.revision += 1
        if not s.closed:
            s.last_ns = stamp_ns
        elif s.status != REVIEWED:      # a final receipt amended: judged again, still the exit's receipt
            self._judge(s)

    def _credit(self, s: _Session, body: dict, qty: int, evidence_id: str) -> None:
        """One contribution to a receipt line (its quantity, its confidence factor, its evidence); a
        closed receipt, unless a human settled it, is judged again (a late line, a late hand-over)."""
        line = s.lines.setdefault(body["sku"], _Line(body["sku"], body["name"], body["unit_price"]))
        line.qty += qty
        line.confidence *= body["confidence"]
        line.evidence.append(evidence_id)
        if s.closed and s.status != REVIEWED:
            self._judge(s)

    def _judge(self, s: _Session) -> None:
        """A closed receipt is final when sure enough, else it waits for a human."""
        s.status = FINAL if self.receipt(s.session_id).confidence >= self.review_threshold else NEEDS_REVIEW

    def _write(self, key, session_id, stamp_ns, kind, body) -> Receipt | None:
        if not self.ledger.append(key, session_id, stamp_ns, kind, body):
            self.stats.duplicates += 1
            return None
        self._fold(key, session_id, stamp_ns, kind, body)
        return self.receipt(session_id) if session_id in self.sessions else None

    def _fold(self, key, session_id, stamp_ns, kind, body) -> None:
        if kind == "amend":         # the carts' word on a billed line: take its old share back, add the new
            prev = self._event_lines.get(body["event_id"])
            if prev is not None:
                self._unfold_line(*prev, stamp_ns)
            self._fold(key, session_id, stamp_ns, "line", body)
            return
        if kind == "open":
            self.sessions[session_id] = _Session(session_id, body["token_hash"], stamp_ns, body["staff"],
                                                 body["party_size"], last_ns=stamp_ns)
            return
        for other, share in (body.get("others") or {}).items() if kind in ("line", "staff", "unexplained") else ():
            if other in self.sessions and other != session_id:
                self.sessions[other].unbilled *= 1.0 - share
        s = self.sessions.get(session_id)
        if s is None:
            return
        s.revision += 1
        if not (s.closed and kind in ("line", "hand_over")):    # a late line amends the exit's receipt, at its stamp
            s.last_ns = stamp_ns
        if kind == "line":
            self._credit(s, body, body["qty"], body["event_id"])
            self._event_lines[body["event_id"]] = (session_id, body)
            self._note_stray(body)
        elif kind == "staff":           # staff restock and face the shelves: what was astray is put right
            for put_right in [k for k in self._stray_count if k[0] in (body.get("plates") or ())]:
                del self._stray_count[put_right]
        elif kind == "unexplained":
            s.flags.append(body["event_id"])
        elif kind in ("encounter", "identity"):
            s.flags.append(f"{'hand_over' if kind == 'encounter' else 'identity'}?{body['other']}")
            other = self.sessions.get(body["other"])
            if other is not None:
                other.flags.append(f"{'hand_over' if kind == 'encounter' else 'identity'}?{session_id}")
        elif kind == "hand_over":       # one unit seen changing hands: off the giver's receipt, onto the taker's
            giver = self.sessions.get(body["from"])
            if giver is not None:
                giver.revision += 1
                if not giver.closed:
                    giver.last_ns = stamp_ns
            for who, qty, other in ((giver, -body["qty"], session_id), (s, body["qty"], body["from"])):
                if who is None:
                    continue
                if f"hand_over?{other}" in who.flags:      # this meeting's doubt (one flag a meeting)
                    who.flags.remove(f"hand_over?{other}")
                self._credit(who, body, qty, key)
        elif kind == "silent_plate":
            s.flags.append(f"silent_plate?{body['plate']}")
        elif kind == "close":
            s.closed, s.closed_ns = True, stamp_ns
            self._judge(s)
            s.reason = body["reason"] if s.status == FINAL else f"{body['reason']},low_confidence"
        elif kind == "review":
            s.lines = {}
            for sku, qty in body["lines"]:
                p = self.store.products[sku]
                s.lines[sku] = _Line(sku, p.name, p.price, qty, 1.0, [key])
            s.flags = []
            s.unbilled = 1.0
            s.status, s.reason = REVIEWED, f"reviewed by {body['reviewer']}"
