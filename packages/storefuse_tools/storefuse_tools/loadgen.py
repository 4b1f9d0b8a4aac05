"""Synthetic store traffic at a store's real rates, for recorder load tests and benchmarks.

Every stream (one scale board's PlateWeights, one camera's PersonDetections, ...) numbers its
messages: header.stamp.sec = the stream's sequence number, header.stamp.nanosec = the stream's
index, so a bag tells exactly which messages of which stream it lacks (`count_bag`). A few
variants of each stream's message (noisy plate samples, people at other places) are serialised
up front and only their numbers are patched before each publish, so the generator stays cheap
next to the recorder it loads.

    python -m storefuse_tools.loadgen --store grocery --seconds 30 --json counts.json
"""
from __future__ import annotations

import argparse
import heapq
import json
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SENTINEL32 = 0x5A5A5A5A
SENTINEL64 = 0x5A5A5A5A5A5A5A5A
VARIANTS = 8


@dataclass
class Stream:
    name: str
    topic: str
    msgtype: str
    rate_hz: float
    templates: list[bytes]            # variants with different payloads, cycled (realistic compression)
    patches: dict[str, tuple[int, str]] = field(default_factory=dict)   # field -> (offset, struct fmt)
    counts: str = ""       # a watermark: the name of the event stream whose count it carries
    sent: int = 0


@dataclass
class Rates:
    """Grocery peak by default: 56 boards x 10 blocks/s of 6 samples, 50 cameras x 10 Hz."""
    block_hz: float = 10.0
    samples: int = 6
    camera_hz: float = 10.0
    detections: int = 4
    shelf_events_hz: float = 5.0
    gate_events_hz: float = 4.0
    gate_watermark_hz: float = 5.0
    receipts_hz: float = 5.0


def _offset(raw: bytes, value: int, fmt: str) -> int:
    at = raw.find(struct.pack(fmt, value))
    if at < 0:
        raise RuntimeError(f"sentinel {value:#x} not found in the serialised template")
    return at


