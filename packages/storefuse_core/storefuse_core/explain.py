"""Answering a dispute: why a session was charged for each line of its receipt, from the bag.

The bag is replayed through the very pipeline that billed it (replay.py) while its decisions are
watched as they are made: for every shelf change, who was inside, what the cameras said about the
plate, and each session's share of the blame from ReceiptBook.attribution itself, so the
numbers shown are the ones that picked the payer (each is checked against the payer, probability
and other sessions' shares the ledger recorded). A second pass cuts the plates' calibrated weights around the session's
changes; write_png draws it all for a person.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from storefuse_core import topics
from storefuse_core.bag import read_bag
from storefuse_core.convert import block_from_msg
from storefuse_core.errors import StorefuseError
from storefuse_core.events import PICK, ShelfEvent
from storefuse_core.layout import Store
from storefuse_core.pipeline import FusionPipeline
from storefuse_core.replay import ReplayResult, replay_bag, store_of_bag

WINDOW_S = 5.0      # weight trace and tracks shown this long before the change starts and after it settles
LEVEL_S = 0.4       # levels are medians over this long: the detector holds a level 0.5 s before it emits


class UnknownSession(StorefuseError):
    """The session asked for is not in the bag (or the prefix is ambiguous); knows the ones that are."""

    def __init__(self, message: str, sessions: list[dict]):
        super().__init__(message)
        self.sessions = sessions


@dataclass
class Blame:
    """Who could have made one shelf change, as the receipt book saw it at that moment."""
    inside: list[str]                     # every open session inside when the change started
    pool: list[tuple[str, int]]           # (session, entry_ns) the payer is chosen from
    holders: bool                         # a put-back: the pool is the sessions holding a candidate
    weights: dict[str, float] | None      # the cameras' weights (None: no camera evidence)
    where: dict                           # what tracking said per session (track.Whereabouts)
    payer: str
    shares: dict[str, float]              # probability per pool session


@dataclass
class Evidence:
    """A replayed bag with everything a dispute needs: receipts, decisions, tracks, blames."""
    path: Path
    store: Store
    result: ReplayResult
    rows: list                            # the ledger: (key, session, stamp_ns, kind, body)
    blames: dict[str, Blame]              # by shelf event id


def _watch(pipeline: FusionPipeline) -> dict[str, Blame]:
    """Wraps the book's shelf input to note each change's blame (ReceiptBook.attribution, the
    very answer the book is about to act on) before the book applies it."""
    book = pipeline.book
    blames: dict[str, Blame] = {}
    apply_shelf, recheck = book.apply_shelf, book.recheck

    def blame(ev: ShelfEvent, seen=()) -> Blame | None:
        inside = book._inside_at(ev.start_ns)
        if not inside:
            return None
        a = book.attribution(inside, ev, seen)
        return Blame([s.session_id for s in inside], [(s.session_id, s.entry_ns) for s in a.pool],
                     a.holders, a.weights, dict(a.where), a.payer.session_id, a.shares)

    def watched(ev: ShelfEvent):
        if ev.event_id not in blames:
            b = blame(ev)
            if b is not None:
                blames[ev.event_id] = b
        return apply_shelf(ev)

    def rechecked(ev: ShelfEvent, stamp_ns: int):
        # the answer once the cameras have seen the window after the start (and the hand in it) ...
        b = blame(ev, book.views.for_event(ev) if book.views is not None else ())
        out = recheck(ev, stamp_ns)
        if out and b is not None and ev.kind == PICK:
            blames[ev.event_id] = b         # ... is the line's when it amended it (a `window/` row); a
        return out                          # put-back's recheck only chooses the product again

    book.apply_shelf, book.recheck = watched, rechecked
    return blames


def gather(path: str | Path, store_name: str | None = None) -> Evidence:
    """Replay the bag once, watching every attribution."""
    path = Path(path)
    if not (path / "metadata.yaml").is_file():
        raise StorefuseError(f"{path}: not a rosbag2 folder (no metadata.yaml)")
    store = store_of_bag(path, store_name)
    pipeline = FusionPipeline(store)
    blames = _watch(pipeline)
    result = replay_bag(path, store_name, pipeline=pipeline)
    return Evidence(path, store, result, list(pipeline.book.ledger.entries()), blames)


def shares(blame: Blame) -> tuple[str, dict[str, float], str]:
    """The payer, every candidate session's probability, and how it was decided."""
    ids = [sid for sid, _ in blame.pool]
    if blame.weights is None:
        if len(ids) == 1:
            method = "holds the item" if blame.holders else "only one inside"
        else:
            method = "latest arrival (no camera evidence)"
        return blame.payer, dict(blame.shares), method
    method = "cameras, among holders" if blame.holders else "cameras"
    if sum(1 for sid in ids if blame.shares[sid] == blame.shares[blame.payer]) > 1:
        method += "; a tie, so the latest arrival"
    return blame.payer, dict(blame.shares), method


