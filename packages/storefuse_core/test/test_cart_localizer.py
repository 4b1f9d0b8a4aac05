"""Smart-cart localisation (UWB + odometry EKF) and the cart basket, without ROS."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from storefuse_core.bag import read_bag
from storefuse_core.calibration import load_calibration
from storefuse_core.cart import (
    CartBasket,
    CartLocalizer,
    CartParams,
    between,
    cart_of,
    compose,
    localize_messages,
    multilaterate,
    store_anchors,
    wrap,
)
from storefuse_core.simulation.offline import run_offline
from storefuse_core.simulation.scenario import load_scenario
from storefuse_core.simulation.world import T0_NS, World

SCENARIO = Path(__file__).resolve().parents[3] / "scenarios" / "minimart_smart_carts.yaml"
ANCHORS = {"uwb_1": (0.2, 0.2, 2.5), "uwb_2": (11.8, 0.2, 2.5), "uwb_3": (11.8, 7.8, 2.5), "uwb_4": (0.2, 7.8, 2.5)}
S = 1_000_000_000


def trajectory(seconds: float = 14.0, hz: float = 20.0):
    """A cart that pauses, drives east at 0.9 m/s, turns left and drives north: (t_ns, x, y, yaw)."""
    out, x, y, yaw = [], 2.0, 2.0, 0.3
    for k in range(int(seconds * hz) + 1):
        t = k / hz
        if k:
            v = 0.0 if t < 1.0 else 0.9
            w = 0.6 if 6.0 <= t < 8.6 else 0.0
            yaw += w / hz
            x += v / hz * math.cos(yaw)
            y += v / hz * math.sin(yaw)
        out.append((T0_NS + int(round(t * S)), x, y, yaw))
    return out


def sensors(traj, seed=3, outlier_every=0, outlier_m=1.2, scale=1.02, gyro_bias=0.002):
    """Odometry at every trajectory sample (scale error, gyro bias) and UWB rounds every other one."""
    rng = np.random.default_rng(seed)
    msgs, odom, prev = [], [0.0, 0.0, 0.0], None
    injected = set()
    for k, (t, x, y, yaw) in enumerate(traj):
        if prev is not None:
            inc = between(prev[1:], (x, y, yaw))
            d = math.hypot(inc[0], inc[1]) * scale
            odom[2] = wrap(odom[2] + inc[2] + gyro_bias * 0.05)
            odom[0] += d * math.cos(odom[2])
            odom[1] += d * math.sin(odom[2])
        prev = (t, x, y, yaw)
        msgs.append(("odom", t, tuple(odom)))
        if k % 2 == 0:
            ids, ranges, q = [], [], []
            for j, (aid, (ax, ay, az)) in enumerate(sorted(ANCHORS.items())):
                r = math.sqrt((ax - x) ** 2 + (ay - y) ** 2 + (az - 1.0) ** 2) + rng.normal(0.0, 0.08)
                if outlier_every and (k // 2) % outlier_every == 0 and j == (k // 2) % 4:
                    r += outlier_m
                    injected.add((t, aid))
                ids.append(aid)
                ranges.append(r)
                q.append(1.0)
            msgs.append(("uwb", t, (ids, ranges, q)))
    return msgs, injected


def feed(loc: CartLocalizer, msgs):
    out = []
    for kind, t, data in msgs:
        out += loc.add_odom(t, *data) if kind == "odom" else loc.add_uwb(t, *data)
    return out + loc.flush()


def truth_at(traj):
    return {t: (x, y, yaw) for t, x, y, yaw in traj}


def pos_errors(poses, truth, source="uwb"):
    return np.array([math.hypot(p.x - truth[p.stamp_ns][0], p.y - truth[p.stamp_ns][1])
                     for p in poses if p.source == source])


# ---- multilateration -----------------------------------------------------------------------------
def test_multilateration_recovers_the_position_and_leaves_out_a_long_range():
    anchors = np.array(list(ANCHORS.values()) + [(6.0, 0.2, 2.5)])
    x, y = 4.2, 3.1
    ranges = [math.sqrt((ax - x) ** 2 + (ay - y) ** 2 + (az - 1.0) ** 2) for ax, ay, az in anchors]
    fix = multilaterate(anchors, ranges)
    assert math.hypot(fix.x - x, fix.y - y) < 1e-6 and fix.used == [0, 1, 2, 3, 4]
    ranges[2] += 1.5                                        # multipath: one range too long
    fix = multilaterate(anchors, ranges)
    assert fix.used == [0, 1, 3, 4]
    assert math.hypot(fix.x - x, fix.y - y) < 1e-6
    naive = multilaterate(anchors, ranges, robust=False)
    assert math.hypot(naive.x - x, naive.y - y) > 0.2


def test_multilateration_needs_three_anchors_off_a_line():
    assert multilaterate(np.array(list(ANCHORS.values())[:2]), [5.0, 6.0]) is None
    line = np.array([(0.0, 0.0, 2.5), (5.0, 0.0, 2.5), (10.0, 0.0, 2.5)])
    assert multilaterate(line, [5.0, 3.0, 6.0]) is None


# ---- the EKF -------------------------------------------------------------------------------------
def test_converges_from_multilateration_and_aligns_the_heading():
    traj = trajectory()
    msgs, _ = sensors(traj)
    loc = CartLocalizer(ANCHORS)
    poses = feed(loc, msgs)
    truth = truth_at(traj)
    first = next(p for p in poses if p.source == "uwb")
    assert first.stamp_ns == traj[0][0]                      # started from the first round
    assert math.hypot(first.x - 2.0, first.y - 2.0) < 0.3
    assert not first.yaw_known and first.cov[2, 2] > 9.0 and first.map_to_odom is None
    aligned = [p for p in poses if p.yaw_known]
    assert aligned and aligned[0].stamp_ns < T0_NS + 4 * S    # after ~1 m of driving
    assert max(abs(wrap(p.yaw - truth[p.stamp_ns][2])) for p in aligned if p.source == "uwb") < 0.15
    late = [p for p in poses if p.stamp_ns > T0_NS + 4 * S]
    err = pos_errors(late, truth)
    assert np.sqrt(np.mean(err ** 2)) < 0.08
    assert np.sqrt(np.mean(pos_errors(late, truth, "odom") ** 2)) < 0.1     # predictions between rounds too
    sd = np.sqrt([p.cov[0, 0] for p in late if p.source == "uwb"])
    assert 0.01 < np.median(sd) < 0.1                        # the covariance is about the size of the error
    assert loc.stats.ranges_rejected <= 3 and loc.stats.reinits == 0


def test_map_to_odom_composes_with_odometry_into_the_pose():
    traj = trajectory()
    msgs, _ = sensors(traj)
    loc = CartLocalizer(ANCHORS)
    odom = {t: d for kind, t, d in msgs if kind == "odom"}
    for p in feed(loc, msgs):
        if p.map_to_odom is not None:
            x, y, yaw = compose(p.map_to_odom, odom[p.stamp_ns])
            assert abs(x - p.x) < 1e-9 and abs(y - p.y) < 1e-9 and abs(wrap(yaw - p.yaw)) < 1e-9


def test_rejects_injected_multipath_and_beats_the_filter_without_rejection():
    traj = trajectory()
    msgs, injected = sensors(traj, outlier_every=3)
    truth = truth_at(traj)
    gated = CartLocalizer(ANCHORS)
    poses = feed(gated, msgs)
    flagged = {(p.stamp_ns, a) for p in poses for a in p.rejected_ids}
    assert len(injected) > 30
    assert len(injected & flagged) >= 0.9 * len(injected)
    assert len(flagged - injected) <= 3
    assert gated.stats.ranges_rejected == len(flagged)
    open_ = CartLocalizer(ANCHORS, CartParams(gate_chi2=0.0))
    loose = feed(open_, msgs)
    assert open_.stats.ranges_rejected == 0
    rmse = np.sqrt(np.mean(pos_errors(poses, truth) ** 2))
    rmse_open = np.sqrt(np.mean(pos_errors(loose, truth) ** 2))
    assert rmse < 0.08 and rmse_open > 2 * rmse


def test_a_lost_filter_restarts_from_multilateration():
    traj = trajectory()
    msgs, _ = sensors(traj)
    loc = CartLocalizer(ANCHORS)
    cut = len(msgs) // 2
    feed(loc, msgs[:cut])
    loc.ekf.x[0, 0] += 3.0                                   # kidnapped: the filter is 3 m off, and sure of it
    poses = feed(loc, msgs[cut:])
    assert loc.stats.reinits >= 1
    truth = truth_at(traj)
    assert pos_errors(poses, truth)[-20:].max() < 0.2


def _delay(msgs, kind: str, by_ns: int):
    """Deliver one stream late: each of its messages after the other stream's messages up to by_ns later."""
    out, held = [], []
    for m in msgs:
        if m[0] == kind:
            held.append(m)
            continue
        out.append(m)
        while held and m[1] - held[0][1] >= by_ns:
            out.append(held.pop(0))
    return out + held


