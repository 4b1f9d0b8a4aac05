"""Real AiFi AutoCheckout shelf data (never committed; found beside the project or through
STOREFUSE_AIFI_DIR): the import yields a bag on which the unchanged detector finds exactly the two
labelled picks, with the right products, and nothing else on 348 plates; with `--videos detections`
the four camera videos' detections go in beside them and the receipt is the same."""
from __future__ import annotations

import datetime
import json
import os
import subprocess
from pathlib import Path

import pytest

from storefuse_core.replay import replay_bag

from sftest import ROOT

DATA = Path(os.environ.get("STOREFUSE_AIFI_DIR", ROOT.parent / "shared" / "datasets" / "aifi-autocheckout-test1"))
pytestmark = pytest.mark.skipif(not (DATA / "plates").is_dir(),
                                reason=f"AiFi dataset not found at {DATA} (set STOREFUSE_AIFI_DIR)")
LABELS = [("G2S5", "Taco Bell Fire", "22:24:15"), ("G1S5", "FIJI WATER .5 LTR", "22:24:21")]


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    out = tmp_path_factory.mktemp("aifi") / "bag"
    subprocess.run(["storefuse", "import-aifi", str(DATA), "--out", str(out)], check=True, capture_output=True,
                   timeout=300)
    return out


@pytest.fixture(scope="module")
def detections_bag(tmp_path_factory):
    if not (DATA / "videos").is_dir():
        pytest.skip(f"AiFi videos not found at {DATA / 'videos'}")
    out = tmp_path_factory.mktemp("aifi-videos") / "bag"
    subprocess.run(["storefuse", "import-aifi", str(DATA), "--out", str(out), "--videos", "detections"], check=True,
                   capture_output=True, timeout=600)
    return out


def _final(bag_dir: Path) -> dict:
    out = subprocess.run(["storefuse", "replay", str(bag_dir), "--json"], check=True, capture_output=True, text=True,
                         timeout=300).stdout.strip().splitlines()[-1]
    finals = json.loads(out)
    assert len(finals) == 1, finals
    return finals[0]


def test_exactly_the_two_labelled_events(bag):
    result = replay_bag(bag)
    events = sorted(result.shelf_events, key=lambda e: e.start_ns)
    assert len(events) == 2, [(e.shelf_id, e.delta_grams) for e in events]
    for ev, (shelf, name, hhmmss) in zip(events, LABELS):
        label = datetime.datetime.strptime(f"2020-01-28 {hhmmss}", "%Y-%m-%d %H:%M:%S").replace(
            tzinfo=datetime.timezone.utc).timestamp()
        assert ev.shelf_id == shelf and ev.kind == 0
        assert abs(ev.start_ns / 1e9 - label) <= 2.0
        assert ev.candidates[0].name == name and ev.candidates[0].qty == 1


def test_replay_prints_one_end_of_bag_receipt_with_those_lines(bag):
    out = subprocess.run(["storefuse", "replay", str(bag), "--json"], check=True, capture_output=True, text=True,
                         timeout=300).stdout.strip().splitlines()[-1]
    finals = json.loads(out)
    assert len(finals) == 1
    assert "end_of_bag" in finals[0]["status_reason"]
    assert sorted((ln["name"], ln["qty"]) for ln in finals[0]["lines"]) == [("FIJI WATER .5 LTR", 1),
                                                                             ("Taco Bell Fire", 1)]


def test_detections_bag_has_one_message_per_video_frame_in_stamp_order(detections_bag):
    import cv2
    from rosbags.highlevel import AnyReader

    from storefuse_core import topics
    from storefuse_core.aifi import VIDEO_CAMERAS
    from storefuse_core.bag import read_bag

    first_plate_ns = next(read_bag(detections_bag, [topics.PLATE_WEIGHTS])).log_ns
    # No typestore given: the storefuse types must come from the definitions embedded in the bag.
    with AnyReader([detections_bag]) as reader:
        conns = {c.topic: c for c in reader.connections if c.topic.startswith(f"{topics.NS}/cameras/")}
        assert sorted(conns) == sorted(topics.camera_topic(c) for c in VIDEO_CAMERAS)
        people = 0
        for cid in VIDEO_CAMERAS:
            cap = cv2.VideoCapture(str(DATA / "videos" / f"{cid}.mp4"))
            frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            cap.release()
            conn = conns[topics.camera_topic(cid)]
            assert conn.msgtype == topics.DETECTIONS_TYPE
            msgs = [(log_ns, reader.deserialize(raw, conn.msgtype)) for _, log_ns, raw in reader.messages([conn])]
            assert 338 <= len(msgs) == frames <= 339, (cid, len(msgs), frames)
            stamps = [m.header.stamp.sec * 1_000_000_000 + m.header.stamp.nanosec for _, m in msgs]
            assert stamps == [log_ns for log_ns, _ in msgs]
            assert stamps[0] == first_plate_ns      # the videos start with the plates (README: same span)
            assert all(b - a == 100_000_000 for a, b in zip(stamps, stamps[1:])), cid     # 10 fps
            assert {m.camera_id for _, m in msgs} == {cid}
            people += sum(len(m.detections) for _, m in msgs)
        assert people > 0          # the detector saw the shopper somewhere


def test_detections_bag_replays_to_the_plates_only_receipt(bag, detections_bag):
    with_cameras, plates_only = _final(detections_bag), _final(bag)
    assert "end_of_bag" in with_cameras["status_reason"]
    assert (with_cameras["status"], with_cameras["status_reason"]) == (plates_only["status"],
                                                                       plates_only["status_reason"])
    assert [(ln["name"], ln["qty"], ln["sku"]) for ln in with_cameras["lines"]] == \
        [(ln["name"], ln["qty"], ln["sku"]) for ln in plates_only["lines"]]
    assert sorted(ln["name"] for ln in with_cameras["lines"]) == ["FIJI WATER .5 LTR", "Taco Bell Fire"]
    # ... and the detections did reach the tracker (the receipt is not the same merely because they were ignored)
    assert any(tracks for _, tracks in replay_bag(detections_bag).track_frames)
