"""cart_localizer: one smart cart's UWB ranges + wheel odometry -> its pose in map; scans + cart
scale -> its basket.

Subscribes (relative, under the store namespace): carts/<cart>/uwb (UwbRanges), carts/<cart>/odom
(nav_msgs/Odometry), carts/<cart>/events (CartEvent). Publishes carts/<cart>/pose
(PoseWithCovarianceStamped in map, stamped with the sensor stamp), /tf (map -> <cart>/odom once the
heading is aligned, and <cart>/odom -> <cart>/base_link from the odometry unless the cart's computer
broadcasts it itself: publish_odom_tf), carts/<cart>/items (std_msgs/String JSON, latched) and
/diagnostics (ranges rejected, restarts, ...). The estimation is storefuse_core.cart.
"""
from __future__ import annotations

from geometry_msgs.msg import PoseWithCovarianceStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String
from tf2_msgs.msg import TFMessage

from storefuse_core.cart import (
    CartBasket,
    CartLocalizer,
    CartParams,
    odom_pose,
    pose_to_msg,
    preload,
    store_anchors,
    transform_msg,
)
from storefuse_core.convert import stamp_ns
from storefuse_core.layout import load_store
from storefuse_interfaces.msg import CartEvent, UwbRanges
from storefuse_nodes.common import EVENTS_QOS, MSG, OK, WARN, Diagnostics, run

# Sensor streams: best effort matches both a best-effort cart and a reliable publisher (the simulator).
SENSOR_QOS = QoSProfile(depth=50, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.BEST_EFFORT)
OUT_QOS = QoSProfile(depth=50, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)
TF_QOS = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)
LATCHED_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
BASKET_EXPIRY_MARGIN_NS = 1_000_000_000     # sensor stamps from UWB expire scans only this much behind


class CartLocalizerNode(Node):
    def __init__(self):
        super().__init__("cart_localizer")
        self.cart_id = self.declare_parameter("cart_id", "cart_1").value
        store = load_store(self.declare_parameter("store", "minimart").value)
        self.odom_tf = self.declare_parameter("publish_odom_tf", True).value
        params = CartParams.from_dict({k: self.declare_parameter(f"localizer.{k}", v).value
                                       for k, v in CartParams().__dict__.items()})
        self.loc = CartLocalizer(store_anchors(store), params)
        preload()                                  # the filter's imports at start, not at the first round
        self.basket = CartBasket(store.products, confirm_s=self.declare_parameter("basket.confirm_s", 4.0).value)
        self.odom_frame, self.base_frame = f"{self.cart_id}/odom", f"{self.cart_id}/base_link"
        base = f"carts/{self.cart_id}/"
        self.create_subscription(UwbRanges, base + "uwb", self.on_uwb, SENSOR_QOS)
        self.create_subscription(Odometry, base + "odom", self.on_odom, SENSOR_QOS)
        self.create_subscription(CartEvent, base + "events", self.on_event, EVENTS_QOS)
        self.pose_pub = self.create_publisher(PoseWithCovarianceStamped, base + "pose", OUT_QOS)
        self.items_pub = self.create_publisher(String, base + "items", LATCHED_QOS)
        self.tf_pub = self.create_publisher(TFMessage, "/tf", TF_QOS)
        self.diag = Diagnostics(self, f"storefuse/cart_localizer/{self.cart_id}", self.cart_id)
        self.publish_basket(0)
        self.create_timer(1.0, self.update_diagnostics)
        self.create_timer(0.1, lambda: self.publish(self.loc.poll(self.now())))
        self.get_logger().info(f"{self.cart_id}: {len(self.loc.anchors)} UWB anchors in {store.name}")

    def on_uwb(self, msg: UwbRanges) -> None:
        t = stamp_ns(msg.header.stamp)
        self.publish(self.loc.add_uwb(t, list(msg.anchor_ids), list(msg.ranges_m), list(msg.quality), self.now()))
        if self.basket.advance(t - BASKET_EXPIRY_MARGIN_NS):
            self.publish_basket(t)

    def on_odom(self, msg: Odometry) -> None:
        t, o = stamp_ns(msg.header.stamp), odom_pose(msg)
        if self.odom_tf:
            self.tf_pub.publish(TFMessage(transforms=[transform_msg(MSG, t, self.odom_frame, self.base_frame, o)]))
        self.publish(self.loc.add_odom(t, *o, now_ns=self.now()))

    def now(self) -> int:
        """Arrival time for the localizer's bounded wait (node clock: /clock under use_sim_time)."""
        return self.get_clock().now().nanoseconds

    def publish(self, poses) -> None:
        for p in poses:
            self.pose_pub.publish(pose_to_msg(MSG, p))
            if p.source == "uwb" and p.map_to_odom is not None:
                tf = transform_msg(MSG, p.stamp_ns, "map", self.odom_frame, p.map_to_odom)
                self.tf_pub.publish(TFMessage(transforms=[tf]))
            if p.rejected:
                self.get_logger().debug(f"rejected ranges to {', '.join(p.rejected_ids)}")

    def on_event(self, msg: CartEvent) -> None:
        t = stamp_ns(msg.header.stamp)
        if msg.kind == CartEvent.KIND_SCAN:
            changed = self.basket.scan(t, msg.barcode)
        else:
            changed = self.basket.weight(t, msg.delta_grams, msg.total_grams, msg.noise_sd or 2.0)
        if changed:
            self.publish_basket(t)

    def publish_basket(self, t: int) -> None:
        self.items_pub.publish(String(data=self.basket.to_json(self.cart_id, t)))

    def update_diagnostics(self) -> None:
        s = self.loc.stats
        if not s.initialised:
            level, message = WARN, "waiting for a UWB round with >= 3 anchors"
        elif not s.yaw_known:
            level, message = WARN, "heading not aligned yet (the cart has not moved)"
        else:
            level, message = OK, "localized"
        self.diag.set(level, message, uwb_rounds=s.rounds, ranges=s.ranges, ranges_rejected=s.ranges_rejected,
                      restarts=s.reinits, odom_msgs=s.odom_msgs, odom_resets=s.odom_resets, uwb_late=s.uwb_late,
                      odom_late=s.odom_late, items=len(self.basket.items),
                      pending_scans=len(self.basket.pending_scans), basket_notes=len(self.basket.notes))


def main(args=None):
    run(CartLocalizerNode, args)
