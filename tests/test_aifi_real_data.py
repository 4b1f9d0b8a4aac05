"""Real AiFi AutoCheckout shelf data (never committed; found beside the project or through
STOREFUSE_AIFI_DIR): the import yields a bag on which the unchanged detector finds exactly the two
labelled picks, with the right products, and nothing else on 348 plates."""
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
