"""The whole graph, each node its own process over DDS, on the simulated minimart."""
from __future__ import annotations

import pytest
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore

from storefuse_core.evaluation import match
from storefuse_core.replay import replay_bag

from sftest import ROOT, live_run_of

SCENARIO = ROOT / "scenarios" / "minimart_two_shoppers.yaml"
pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def live_run(tmp_path_factory):
    return live_run_of(SCENARIO, tmp_path_factory.mktemp("live"), 150)


def test_every_node_ran_and_stopped_cleanly(live_run):
    assert not live_run.timed_out
    assert live_run.sim_status.get("state") == "done"
    assert live_run.sim_status.get("dropped") == 0
    assert set(live_run.exited) >= {"receipt", "store_sim", "recorder", "scale_G1", "gate_entry_1_reader"}
    assert all(code == 0 for code in live_run.exited.values()), live_run.exited


def test_final_receipts_equal_ground_truth_exactly(live_run):
    gt = live_run.ground_truth
    assert len(gt["visits"]) == 2
    pairs, extra = match(gt, live_run.finals)
    assert extra == []
    for visit, receipt in pairs:
        assert receipt is not None, f"no final receipt for {visit['visit_id']}"
        assert receipt["status"] == "FINAL"
        got = sorted((ln["sku"], ln["name"], ln["qty"]) for ln in receipt["lines"])
        want = sorted((ln["sku"], ln["name"], ln["qty"]) for ln in visit["lines"])
        assert got == want, visit["visit_id"]


def test_offline_replay_of_the_live_bag_gives_identical_receipts(live_run):
    result = replay_bag(live_run.bag)
    assert result.finals_json() == live_run.finals
    assert [r.as_json() for r in result.recorded_finals] == live_run.finals


def test_bag_decodes_with_embedded_definitions_only(live_run):
    """A reader that knows nothing of storefuse (stock Kilted types) decodes every message."""
    counts = {}
    with AnyReader([live_run.bag], default_typestore=get_typestore(Stores.ROS2_KILTED)) as reader:
        for conn, _, raw in reader.messages():
            msg = reader.deserialize(raw, conn.msgtype)
            counts[conn.msgtype] = counts.get(conn.msgtype, 0) + 1
            if conn.msgtype.endswith("/Receipt"):
                assert msg.session_id.startswith("s-")
    assert counts["storefuse_interfaces/msg/PlateWeights"] > 100
    assert counts["storefuse_interfaces/msg/GateEvent"] >= 4
    assert counts["storefuse_interfaces/msg/Receipt"] >= 4
