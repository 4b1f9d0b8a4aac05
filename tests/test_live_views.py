"""The vision tie-breaker live: the simulated cameras publish what they saw in hands (ProductViews),
the receipt node, its own process over DDS, weighs them in; the recorded bag replays to the same
receipts, and without the views the same bag gives the wrong ones."""
from __future__ import annotations

import pytest

from storefuse_core.evaluation import match
from storefuse_core.replay import replay_bag

from sftest import ROOT, live_run_of

SCENARIO = ROOT / "scenarios" / "minimart_seen_in_hand.yaml"
pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def live_run(tmp_path_factory):
    return live_run_of(SCENARIO, tmp_path_factory.mktemp("views"), 100)


def _lines(receipt) -> list:
    return sorted((ln["sku"], ln["qty"]) for ln in receipt["lines"]) if receipt else []


def _exact(gt, finals) -> dict:
    pairs, _ = match(gt, finals)
    return {v["visit_id"]: _lines(r) == sorted((ln["sku"], ln["qty"]) for ln in v["lines"]) for v, r in pairs}


def test_every_node_ran_and_the_receipts_are_right(live_run):
    assert not live_run.timed_out and live_run.sim_status.get("state") == "done"
    assert all(code == 0 for code in live_run.exited.values()), live_run.exited
    # dora put the KitKat back onto the Reese's plate and handed her Red Bull to eli
    assert _exact(live_run.ground_truth, live_run.finals) == {"dora": True, "eli": True}


def test_the_views_were_recorded_and_replay_to_the_same_receipts(live_run):
    result = replay_bag(live_run.bag)
    assert result.finals_json() == live_run.finals
    kinds = {(key.split("/")[0], bool(body.get("views"))) for key, _, _, _, body in result.ledger_rows}
    assert ("window", True) in kinds           # a change re-weighed by what a camera saw in the hand
    assert ("hand_over", True) in kinds        # the Red Bull seen passing from dora to eli


def test_without_the_views_the_same_bag_bills_the_wrong_items(live_run):
    blind = replay_bag(live_run.bag, product_views=False).finals_json()
    assert _exact(live_run.ground_truth, blind) == {"dora": False, "eli": False}