def sessions(ev: Evidence) -> list[dict]:
    """Every session in the bag, by entry: what `--session` accepts."""
    finals = {r["session_id"]: r for r in ev.result.finals_json()}
    out = []
    for _, sid, stamp, kind, body in ev.rows:
        if kind != "open":
            continue
        r = finals.get(sid, {})
        out.append({"session_id": sid, "entry_ns": stamp, "entry": clock(stamp), "gate_id": body.get("gate_id", ""),
                    "staff": bool(body.get("staff")), "party_size": body.get("party_size", 1),
                    "status": r.get("status", "OPEN"), "total": r.get("total", 0.0),
                    "lines": len(r.get("lines", []))})
    return sorted(out, key=lambda s: (s["entry_ns"], s["session_id"]))


def resolve(ev: Evidence, wanted: str | None) -> str:
    """A session id from an id or a unique prefix (with or without the 's-')."""
    known = sessions(ev)
    ids = [s["session_id"] for s in known]
    listing = ", ".join(ids) or "none"
    if not wanted:
        raise UnknownSession(f"{ev.path}: which session? sessions in this bag: {listing}", known)
    if wanted in ids:
        return wanted
    matches = [i for i in ids if i.startswith(wanted) or i.removeprefix("s-").startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    why = f"session {wanted!r} is ambiguous ({', '.join(matches)})" if matches else f"no session {wanted!r}"
    raise UnknownSession(f"{ev.path}: {why}; sessions in this bag: {listing}", known)

REVIEW_FLAGS = ("silent_plate", "encounter", "identity")     # ledger rows that send a visit to review


def clock(ns: int) -> str:
    """A stamp as a wall-clock time (UTC), as an operator reads it against the store's own logs."""
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).strftime("%H:%M:%S.%f")[:-3]


def _where(w, start_ns: int) -> dict:
    if isinstance(w, (int, float)):                 # older trackers: the closest distance only
        return {"closest_m": round(float(w), 3)}
    out = {}
    if getattr(w, "closest", None) is not None:
        out["closest_m"] = round(float(w.closest), 3)
    if getattr(w, "mean", None) is not None:
        out["mean_m"] = round(float(w.mean), 3)
    if getattr(w, "last_ns", None) is not None:
        out["last_seen_s_before"] = round((start_ns - w.last_ns) / 1e9, 3)
        out["last_seen_m"] = round(float(w.last_d), 3)
    return out


def seen_by_cameras(entry: dict) -> str:
    """What tracking said about one session around a change, in words ('' without cameras)."""
    cam = entry.get("cameras")
    if "weight" not in entry:
        return ""
    if cam and cam.get("mean_m") is not None:
        return f"tracked {cam['mean_m']:.2f} m from the plate's front on average"
    if cam and cam.get("closest_m") is not None:
        return f"tracked {cam['closest_m']:.2f} m from the plate's front"
    if cam and cam.get("last_seen_m") is not None:
        return f"last seen {cam['last_seen_s_before']:.1f} s before, {cam['last_seen_m']:.1f} m away"
    return "not seen by the cameras"