def build_streams(store, rates: Rates, boards: int | None = None, cameras: int | None = None) -> list[Stream]:
    """One stream per publisher of a store's live graph, each with a serialised template."""
    from rclpy.serialization import serialize_message

    from storefuse_core import topics
    from storefuse_core.convert import (
        block_to_msg,
        detections_to_msg,
        gate_event_to_msg,
        rclpy_factory,
        receipt_to_msg,
        shelf_event_to_msg,
        watermark_to_msg,
    )
    from storefuse_core.events import PICK, Candidate, GateEvent, PlateBlock, Receipt, ReceiptLine, ShelfEvent
    from storefuse_core.vision import APPEARANCE_DIM, Detection
    f = rclpy_factory()
    streams: list[Stream] = []

    def add(name, topic, msgtype, rate, msgs, counts="", **patch_fmts):
        raws = [bytes(serialize_message(m)) for m in (msgs if isinstance(msgs, list) else [msgs])]
        patches = {k: (_offset(raws[0], SENTINEL64 if fmt == "<Q" else SENTINEL32, fmt), fmt)
                   for k, fmt in patch_fmts.items()}
        assert all(len(r) == len(raws[0]) for r in raws)
        streams.append(Stream(name, topic, msgtype, rate, raws, patches, counts))

    # The generator's shelf events all come from the first board and its gate events from the
    # first gate: those two sources' watermarks carry the event counts, the others' zero.

    rng = np.random.default_rng(7)
    board_ids = sorted(store.boards)[:boards]
    for b in board_ids:
        n = len(store.board_plates(b))
        level = rng.uniform(0, 3000, n).astype(np.float32)
        stamps = np.arange(rates.samples, dtype=np.int64) * 16_666_667
        blocks = [PlateBlock(b, SENTINEL32, stamps + k * 100_000_000,
                             level + rng.normal(0, 0.7, (rates.samples, n)).astype(np.float32), np.zeros(n, np.uint8))
                  for k in range(VARIANTS)]
        add(b, topics.PLATE_WEIGHTS, topics.TYPES[topics.PLATE_WEIGHTS], rates.block_hz,
            [block_to_msg(f, block, f"{b}_link") for block in blocks], first_seq="<I")
        add(f"{b}/watermark", topics.SHELF_WATERMARK, topics.TYPES[topics.SHELF_WATERMARK], rates.block_hz,
            watermark_to_msg(f, b, 0, SENTINEL64), counts="shelf_events" if b == board_ids[0] else "",
            items_published="<Q")
    if rates.shelf_events_hz > 0 and board_ids:
        cands = [Candidate("GR-0001", "Oat milk 1 l", 1, 1040.0, 0.93),
                 Candidate("GR-0002", "Soy milk 1 l", 1, 1030.0, 0.07)]
        ev = ShelfEvent("G1S1-0", 0, 0, board_ids[0].removeprefix("scale_"), "G1S1", ["G1S1P1"], [-1040.0],
                        -1040.0, 1.1, PICK, cands)
        add("shelf_events", topics.SHELF_EVENTS, topics.TYPES[topics.SHELF_EVENTS], rates.shelf_events_hz,
            shelf_event_to_msg(f, ev))
    def frame(cam):
        dets = []
        for x, y in rng.random((rates.detections, 2)) * 10:
            hist = rng.random(APPEARANCE_DIM).astype(np.float32)
            dets.append(Detection(float(x), float(y), 0.0, tuple(np.diag(rng.uniform(0.01, 0.05, 3)).ravel()),
                                  float(rng.uniform(0.5, 1.0)), hist / hist.sum()))
        return detections_to_msg(f, cam, 0, dets)
    for cam in sorted(store.cameras, key=lambda c: int(c.removeprefix("cam")) if c[3:].isdigit() else 0)[:cameras]:
        add(cam, topics.camera_topic(cam), topics.DETECTIONS_TYPE, rates.camera_hz,
            [frame(cam) for _ in range(VARIANTS)])
    gate_ids = sorted(store.gates)
    if rates.gate_events_hz > 0 and gate_ids:
        add("gate_events", topics.GATE_EVENTS, topics.TYPES[topics.GATE_EVENTS], rates.gate_events_hz,
            gate_event_to_msg(f, GateEvent(0, gate_ids[0], 0, "s-0123456789ab", "f" * 32, 1, False, 1)))
    for g in gate_ids:
        add(f"{g}/watermark", topics.GATE_WATERMARK, topics.TYPES[topics.GATE_WATERMARK], rates.gate_watermark_hz,
            watermark_to_msg(f, g, 0, SENTINEL64), counts="gate_events" if g == gate_ids[0] else "",
            items_published="<Q")
    if rates.receipts_hz > 0:
        lines = [ReceiptLine(f"GR-{i:04d}", f"product {i}", 1, 2.5, 0.97, [f"G1S1-{i}"]) for i in range(3)]
        add("receipts", topics.RECEIPTS_LIVE, topics.TYPES[topics.RECEIPTS_LIVE], rates.receipts_hz,
            receipt_to_msg(f, Receipt("s-0123456789ab", 0, 0, "", 1, lines, 7.5, "USD", 0.97)))
    return streams


def _qos_for(topic: str):
    from storefuse_core import topics
    from storefuse_nodes.common import DURABLE_EVENTS_QOS, EVENTS_QOS, WEIGHTS_QOS
    if topic == topics.PLATE_WEIGHTS:
        return WEIGHTS_QOS
    return DURABLE_EVENTS_QOS if topic in (topics.GATE_EVENTS, topics.SHELF_EVENTS) else EVENTS_QOS


