"""cart_localizer as a real process: simulated UWB ranges, odometry and cart events in, poses in
map, the map -> <cart>/odom -> <cart>/base_link transforms and the basket out."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseWithCovarianceStamped
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String
from tf2_msgs.msg import TFMessage

from storefuse_core import topics
from storefuse_core.calibration import load_calibration
from storefuse_core.cart import CartLocalizer, compose, odom_pose, store_anchors
from storefuse_core.convert import cart_message, stamp_ns
from storefuse_core.simulation.devices import carts
from storefuse_core.simulation.scenario import load_scenario
from storefuse_core.simulation.world import T0_NS, World
from storefuse_nodes.common import EVENTS_QOS, MSG
from storefuse_nodes.msgtypes import message_class

from sftest import ROOT, node_exe

pytestmark = pytest.mark.system
CART = "cart_1"
INBOX = QoSProfile(depth=2000, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)


def _planar(t) -> tuple[float, float, float]:
    q = t.rotation
    return t.translation.x, t.translation.y, 2.0 * math.atan2(q.z, q.w)


def test_cart_localizer_tracks_a_simulated_cart(tmp_path, processes, ros_client):
    scenario = load_scenario(ROOT / "scenarios" / "minimart_smart_carts.yaml")
    world = World(scenario, load_calibration(scenario.store.root / "calibration.yaml"))
    sim = carts(world)[CART]
    sent = sim.messages_until(T0_NS + int(30e9))            # erin pushes cart_1 from 2 s to ~27 s
    node = ros_client.node
    pubs = {leaf: node.create_publisher(message_class(t), topics.cart_topic(CART, leaf), EVENTS_QOS)
            for leaf, t in topics.CART_TYPES.items()}
    poses, tfs, items, diag = [], [], [], {}

    def on_diag(msg):
        for s in msg.status:
            if s.name == f"storefuse/cart_localizer/{CART}":
                diag.clear()
                diag.update({kv.key: kv.value for kv in s.values}, _level=s.level)

    subs = [node.create_subscription(PoseWithCovarianceStamped, topics.cart_topic(CART, "pose"), poses.append, INBOX),
            node.create_subscription(TFMessage, "/tf", tfs.append, INBOX),
            node.create_subscription(String, topics.cart_topic(CART, "items"), items.append, LATCHED),
            node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 50)]
    proc = processes.start([node_exe("storefuse_nodes", "cart_localizer"), "--ros-args", "-r", "__ns:=/store",
                            "-p", f"cart_id:={CART}", "-p", "store:=minimart"], tmp_path / "cart_localizer.log")
    ros_client.wait_for(lambda: all(p.get_subscription_count() >= 1 for p in pubs.values())
                        and all(s.get_publisher_count() >= 1 for s in subs), 60, "the node's topics to match ours")
    ros_client.wait_for(lambda: bool(items), 10, "the empty basket (latched)")
    assert json.loads(items[-1].data)["lines"] == []

    # Feed one second of sensor time at a time; the next second goes once its poses are back.
    stamps = set()
    chunk_end = sent[0].t_ns + 1_000_000_000
    for k, cm in enumerate(sent):
        leaf, msg = cart_message(MSG, cm)
        pubs[leaf].publish(msg)
        if leaf != "events":
            stamps.add(cm.t_ns)
        last = k == len(sent) - 1
        if cm.t_ns >= chunk_end or last:
            target = cm.t_ns - (300_000_000 if not last else 0)
            ros_client.wait_for(lambda t=target, end=last: bool(poses) and stamp_ns(poses[-1].header.stamp) >= t
                                or (end and len(poses) >= 0.9 * len(stamps)), 30,
                                f"poses up to {(target - T0_NS) / 1e9:.1f} s")
            chunk_end = cm.t_ns + 1_000_000_000

    # Poses: in map, stamped with the sensor stamps, close to the truth.
    assert len(poses) >= 0.9 * len(stamps)
    assert all(p.header.frame_id == "map" for p in poses)
    got = {stamp_ns(p.header.stamp): p for p in poses}
    assert set(got) <= stamps
    uwb_stamps = {cm.t_ns for cm in sent if cm.kind == "uwb"}
    err = sorted(math.hypot(p.pose.pose.position.x - truth[0], p.pose.pose.position.y - truth[1])
                 for t, p in got.items() if t in uwb_stamps
                 and (truth := world.cart_pose(CART, (t - T0_NS) / 1e9)) is not None)
    assert len(err) > 150
    # One round after a sharp turn with two multipath ranges of four can be off; the rest is not.
    assert err[len(err) // 2] < 0.06 and err[int(0.95 * len(err))] < 0.2, err[-10:]
    # The node runs the core filter: the same poses as storefuse_core.cart on the same messages.
    core = CartLocalizer(store_anchors(world.store))
    expected = []
    for cm in sent:
        if cm.kind == "uwb":
            d = cm.data
            expected += core.add_uwb(cm.t_ns, d["anchor_ids"], [float(np.float32(r)) for r in d["ranges"]],
                                     [float(np.float32(q)) for q in d["quality"]])
        elif cm.kind == "odom":
            expected += core.add_odom(cm.t_ns, *odom_pose(cart_message(MSG, cm)[1]))
    same = sum(1 for a, b in zip(poses, expected) if stamp_ns(a.header.stamp) == b.stamp_ns
               and abs(a.pose.pose.position.x - b.x) < 1e-9 and abs(a.pose.pose.position.y - b.y) < 1e-9)
    assert same >= 0.95 * len(expected), (same, len(expected), len(poses))
    assert proc.poll() is None
    cov = list(poses[-1].pose.covariance)
    assert 0.0 < cov[0] < 0.05 and 0.0 < cov[35] < 0.1

    # TF: map -> cart_1/odom (from the filter) then cart_1/odom -> cart_1/base_link (from odometry)
    # compose into the published pose.
    map_odom = {stamp_ns(t.header.stamp): _planar(t.transform) for m in tfs for t in m.transforms
                if t.header.frame_id == "map" and t.child_frame_id == f"{CART}/odom"}
    odom_base = {stamp_ns(t.header.stamp): _planar(t.transform) for m in tfs for t in m.transforms
                 if t.header.frame_id == f"{CART}/odom" and t.child_frame_id == f"{CART}/base_link"}
    assert len(map_odom) > 100 and len(odom_base) > 300
    checked = mismatched = 0
    for t, m2o in map_odom.items():
        if t in odom_base and t in got:
            x, y, _ = compose(m2o, odom_base[t])
            ok = abs(x - got[t].pose.pose.position.x) < 1e-6 and abs(y - got[t].pose.pose.position.y) < 1e-6
            mismatched += not ok
            checked += 1
    # Under heavy CPU load the node's bounded wait can release a stream late and re-emit a stamp; the
    # chain must still compose for (almost) every stamp.
    assert checked > 100 and mismatched <= 0.05 * checked, (checked, mismatched)

    # The basket: what erin kept (two Gatorades picked, one put back; the spaghetti).
    erin = next(v for v in world.ground_truth()["visits"] if v["visit_id"] == "erin")
    kept = [(ln["sku"], ln["qty"]) for ln in erin["lines"]]
    ros_client.wait_for(lambda: [(ln["sku"], ln["qty"]) for ln in json.loads(items[-1].data)["lines"]] == kept,
                        10, f"the basket {kept}")
    basket = json.loads(items[-1].data)
    assert basket["cart_id"] == CART and basket["notes"] == [] and basket["pending_scans"] == []
    # Diagnostics: every round counted, multipath ranges rejected (the core's counts on the same input).
    ros_client.wait_for(lambda: diag.get("uwb_rounds") == str(core.stats.rounds) and diag.get("items") == "2",
                        10, f"diagnostics of all {core.stats.rounds} rounds")
    assert diag["_level"] == DiagnosticStatus.OK
    assert int(diag["ranges_rejected"]) > 0.02 * int(diag["ranges"])
    assert abs(int(diag["ranges_rejected"]) - core.stats.ranges_rejected) <= 5