def _attribution(ev: Evidence, sev: ShelfEvent, row) -> dict | None:
    blame = ev.blames.get(sev.event_id)
    if blame is None:
        return None
    payer, scores, method = shares(blame)
    entry = dict(blame.pool)
    listed = []
    for sid in sorted(scores, key=lambda s: (-scores[s], s)):
        item = {"session_id": sid, "probability": round(scores[sid], 6), "entry_ns": entry[sid]}
        if blame.weights is not None:
            item["weight"] = round(blame.weights.get(sid, 0.0), 6)
        if sid in blame.where:
            item["cameras"] = _where(blame.where[sid], sev.start_ns)
        listed.append(item)
    cameras = row[3].get("cameras") if row else None        # a line the smart carts amended
    recorded = (cameras or row[3]).get("attribution") if row else None
    others = row[3].get("others", {}) if row and not cameras else {}
    consistent = row is not None and (cameras or {}).get("payer", row[0]) == payer and recorded is not None and \
        abs(recorded - scores[payer]) <= 1e-5 and all(abs(scores.get(k, 0.0) - v) <= 1e-5 for k, v in others.items())
    out = {"payer": payer, "probability": round(scores[payer], 6), "recorded_probability": recorded,
           "method": method, "inside": list(blame.inside), "sessions": listed, "consistent": consistent}
    if cameras:
        # The carts' word (cart_shopper.py): each cart's owners and what it showed, the likelihood it
        # gave each session, and the payer and probability cameras x carts billed.
        out["carts"] = dict(row[3]["cart"], payer=row[0], probability=row[3].get("attribution"),
                            others=row[3].get("others", {}))
    return out


def _name(ev: Evidence, sku: str) -> str:
    product = ev.store.products.get(sku)
    return product.name if product is not None else sku


def _views(ev: Evidence, rows: list) -> list[dict]:
    """Product views as a ledger row keeps them (product_views.evidence), for a reader."""
    return [{"camera_id": cam, "stamp_ns": t, "at": clock(t), "pixels": px,
             "top": [{"sku": sku, "name": _name(ev, sku), "probability": p} for sku, p in top],
             "body": body[0] if body else None}       # the arm's body, where the camera linked it
            for cam, t, px, top, *body in rows]


def _event(ev: Evidence, sev: ShelfEvent, rows: dict) -> dict:
    row = rows.get(sev.event_id)            # (session, stamp, kind, body)
    body = row[3] if row else {}
    cands = [{"sku": c.sku, "name": c.name, "qty": c.qty, "unit_grams": c.unit_grams,
              "probability": round(c.probability, 6)} for c in sev.candidates]
    out = {"event_id": sev.event_id, "kind": "PICK" if sev.kind == PICK else "PUT", "gondola_id": sev.gondola_id,
           "shelf_id": sev.shelf_id, "plate_ids": list(sev.plate_ids),
           "plate_deltas": [round(float(d), 3) for d in sev.plate_deltas],
           "start_ns": sev.start_ns, "settled_ns": sev.stamp_ns, "start": clock(sev.start_ns),
           "settled": clock(sev.stamp_ns), "delta_grams": round(float(sev.delta_grams), 3),
           "noise_sd": round(float(sev.noise_sd), 3), "candidates": cands,
           "candidates_total": round(sum(c.probability for c in sev.candidates), 6),
           "decision": row[2] if row else "none", "session_id": row[0] if row else ""}
    if row and row[2] == "line":
        attribution = body.get("attribution") or 1.0
        out["chosen"] = {"sku": body["sku"], "name": body["name"], "qty": body["qty"],
                         "probability": round(body["confidence"] / attribution, 6)}
        out["confidence"] = body["confidence"]
    if body.get("views"):       # what a camera saw in the hand re-weighed the scale's candidates
        out["views"] = _views(ev, body["views"])
        out["seen_candidates"] = [{"sku": sku, "name": _name(ev, sku), "qty": qty, "probability": p}
                                  for sku, qty, p in body.get("seen_candidates", [])]
    out["attribution"] = _attribution(ev, sev, row)
    return out


