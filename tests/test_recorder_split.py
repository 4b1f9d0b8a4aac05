"""A bag split into several files (and zstd-compressed) replays to the very same receipts."""
from __future__ import annotations

import pytest

from storefuse_core.bag import bag_files, copy_bag, read_bag
from storefuse_core.replay import replay_bag
from storefuse_core.simulation.offline import run_offline
from storefuse_core.simulation.scenario import load_scenario

from sftest import ROOT

COMMITTED = ROOT / "bags" / "minimart_two_shoppers"


@pytest.fixture(scope="module")
def sim_bag(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    run_offline(load_scenario(ROOT / "scenarios" / "minimart_groups.yaml"), out)
    return out / "bag"


@pytest.mark.parametrize("split", [{"split_bytes": 400_000}, {"split_s": 7.0}], ids=["by-size", "by-duration"])
@pytest.mark.parametrize("which", ["committed", "simulated"])
def test_split_bag_replays_to_the_same_receipts(which, split, sim_bag, tmp_path):
    src = COMMITTED if which == "committed" else sim_bag
    dst = tmp_path / "split"
    copy_bag(src, dst, compression="zstd", **split)
    assert len(bag_files(dst)) >= 3
    whole, parts = replay_bag(src), replay_bag(dst)
    assert whole.finals_json(), "the bag must give receipts for the comparison to mean anything"
    assert parts.finals_json() == whole.finals_json()
    assert [r.as_json() for r in parts.receipts] == [r.as_json() for r in whole.receipts]   # live ones too
    assert [e.event_id for e in parts.shelf_events] == [e.event_id for e in whole.shelf_events]
    assert parts.messages == whole.messages
    assert [(m.topic, m.log_ns) for m in read_bag(dst, decode=False)] == \
        [(m.topic, m.log_ns) for m in read_bag(src, decode=False)]