def run(streams: list[Stream], seconds: float, samples: int, wait_subscribers: int = 1,
        wait_s: float = 60.0) -> dict:
    """Publish every stream at its rate for `seconds`; publisher-side counts."""
    import rclpy
    from rclpy.duration import Duration
    rclpy.init()
    node = rclpy.create_node("storefuse_loadgen")
    try:
        pubs = {}
        for s in streams:
            if s.topic not in pubs:
                from storefuse_nodes.msgtypes import message_class
                pubs[s.topic] = node.create_publisher(message_class(s.msgtype), s.topic, _qos_for(s.topic))
        deadline = time.monotonic() + wait_s
        while any(p.get_subscription_count() < wait_subscribers for p in pubs.values()):
            if time.monotonic() > deadline:
                missing = [t for t, p in pubs.items() if p.get_subscription_count() < wait_subscribers]
                raise SystemExit(f"loadgen: no subscriber on {missing[:3]} after {wait_s:.0f} s")
            rclpy.spin_once(node, timeout_sec=0.05)
        buffers = [[bytearray(t) for t in s.templates] for s in streams]
        print("publishing", flush=True)       # benchmarks start their clocks here
        by_name = {s.name: s for s in streams}
        heap = [(0.0, i) for i in range(len(streams))]
        heapq.heapify(heap)
        start = time.monotonic()
        late = 0.0
        while heap:
            due, i = heap[0]
            now = time.monotonic() - start
            if due > now:
                time.sleep(min(due - now, 0.005))
                continue
            heapq.heappop(heap)
            late = max(late, now - due)
            s = streams[i]
            buf = buffers[i][s.sent % len(s.templates)]
            struct.pack_into("<iI", buf, 4, s.sent, i)
            if "first_seq" in s.patches:
                struct.pack_into("<I", buf, s.patches["first_seq"][0], s.sent * samples)
            if "items_published" in s.patches:
                events = by_name.get(s.counts)
                struct.pack_into("<Q", buf, s.patches["items_published"][0], events.sent if events else 0)
            pubs[s.topic].publish(bytes(buf))
            s.sent += 1
            if due + 1.0 / s.rate_hz < seconds:
                heapq.heappush(heap, (due + 1.0 / s.rate_hz, i))
        elapsed = time.monotonic() - start
        unacked = [t for t, p in pubs.items() if not p.wait_for_all_acked(Duration(seconds=30))]
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return {"seconds": round(elapsed, 3), "max_late_s": round(late, 4), "published": sum(s.sent for s in streams),
            "streams": {s.name: {"index": i, "topic": s.topic, "sent": s.sent, "bytes": len(s.templates[0])}
                        for i, s in enumerate(streams)},
            "unacked_topics": unacked}


def count_bag(bag: Path, published: dict) -> dict:
    """Per stream: messages the bag holds, distinct sequence numbers, and which are missing."""
    from storefuse_core.bag import read_bag
    from storefuse_core.recording import peek_header
    by_index = {v["index"]: name for name, v in published["streams"].items()}
    seen: dict[str, set[int]] = {name: set() for name in published["streams"]}
    held = dict.fromkeys(published["streams"], 0)
    topics = sorted({v["topic"] for v in published["streams"].values()})
    for m in read_bag(bag, topics, decode=False):
        seq, idx, _ = peek_header(m.raw)
        name = by_index.get(idx)
        if name is not None and published["streams"][name]["topic"] == m.topic:
            seen[name].add(seq)
            held[name] += 1
    out = {}
    for name, v in published["streams"].items():
        missing = v["sent"] - len(seen[name] & set(range(v["sent"])))
        out[name] = {"sent": v["sent"], "recorded": held[name], "missing": missing,
                     "duplicates": held[name] - len(seen[name])}
    return out


def main(argv: list[str] | None = None) -> int:
    from storefuse_core.layout import load_store
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", default="grocery")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--boards", type=int, default=None, help="only the first N scale boards")
    ap.add_argument("--cameras", type=int, default=None, help="only the first N cameras")
    ap.add_argument("--detections", type=int, default=Rates.detections, help="detections per camera frame")
    ap.add_argument("--scale", type=float, default=1.0, help="every rate times this (headroom tests)")
    ap.add_argument("--json", type=Path, help="write the publisher-side counts here")
    args = ap.parse_args(argv)
    base = Rates(detections=args.detections)
    rates = Rates(**{k: (v * args.scale if k.endswith("_hz") else v) for k, v in base.__dict__.items()})
    streams = build_streams(load_store(args.store), rates, args.boards, args.cameras)
    result = run(streams, args.seconds, rates.samples)
    result["rates"] = rates.__dict__
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: result[k] for k in ("seconds", "published", "max_late_s", "unacked_topics")}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