def explain_session(ev: Evidence, session: str | None, window_s: float = WINDOW_S) -> dict:
    """Everything behind one session's final receipt, line by line (JSON-ready)."""
    sid = resolve(ev, session)
    final = next(r for r in ev.result.finals_json() if r["session_id"] == sid)
    shelf = {e.event_id: e for e in ev.result.shelf_events}
    rows = {key.removeprefix("event/"): (s, stamp, kind, body) for key, s, stamp, kind, body in ev.rows
            if key.startswith("event/")}
    for key, s, stamp, kind, body in ev.rows:       # the line as amended last (ledger order)
        if kind == "amend" and key.startswith(("cart/", "window/")):      # by the carts, by the recheck
            rows[key.split("/", 1)[1]] = (s, stamp, "line", body)
    info = {"session_id": sid}
    for _, s, stamp, kind, body in ev.rows:
        if s == sid and kind == "open":
            info.update(entry_ns=stamp, entry=clock(stamp), entry_gate=body.get("gate_id", ""),
                        staff=bool(body.get("staff")), party_size=body.get("party_size", 1))
        elif s == sid and kind == "close":
            info.update(exit_ns=stamp, exit=clock(stamp), exit_gate=body.get("gate_id", ""),
                        close_reason=body.get("reason", ""))
    lines = []
    for ln in final["lines"]:
        events = [_event(ev, shelf[e], rows) for e in ln["evidence_ids"] if e in shelf]
        lines.append({k: ln[k] for k in ("sku", "name", "qty", "unit_price", "confidence")} | {"events": events})
    billed = {ln["sku"] for ln in final["lines"]}
    cancelled: dict[str, dict] = {}
    others = []
    for eid, (s, _, kind, body) in rows.items():
        if s != sid or eid not in shelf:
            continue
        if kind == "line" and body["sku"] not in billed:
            c = cancelled.setdefault(body["sku"], {"sku": body["sku"], "name": body["name"], "qty": 0,
                                                   "unit_price": body["unit_price"], "events": []})
            c["qty"] += body["qty"]
            c["events"].append(_event(ev, shelf[eid], rows))
        elif kind != "line":
            others.append(_event(ev, shelf[eid], rows))
    # Changes another session paid for, with a share of doubt on this one: the receipt's confidence
    # counts the chance that one of them was really this shopper's.
    maybe, unbilled = [], 1.0
    for eid, (s, _, kind, body) in rows.items():
        share = (body.get("others") or {}).get(sid)
        if share is not None and s != sid and kind in ("line", "staff", "unexplained") and eid in shelf:
            maybe.append(_event(ev, shelf[eid], rows))
            unbilled *= 1.0 - share
    # Items the cameras saw changing hands (ReceiptBook.resolve_hand_over): they settle that meeting's
    # encounter. Why a human must look, whatever the lines say: the ledger's other review flags.
    hand_overs = [dict(body, to=s, stamp_ns=stamp, at=clock(stamp), views=_views(ev, body.get("views", [])))
                  for _, s, stamp, kind, body in ev.rows if kind == "hand_over" and sid in (s, body["from"])]
    settled = {(frozenset((h["to"], h["from"])), h["start_ns"]) for h in hand_overs}
    flags = [dict(body, kind=kind, session_id=s, stamp_ns=stamp, at=clock(stamp)) for _, s, stamp, kind, body in ev.rows
             if kind in REVIEW_FLAGS and (s == sid or body.get("other") == sid)
             and not (kind == "encounter" and (frozenset((s, body["other"])), body.get("start_ns")) in settled)]
    out = {"bag": str(ev.path), "store": ev.store.name, "currency": ev.store.currency, "window_s": window_s,
           "cameras": bool(ev.result.track_frames), "session": info, "receipt": final, "lines": lines,
           "cancelled": list(cancelled.values()), "other_events": others, "might_have_had": maybe,
           "unbilled_probability": round(unbilled, 6), "review_flags": flags, "hand_overs": hand_overs}
    every = [e for group in (lines, out["cancelled"]) for line in group for e in line["events"]] + others + maybe
    traces = weight_traces(ev.path, ev.store, [shelf[e["event_id"]] for e in every], window_s)
    for e in every:
        e["trace"] = traces.get(e["event_id"])
        e["tracks"] = tracks_near(ev.result.track_frames, e["start_ns"] - int(window_s * 1e9),
                                  e["settled_ns"] + int(window_s * 1e9))
    return out


def explain_bag(path: str | Path, session: str | None, store_name: str | None = None,
                window_s: float = WINDOW_S) -> dict:
    return explain_session(gather(path, store_name), session, window_s)


