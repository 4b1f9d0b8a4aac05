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
from storefuse_core.convert import block_from_msg, detections_from_msg, gate_event_from_msg, receipt_from_msg, stamp_ns
from storefuse_core.events import ENTRY, GateEvent, Receipt, ShelfEvent
from storefuse_core.gate import session_id_for
from storefuse_core.layout import Store, load_store, parse_store
from storefuse_core.pipeline import FusionPipeline, finals_json
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


def replay_bag(path: str | Path, store_name: str | None = None,
               pipeline: FusionPipeline | None = None) -> ReplayResult:
    """`pipeline`: the caller's own (explain.py watches its decisions as they are made)."""
    path = Path(path)
    store = store_of_bag(path, store_name)
    params = ShelfParams.from_dict(json.loads(custom_data(path).get("storefuse.shelf_params", "{}")))
    detectors = {b: ShelfDetector(store, b, params) for b in store.boards}
    pipeline = pipeline if pipeline is not None else FusionPipeline(store)
    pipeline.record_tracks = True
    result = ReplayResult([], [])
    wanted = [topics.PLATE_WEIGHTS, topics.GATE_EVENTS, topics.GATE_WATERMARK, topics.RECEIPTS_FINAL,
              topics.SHELF_CONFIG]
    started: set[str] = set()
    gateless = not _has_gate_events(path)
    wanted += [topics.camera_topic(c) for c in store.cameras]
    for m in read_bag(path, wanted):
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
                result.shelf_events.append(ev)
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
    result.receipts += pipeline.finish(result.last_ns, "end_of_bag")
    result.track_frames = pipeline.track_frames
    result.ledger_rows = list(pipeline.book.ledger.entries())
    return result
