"""Offline replay: the fusion pipeline on a bag's raw sensor topics, in-process, deterministic.

Plate samples go through the same ShelfDetector the scale driver runs, gate events and
watermarks through the same FusionPipeline the receipt node runs; only the clock differs (none).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from storefuse_core import topics
from storefuse_core.bag import custom_data, read_bag
from storefuse_core.convert import (
    block_from_msg,
    detections_from_msg,
    gate_event_from_msg,
    product_views_from_msg,
    receipt_from_msg,
    stamp_ns,
)
from storefuse_core.events import ENTRY, PICK, PUT, GateEvent, Receipt, ShelfEvent
from storefuse_core.gate import session_id_for
from storefuse_core.layout import Store, load_store, parse_store
from storefuse_core.pipeline import FusionPipeline, finals_json
from storefuse_core.product_views import BadView
from storefuse_core.shelf import ShelfDetector, ShelfParams, config_from_json


@dataclass
class ReplayResult:
    receipts: list[Receipt]
    shelf_events: list[ShelfEvent]
    recorded_finals: list[Receipt] = field(default_factory=list)
    track_frames: list[tuple[int, list[tuple[str, float, float]]]] = field(default_factory=list)
    messages: int = 0
    last_ns: int = 0
    ledger_rows: list = field(default_factory=list)    # (key, session, stamp, kind, body): the decisions
    plate_health: list[ShelfEvent] = field(default_factory=list)   # PLATE_SILENT / PLATE_LIVE (shelf.py)

    def finals_json(self) -> list[dict]:
        return finals_json(self.receipts)


def store_of_bag(path: Path, override: str | None = None) -> Store:
    if override:
        return load_store(override)
    data = custom_data(path)
    if data.get("storefuse.layout"):
        return parse_store(data["storefuse.layout"], path / "metadata.yaml#storefuse.layout")
    if data.get("storefuse.store"):
        return load_store(data["storefuse.store"])
    raise ValueError(f"{path}: bag does not say which store it is from; pass --store")


def _has_gate_events(path: Path) -> bool:
    import yaml
    meta = yaml.safe_load((path / "metadata.yaml").read_text()).get("rosbag2_bagfile_information", {})
    return any(t["topic_metadata"]["name"] == topics.GATE_EVENTS and t.get("message_count", 0) > 0
               for t in meta.get("topics_with_message_count", []))


class _CartFeed:
    """The smart carts' topics into the pipeline as the receipt node gets them: the recorded poses
    (carts/<id>/pose, a live recording) or, where the bag has only the carts' raw UWB ranges and
    odometry (`storefuse sim`), the same localizer the cart_localizer node runs; and their CartEvents."""

    def __init__(self, path: Path, store: Store):
        import yaml
        meta = yaml.safe_load((path / "metadata.yaml").read_text()).get("rosbag2_bagfile_information", {})
        counts = {t["topic_metadata"]["name"]: t.get("message_count", 0)
                  for t in meta.get("topics_with_message_count", [])}
        self.anchors = {a.id: (a.x, a.y, a.z) for a in store.uwb_anchors.values()}
        self.recorded_poses = {c for c in store.carts if counts.get(topics.cart_topic(c, "pose"), 0) > 0}
        self.topics: set[str] = set()
        for c in store.carts:
            self.topics.add(topics.cart_topic(c, "events"))
            leaves = ("pose",) if c in self.recorded_poses else ("uwb", "odom")
            self.topics.update(topics.cart_topic(c, leaf) for leaf in leaves)
        self.localizers: dict = {}

    def feed(self, pipeline: FusionPipeline, m) -> None:
        from storefuse_core.cart import CartLocalizer, cart_of, odom_pose
        from storefuse_core.cart_shopper import change_from_msg
        cart, leaf = cart_of(m.topic)
        if leaf == "events":
            pipeline.push_cart_change(change_from_msg(m.msg))
            return
        t = stamp_ns(m.msg.header.stamp)
        if leaf == "pose":
            p = m.msg.pose.pose.position
            pipeline.push_cart_pose(cart, t, float(p.x), float(p.y))
            return
        loc = self.localizers.setdefault(cart, CartLocalizer(self.anchors))
        if leaf == "uwb":
            out = loc.add_uwb(t, list(m.msg.anchor_ids), [float(r) for r in m.msg.ranges_m],
                              [float(q) for q in m.msg.quality], now_ns=m.log_ns)
        else:
            out = loc.add_odom(t, *odom_pose(m.msg), now_ns=m.log_ns)
        for pose in out:
            pipeline.push_cart_pose(cart, pose.stamp_ns, pose.x, pose.y)

    def flush(self, pipeline: FusionPipeline) -> None:
        for cart, loc in sorted(self.localizers.items()):
            for pose in loc.flush():
                pipeline.push_cart_pose(cart, pose.stamp_ns, pose.x, pose.y)


def replay_bag(path: str | Path, store_name: str | None = None,
               pipeline: FusionPipeline | None = None, cart_evidence: bool = True,
               product_views: bool = True) -> ReplayResult:
    """`pipeline`: the caller's own (explain.py watches its decisions as they are made);
    `cart_evidence` / `product_views`: False replays without the smart carts' word / without what
    the cameras saw in hands (the before/after figures of issue 6)."""
    path = Path(path)
    store = store_of_bag(path, store_name)
    params = ShelfParams.from_dict(json.loads(custom_data(path).get("storefuse.shelf_params", "{}")))
    detectors = {b: ShelfDetector(store, b, params) for b in store.boards}
    pipeline = pipeline if pipeline is not None else FusionPipeline(store, cart_evidence=cart_evidence,
                                                                       product_views=product_views)
    pipeline.record_tracks = True
    result = ReplayResult([], [])
    wanted = [topics.PLATE_WEIGHTS, topics.GATE_EVENTS, topics.GATE_WATERMARK, topics.RECEIPTS_FINAL,
              topics.SHELF_CONFIG]
    started: set[str] = set()
    gateless = not _has_gate_events(path)
    wanted += [topics.camera_topic(c) for c in store.cameras]
    views = {topics.camera_topic(c, "products") for c in store.cameras} if pipeline.views_on else set()
    wanted += sorted(views)
    carts = _CartFeed(path, store) if pipeline.carts is not None and store.carts else None
    wanted += sorted(carts.topics) if carts is not None else []
    for m in read_bag(path, wanted):
        if carts is not None and m.topic in carts.topics:
            result.messages += 1
            carts.feed(pipeline, m)
            continue
        if m.topic in views:
            result.messages += 1
            for view in product_views_from_msg(m.msg):
                try:
                    pipeline.push_product_view(view)
                except BadView:
                    pass        # counted (pipeline.book.views.rejected), as the live node does
            continue
        if m.topic.startswith(f"{topics.NS}/cameras/"):
            stamp = stamp_ns(m.msg.header.stamp)
            pipeline.push_detections(m.msg.camera_id, stamp, detections_from_msg(m.msg))
            result.receipts += pipeline.step(0)
            continue
        if gateless and m.topic == topics.PLATE_WEIGHTS:
            # No gate in the recording (e.g. the AiFi import): the shopper(s) present are one
            # implicit session from the first sample, finalised at the end of the bag.
            gateless = False
            first = int(m.msg.stamps_ns[0])
            pipeline.book.apply_gate(GateEvent(first, "implicit", ENTRY, session_id_for("implicit", first, 0), ""))
        result.messages += 1
        if m.topic == topics.SHELF_CONFIG:
            board, board_params = config_from_json(m.msg.data)
            if board in detectors and board not in started:     # the driver's own settings win
                detectors[board] = ShelfDetector(store, board, board_params)
            continue
        if m.topic == topics.PLATE_WEIGHTS:
            block = block_from_msg(m.msg)
            started.add(block.board_id)
            det = detectors.get(block.board_id)
            if det is None:
                continue
            for ev in det.process(block):
                (result.shelf_events if ev.kind in (PICK, PUT) else result.plate_health).append(ev)
                pipeline.push_shelf(ev)
            pipeline.advance(block.board_id, det.watermark_ns())
            result.last_ns = max(result.last_ns, int(block.stamps_ns[-1]))
        elif m.topic == topics.GATE_EVENTS:
            ev = gate_event_from_msg(m.msg)
            pipeline.push_gate(ev)
            result.last_ns = max(result.last_ns, ev.stamp_ns)
        elif m.topic == topics.GATE_WATERMARK:
            pipeline.advance(m.msg.header.frame_id, stamp_ns(m.msg.header.stamp), int(m.msg.items_published))
        elif m.topic == topics.RECEIPTS_FINAL:
            result.recorded_finals.append(receipt_from_msg(m.msg))
            continue
        result.receipts += pipeline.step(0)
    if carts is not None:
        carts.flush(pipeline)
    result.receipts += pipeline.finish(result.last_ns, "end_of_bag")
    result.track_frames = pipeline.track_frames
    result.ledger_rows = list(pipeline.book.ledger.entries())
    return result