def weight_traces(path: str | Path, store: Store, events: list[ShelfEvent], window_s: float = WINDOW_S) -> dict:
    """Per event, the calibrated samples of its plates (PlateWeights, as the scale published them)
    from window_s before the change started to window_s after it settled, with the levels before
    and after: one pass over the bag's weights."""
    wanted: dict[str, list] = {}
    for sev in events:
        board = store.gondolas[sev.gondola_id].board_id
        order = store.board_plates(board)
        plates = list(sev.plate_ids) or list(store.shelves[sev.shelf_id].plate_ids)
        idx = np.array([order.index(p) for p in plates], dtype=np.intp)
        t0, t1 = sev.start_ns - int(window_s * 1e9), sev.stamp_ns + int(window_s * 1e9)
        wanted.setdefault(board, []).append((sev, plates, idx, t0, t1, [], []))
    if not wanted:
        return {}
    for m in read_bag(path, [topics.PLATE_WEIGHTS]):
        jobs = wanted.get(m.msg.board_id)
        if not jobs:
            continue
        block = block_from_msg(m.msg)
        first, last = int(block.stamps_ns[0]), int(block.stamps_ns[-1])
        for _, _, idx, t0, t1, stamps, grams in jobs:
            if last < t0 or first > t1:
                continue
            sel = (block.stamps_ns >= t0) & (block.stamps_ns <= t1)
            stamps.append(block.stamps_ns[sel])
            grams.append(block.grams[sel][:, idx])
    out = {}
    for jobs in wanted.values():
        for sev, plates, _, t0, t1, stamps, grams in jobs:
            if not stamps:
                out[sev.event_id] = None
                continue
            s = np.concatenate(stamps)
            g = np.concatenate(grams).astype(np.float64)
            order = np.argsort(s, kind="stable")
            s, g = s[order], g[order]
            level = int(LEVEL_S * 1e9)
            before = g[(s >= sev.start_ns - level) & (s < sev.start_ns)]
            after = g[(s >= sev.stamp_ns - level) & (s <= sev.stamp_ns)]
            lv0 = np.median(before, axis=0) if len(before) else None
            lv1 = np.median(after, axis=0) if len(after) else None
            out[sev.event_id] = {
                "board_id": store.gondolas[sev.gondola_id].board_id, "plates": plates, "t0_ns": t0, "t1_ns": t1,
                "stamps_ns": [int(v) for v in s],
                "grams": {p: [round(float(v), 2) for v in g[:, k]] for k, p in enumerate(plates)},
                "before_g": None if lv0 is None else {p: round(float(lv0[k]), 2) for k, p in enumerate(plates)},
                "after_g": None if lv1 is None else {p: round(float(lv1[k]), 2) for k, p in enumerate(plates)},
                "measured_delta_g": None if lv0 is None or lv1 is None else round(float(np.sum(lv1 - lv0)), 2)}
    return out


def tracks_near(frames: list, t0_ns: int, t1_ns: int) -> list[dict]:
    """Confirmed shopper tracks between t0 and t1 (the replay's snapshots per camera frame), by
    identity; an identity 'session#member' names the session the gate bound it to."""
    stamps = [f[0] for f in frames]
    by: dict[str, list] = {}
    for ts, tracks in frames[bisect.bisect_left(stamps, t0_ns):bisect.bisect_right(stamps, t1_ns)]:
        for ident, x, y in tracks:
            by.setdefault(ident, []).append([int(ts), round(float(x), 3), round(float(y), 3)])
    return [{"identity": k, "session_id": k.split("#")[0] if "#" in k else "", "points": v}
            for k, v in sorted(by.items())]


# ---- the picture ----------------------------------------------------------------------------------
def _rows(explanation: dict) -> list[tuple[str, dict]]:
    out = []
    for ln in explanation["lines"]:
        n = len(ln["events"])
        for k, e in enumerate(ln["events"], start=1):
            out.append((f"{ln['qty']} x {ln['name']}" + (f" ({k}/{n})" if n > 1 else ""), e))
    for ln in explanation["cancelled"]:
        for e in ln["events"]:
            out.append((f"cancelled: {ln['name']}", e))
    for e in explanation["other_events"]:
        out.append((f"{e['decision']}: {e['event_id']}", e))
    for e in explanation.get("might_have_had", []):
        what = (e.get("chosen") or {}).get("name") or e["decision"]
        out.append((f"might have had: {what} (billed to {_short(e['session_id'])})", e))
    return out


