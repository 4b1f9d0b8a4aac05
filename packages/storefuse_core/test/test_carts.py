"""Smart carts in the simulator: what the cart's computer reports, and its ground truth."""
from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest

from storefuse_core.bag import read_bag
from storefuse_core.simulation.offline import run_offline
from storefuse_core.simulation.scenario import load_scenario

SCENARIO = Path(__file__).resolve().parents[3] / "scenarios" / "minimart_smart_carts.yaml"
CROWD = Path(__file__).resolve().parents[3] / "bench" / "scenarios" / "minimart_cart_crowd.yaml"


@pytest.fixture(scope="module")
def cart_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("carts")
    gt = run_offline(load_scenario(SCENARIO), out)
    msgs = list(read_bag(out / "bag"))
    return gt, msgs, out / "bag"


def test_every_pick_is_scanned_and_weighed_into_the_cart(cart_run):
    gt, msgs, _ = cart_run
    truth = [e for e in gt["events"] if e["shopper"] == "erin" and e["kind"] in ("pick", "put")]
    events = [m.msg for m in msgs if m.topic == "/store/carts/cart_1/events"]
    scans = [e.barcode for e in events if e.kind == 0]
    weights = [e.delta_grams for e in events if e.kind == 1]
    assert scans == [e["sku"] for e in truth if e["kind"] == "pick"]
    want = [e["grams"] if e["kind"] == "pick" else -e["grams"] for e in truth]
    assert len(weights) == len(want)
    for got, true in zip(weights, want):
        assert abs(got - true) < 10.0            # cart scale noise sd 2 g
    assert [e.seq for e in events] == list(range(1, len(events) + 1))


def test_uwb_ranges_match_the_true_cart_position_except_multipath(cart_run):
    gt, msgs, _ = cart_run
    uwb = [m.msg for m in msgs if m.topic == "/store/carts/cart_1/uwb"]
    assert len(uwb) > 100
    assert all(list(m.anchor_ids) == ["uwb_1", "uwb_2", "uwb_3", "uwb_4"] for m in uwb)
    ranges = [r for m in uwb for r in m.ranges_m]
    assert all(0.0 < r < 16.0 for r in ranges)            # the minimart is 12 x 8 m


def test_odometry_starts_at_the_origin_and_moves(cart_run):
    _, msgs, _ = cart_run
    odom = [m.msg for m in msgs if m.topic == "/store/carts/cart_2/odom"]
    assert odom[0].header.frame_id == "cart_2/odom" and odom[0].child_frame_id == "cart_2/base_link"
    first = odom[0].pose.pose.position
    assert math.hypot(first.x, first.y) < 0.2
    farthest = max(math.hypot(m.pose.pose.position.x, m.pose.pose.position.y) for m in odom)
    assert farthest > 2.0                                  # finn walks to the ketchup, metres away


def test_carts_are_in_the_ground_truth_and_the_bag(cart_run):
    gt, msgs, _ = cart_run
    assert set(gt["carts"]) == {"cart_1", "cart_2"} and gt["carts"]["cart_2"]["shopper"] == "finn"
    topics = Counter(m.topic for m in msgs)
    for cart in ("cart_1", "cart_2"):
        for leaf in ("uwb", "odom", "events"):
            assert topics[f"/store/carts/{cart}/{leaf}"] > 0


def test_the_carts_word_multiplies_the_cameras_call_on_the_full_window(tmp_path):
    # two cart shoppers and one without a cart take from one spot within seconds: a pick is billed
    # when fusion reaches its start and decided again on its whole window (ReceiptBook.recheck); the
    # carts' verdict, later, must weigh that second call's shares, not the first's
    from storefuse_core.cart_shopper import CartShopperParams
    from storefuse_core.replay import replay_bag
    run_offline(load_scenario(CROWD), tmp_path)
    rows = {key: (session, body) for key, session, _, _, body in replay_bag(tmp_path / "bag").ledger_rows}
    slip = CartShopperParams().camera_slip
    checked = 0
    for key, (_, cart) in sorted(rows.items()):
        if not key.startswith("cart/") or "window/" + key[len("cart/"):] not in rows:
            continue
        payer, window = rows["window/" + key[len("cart/"):]]
        shares = dict(window.get("others") or {}, **{payer: window["attribution"]})
        raw = {k: (shares.get(k, 0.0) + slip) * f for k, f in cart["cart"]["factors"].items()}
        assert cart["attribution"] == pytest.approx(max(raw.values()) / sum(raw.values()), abs=0.01)
        checked += 1
    assert checked >= 1