def test_arrival_order_does_not_change_the_result():
    traj = trajectory()
    msgs, _ = sensors(traj, outlier_every=4)
    in_order = [p.as_dict() for p in feed(CartLocalizer(ANCHORS), msgs)]
    assert [p.as_dict() for p in feed(CartLocalizer(ANCHORS), msgs)] == in_order     # deterministic
    for kind, by in (("uwb", 0.15), ("odom", 0.2)):       # one topic's delivery lags (within reorder_wait_s)
        late = _delay(msgs, kind, int(by * S))
        assert late != msgs and sorted(late, key=lambda m: (m[1], m[0])) == sorted(msgs, key=lambda m: (m[1], m[0]))
        assert [p.as_dict() for p in feed(CartLocalizer(ANCHORS), late)] == in_order, kind


def test_a_silent_odometry_holds_rounds_only_for_the_bounded_wait():
    traj = trajectory()
    msgs, _ = sensors(traj)
    loc = CartLocalizer(ANCHORS)                              # reorder_wait_s = 0.25 on the arrival clock
    now = 5 * S
    t, data = next((t, d) for k, t, d in msgs if k == "uwb")
    assert loc.add_uwb(t, *data, now_ns=now) == []             # waits for odometry to reach its stamp
    assert loc.poll(now + S // 5) == []
    released = loc.poll(now + S // 2)
    assert [p.source for p in released] == ["uwb"] and released[0].stamp_ns == t
    # Odometry that reaches the stamp releases it at once.
    loc = CartLocalizer(ANCHORS)
    assert loc.add_uwb(t, *data, now_ns=now) == []
    assert [p.source for p in loc.add_odom(t, 0.0, 0.0, 0.0, now_ns=now)] == ["uwb"]


def test_uwb_alone_still_localizes_and_odometry_alone_gives_nothing():
    traj = trajectory()
    msgs, _ = sensors(traj)
    uwb_only = CartLocalizer(ANCHORS)
    poses = feed(uwb_only, [m for m in msgs if m[0] == "uwb"])
    assert len(poses) == len([m for m in msgs if m[0] == "uwb"])
    assert np.sqrt(np.mean(pos_errors(poses, truth_at(traj)) ** 2)) < 0.15
    assert not uwb_only.stats.yaw_known
    odom_only = CartLocalizer(ANCHORS)
    assert feed(odom_only, [m for m in msgs if m[0] == "odom"]) == []


def test_restarted_odometry_and_a_long_gap_are_handled():
    traj = trajectory()
    msgs, _ = sensors(traj)
    jumped = [(k, t, (d[0] + 5.0, d[1], d[2]) if k == "odom" and t > T0_NS + 7 * S else d) for k, t, d in msgs]
    loc = CartLocalizer(ANCHORS)
    poses = feed(loc, jumped)
    assert loc.stats.odom_resets == 1
    assert np.sqrt(np.mean(pos_errors(poses, truth_at(traj)) ** 2)) < 0.1
    gap = [m for m in msgs if not (T0_NS + 5 * S < m[1] < T0_NS + 11 * S)]
    loc = CartLocalizer(ANCHORS)
    poses = feed(loc, gap)
    after = [p for p in poses if p.stamp_ns >= T0_NS + 11 * S]
    assert after[0].source == "uwb" and not after[0].yaw_known              # started over
    assert pos_errors(after, truth_at(traj)).max() < 0.3


def test_params_from_dict_rejects_unknown_names():
    assert CartParams.from_dict({"gate_chi2": "4"}).gate_chi2 == 4.0
    with pytest.raises(ValueError, match="gate_chi"):
        CartParams.from_dict({"gate_chi": 4.0})


# ---- the simulated store -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sim_run(tmp_path_factory):
    scenario = load_scenario(SCENARIO)
    out = tmp_path_factory.mktemp("cartloc")
    run_offline(scenario, out)
    msgs = [m for m in read_bag(out / "bag") if cart_of(m.topic)]
    world = World(scenario, load_calibration(scenario.store.root / "calibration.yaml"))
    return scenario, world, msgs


def _sim_errors(world, poses):
    err = []
    for cart, ps in poses.items():
        for p in ps:
            tr = world.cart_pose(cart, (p.stamp_ns - T0_NS) / 1e9)
            if p.source == "uwb" and tr is not None:
                err.append(math.hypot(p.x - tr[0], p.y - tr[1]))
    return np.array(err)


def test_rmse_on_the_simulated_smart_cart_scenario(sim_run):
    scenario, world, msgs = sim_run
    anchors = store_anchors(scenario.store)
    poses, stats = localize_messages(msgs, anchors)
    assert set(poses) == {"cart_1", "cart_2"}
    err = _sim_errors(world, poses)
    assert len(err) > 300
    rmse = float(np.sqrt(np.mean(err ** 2)))
    assert rmse < 0.1, rmse                              # bench/cart_rmse.py: ~0.05 m
    assert np.percentile(err, 95) < 0.2
    rejected = sum(s.ranges_rejected for s in stats.values())
    ranges = sum(s.ranges for s in stats.values())
    assert 0.02 < rejected / ranges < 0.1                # the simulator's multipath rate is 5 %
    open_poses, _ = localize_messages(msgs, anchors, CartParams(gate_chi2=0.0))
    assert float(np.sqrt(np.mean(_sim_errors(world, open_poses) ** 2))) > 1.5 * rmse
    again, _ = localize_messages(msgs, anchors)
    assert [p.as_dict() for p in again["cart_1"]] == [p.as_dict() for p in poses["cart_1"]]


def test_pose_message_carries_the_covariance_in_map(sim_run):
    from rosbags.typesys import Stores, get_typestore

    from storefuse_core.cart import pose_to_msg
    from storefuse_core.convert import rosbags_factory
    scenario, _, msgs = sim_run
    poses, _ = localize_messages(msgs[:400], store_anchors(scenario.store))
    p = next(p for ps in poses.values() for p in ps if p.source == "uwb")
    ts = get_typestore(Stores.ROS2_KILTED)
    msg = pose_to_msg(rosbags_factory(ts), p)
    assert msg.header.frame_id == "map"
    assert msg.header.stamp.sec * S + msg.header.stamp.nanosec == p.stamp_ns
    cov = np.asarray(msg.pose.covariance).reshape(6, 6)
    assert cov[0, 0] == p.cov[0, 0] and cov[1, 5] == p.cov[1, 2] and cov[5, 5] == p.cov[2, 2]
    assert ts.serialize_cdr(msg, "geometry_msgs/msg/PoseWithCovarianceStamped")


# ---- the basket ----------------------------------------------------------------------------------
PRODUCTS = {"A": SimpleNamespace(name="Apple pack", grams=100.0, grams_sd=1.0),
            "B": SimpleNamespace(name="Bottle", grams=500.0, grams_sd=5.0),
            "C": SimpleNamespace(name="Candy bar", grams=55.0, grams_sd=1.0)}


def test_scan_then_matching_weight_puts_an_item_in_the_cart():
    b = CartBasket(PRODUCTS)
    assert b.scan(T0_NS, "B") is False                        # pending: nothing in the cart yet
    assert b.items == [] and [s for _, s in b.pending_scans] == ["B"]
    assert b.weight(T0_NS + S // 2, 503.0, 503.0) is True
    assert b.lines() == [{"sku": "B", "name": "Bottle", "qty": 1}]
    assert b.pending_scans == []


def test_weight_first_then_scan_also_confirms_and_a_wrong_weight_does_not():
    b = CartBasket(PRODUCTS)
    b.weight(T0_NS, 99.0, 99.0)
    assert b.scan(T0_NS + S, "A") is True and b.lines()[0]["sku"] == "A"
    b.scan(T0_NS + 2 * S, "C")
    b.weight(T0_NS + 3 * S, 500.0, 599.0)                     # a bottle nobody scanned, not the candy
    assert b.lines() == [{"sku": "A", "name": "Apple pack", "qty": 1}]
    b.advance(T0_NS + 10 * S)
    kinds = sorted((n.kind, n.sku) for n in b.notes)
    assert kinds == [("scan_not_placed", "C"), ("unscanned_weight", "")]


def test_weight_decrease_removes_the_best_matching_item():
    b = CartBasket(PRODUCTS)
    for k, (sku, g) in enumerate([("A", 101.0), ("B", 498.0), ("A", 99.5)]):
        b.scan(T0_NS + 2 * k * S, sku)
        b.weight(T0_NS + (2 * k + 1) * S, g)
    assert [ln["qty"] for ln in b.lines()] == [2, 1]
    b.weight(T0_NS + 10 * S, -497.0)
    assert b.lines() == [{"sku": "A", "name": "Apple pack", "qty": 2}]
    b.weight(T0_NS + 11 * S, -99.0)
    assert len(b.items) == 1 and b.items[0].grams == 101.0    # the unit that weighed 99.5 left
    b.weight(T0_NS + 12 * S, -300.0)                          # nothing weighs 300 g
    assert b.notes[-1].kind == "unmatched_removal" and len(b.items) == 1
    doc = b.to_dict("cart_1", T0_NS + 12 * S)
    assert doc["lines"] == [{"sku": "A", "name": "Apple pack", "qty": 1}] and doc["items_grams"] == 101.0


def test_small_settled_changes_are_ignored():
    b = CartBasket(PRODUCTS)
    b.scan(T0_NS, "A")
    assert b.weight(T0_NS + S, 2.0) is False and b.items == []


def test_basket_from_the_simulated_cart_events_matches_the_truth(sim_run):
    scenario, world, msgs = sim_run
    from storefuse_core.convert import stamp_ns
    b = CartBasket(scenario.store.products)
    for m in msgs:
        if m.topic == "/store/carts/cart_1/events":
            t = stamp_ns(m.msg.header.stamp)
            if m.msg.kind == 0:
                b.scan(t, m.msg.barcode)
            else:
                b.weight(t, m.msg.delta_grams, m.msg.total_grams, m.msg.noise_sd)
    erin = next(v for v in world.ground_truth()["visits"] if v["visit_id"] == "erin")
    assert [(ln["sku"], ln["qty"]) for ln in b.lines()] == [(ln["sku"], ln["qty"]) for ln in erin["lines"]]
    assert b.notes == [] and b.pending_scans == []
    assert abs(sum(it.grams for it in b.items) - b.total_grams) < 1.0


def test_rmse_holds_for_another_seed(tmp_path):
    scenario = dataclasses.replace(load_scenario(SCENARIO), seed=26)
    run_offline(scenario, tmp_path)
    msgs = [m for m in read_bag(tmp_path / "bag") if cart_of(m.topic)]
    world = World(scenario, load_calibration(scenario.store.root / "calibration.yaml"))
    poses, _ = localize_messages(msgs, store_anchors(scenario.store))
    assert float(np.sqrt(np.mean(_sim_errors(world, poses) ** 2))) < 0.1