def _box(ax, x, y, yaw, length, depth, **kw):
    from matplotlib.patches import Polygon
    c, s = math.cos(yaw), math.sin(yaw)
    pts = [(x + c * a - s * b, y + s * a + c * b) for a, b in ((-length / 2, -depth / 2), (length / 2, -depth / 2),
                                                             (length / 2, depth / 2), (-length / 2, depth / 2))]
    ax.add_patch(Polygon(pts, closed=True, **kw))


def _short(sid: str) -> str:
    return sid[:10]


def _draw_trace(ax, title: str, e: dict) -> None:
    tr = e.get("trace")
    start, settled = e["start_ns"], e["settled_ns"]
    ax.set_title(title[:100], fontsize=9, loc="left")
    ax.set_xlabel(f"s from change start ({e['start']} UTC)", fontsize=8)
    ax.set_ylabel("g (calibrated)", fontsize=8)
    ax.tick_params(labelsize=7)
    if not tr:
        ax.text(0.5, 0.5, "no weight samples in the bag here", transform=ax.transAxes, ha="center")
        return
    t = (np.array(tr["stamps_ns"], dtype=np.int64) - start) / 1e9
    for plate, grams in tr["grams"].items():
        ax.plot(t, grams, lw=1.0, label=plate)
    ax.axvspan(0.0, (settled - start) / 1e9, color="0.85", zorder=0)
    ax.axvline(0.0, color="tab:orange", ls="--", lw=1, label="start")
    ax.axvline((settled - start) / 1e9, color="tab:green", ls="--", lw=1, label="settled")
    if tr.get("before_g") and tr.get("after_g"):
        lvl = LEVEL_S
        for plate in tr["plates"]:
            ax.hlines(tr["before_g"][plate], -lvl, 0.0, color="k", lw=2)
            ax.hlines(tr["after_g"][plate], (settled - start) / 1e9 - lvl, (settled - start) / 1e9, color="k", lw=2)
    measured = tr.get("measured_delta_g")
    ax.text(0.01, 0.97, f"{e['kind']}  delta {e['delta_grams']:+.1f} g (noise sd {e['noise_sd']:.2f} g)"
            + (f", trace {measured:+.1f} g" if measured is not None else ""),
            transform=ax.transAxes, fontsize=8, va="top", bbox={"fc": "white", "alpha": 0.8, "lw": 0})
    ax.margins(y=0.18)
    ax.legend(fontsize=7, loc="upper right")


def _draw_floor(ax, store: Store, e: dict, explanation: dict) -> None:
    ax.set_title("floor around the change", fontsize=9, loc="left")
    ax.set_aspect("equal")
    ax.tick_params(labelsize=7)
    for g in store.gondolas.values():
        here = g.id == e["gondola_id"]
        _box(ax, g.x, g.y, g.yaw, g.length_m, g.depth_m, fc="0.9", ec="k" if here else "0.6", lw=1.5 if here else 0.8)
        ax.text(g.x, g.y, g.id, ha="center", va="center", fontsize=7)
    for pid in e["plate_ids"]:
        p = store.plates[pid]
        _box(ax, p.x, p.y, p.yaw, p.width_m, p.depth_m, fc="tab:orange", ec="tab:red", alpha=0.7)
    for gate in store.gates.values():
        ax.plot(gate.x, gate.y, marker="^" if gate.direction == "entry" else "v", color="tab:purple", ms=7)
        ax.text(gate.x, gate.y - 0.35, gate.id.replace("gate_", ""), fontsize=6, ha="center", va="top")
    payer = (e.get("attribution") or {}).get("payer", "")
    mine = explanation["session"]["session_id"]
    for tr in e.get("tracks") or []:
        pts = np.array([[p[1], p[2]] for p in tr["points"]])
        stamps = np.array([p[0] for p in tr["points"]])
        sid = tr["session_id"]
        color = "tab:red" if sid and sid == payer else ("tab:blue" if sid else "0.5")
        ax.plot(pts[:, 0], pts[:, 1], "-", color=color, lw=1.2, alpha=0.8)
        k = int(np.argmin(np.abs(stamps - e["start_ns"])))
        ax.plot(pts[k, 0], pts[k, 1], "o", color=color, ms=6)
        ax.text(pts[k, 0] + 0.15, pts[k, 1] + 0.15, _short(sid) if sid else "unbound", fontsize=6, color=color)
    if not e.get("tracks"):
        att = e.get("attribution") or {}
        why = ("no camera tracks in this bag" if not explanation["cameras"] else "no shopper tracked in the window")
        who = [f"{_short(s['session_id'])} inside since {clock(s['entry_ns'])}" for s in att.get("sessions", [])]
        if explanation["session"].get("exit"):
            who.append(f"{_short(mine)} left {explanation['session']['exit']}")
        ax.text(0.02, 0.98, "\n".join([why] + who), transform=ax.transAxes, fontsize=7, va="top",
                bbox={"fc": "white", "alpha": 0.85, "lw": 0})
    length, width = store.floor_size
    ax.set_xlim(0, length)
    ax.set_ylim(0, width)


def _draw_odds(fig, cell, e: dict) -> None:
    from matplotlib.gridspec import GridSpecFromSubplotSpec
    sub = GridSpecFromSubplotSpec(2, 1, subplot_spec=cell, hspace=0.6)
    ax = fig.add_subplot(sub[0])
    cands = e["candidates"][:4]
    chosen = (e.get("chosen") or {}).get("sku")
    labels = [f"{c['qty']}x {c['name'][:18]}" for c in cands] + ["other / unexplained"]
    values = [c["probability"] for c in cands] + [max(0.0, 1.0 - e["candidates_total"])]
    colors = ["tab:green" if c["sku"] == chosen else "0.6" for c in cands] + ["0.85"]
    ax.barh(range(len(values))[::-1], values, color=colors)
    ax.set_yticks(range(len(values))[::-1], labels, fontsize=6)
    ax.set_xlim(0, 1)
    ax.set_title("product (scale)", fontsize=8, loc="left")
    ax.tick_params(axis="x", labelsize=6)
    ax = fig.add_subplot(sub[1])
    att = e.get("attribution")
    ax.set_title(f"payer ({att['method']})" if att else "payer: nobody inside", fontsize=8, loc="left")
    ax.set_xlim(0, 1)
    ax.tick_params(axis="x", labelsize=6)
    if att:
        people = att["sessions"][:4]
        ax.barh(range(len(people))[::-1], [p["probability"] for p in people],
                color=["tab:red" if p["session_id"] == att["payer"] else "tab:blue" for p in people])
        ax.set_yticks(range(len(people))[::-1], [_short(p["session_id"]) for p in people], fontsize=6)
        for y, p in zip(range(len(people))[::-1], people):
            ax.text(0.02, y, f"{p['probability']:.2f} {seen_by_cameras(p)}", va="center", fontsize=6,
                    bbox={"fc": "white", "alpha": 0.7, "lw": 0})


def write_png(explanation: dict, store: Store, path: str | Path) -> Path:
    """One PNG per session: a row per shelf change behind the receipt (weight trace, floor, odds)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.gridspec import GridSpec
    rows = _rows(explanation) or [("no shelf changes on this receipt", None)]
    height = 3.4 * len(rows) + 1.0
    fig = plt.figure(figsize=(16, height), dpi=100)
    grid = GridSpec(len(rows), 3, figure=fig, width_ratios=[2.3, 1.4, 1.0], hspace=0.55, wspace=0.3,
                    top=1 - 0.8 / height, bottom=0.5 / height, left=0.05, right=0.97)
    s, r = explanation["session"], explanation["receipt"]
    fig.suptitle(f"{explanation['store']}: session {s['session_id']} - {r['status']} ({r.get('status_reason', '')}), "
                 f"total {r['total']:.2f} {explanation['currency']}, confidence {r['confidence']:.3f}", fontsize=11)
    for k, (title, e) in enumerate(rows):
        if e is None:
            ax = fig.add_subplot(grid[k, :])
            ax.text(0.5, 0.5, title, ha="center", va="center")
            ax.axis("off")
            continue
        _draw_trace(fig.add_subplot(grid[k, 0]), f"{title} - {e['event_id']}", e)
        _draw_floor(fig.add_subplot(grid[k, 1]), store, e, explanation)
        _draw_odds(fig, grid[k, 2], e)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path
