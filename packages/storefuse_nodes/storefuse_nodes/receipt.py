"""receipt: gate + shelf events in stamp order -> live and final receipts, backed by the ledger."""
from __future__ import annotations

import os
from pathlib import Path

from geometry_msgs.msg import PoseWithCovarianceStamped
from rclpy.node import Node

from storefuse_core import topics
from storefuse_core.cart_shopper import change_from_msg
from storefuse_core.convert import (
    detections_from_msg,
    gate_event_from_msg,
    product_views_from_msg,
    receipt_from_msg,
    receipt_to_msg,
    shelf_event_from_msg,
    stamp_ns,
)
from storefuse_core.events import OPEN
from storefuse_core.layout import load_store
from storefuse_core.ledger import Ledger
from storefuse_core.pipeline import FusionPipeline
from storefuse_core.product_views import BadView
from storefuse_interfaces.msg import (
    CartEvent,
    GateEvent,
    PersonDetections,
    ProductViews,
    Receipt,
    ShelfEvent,
    Watermark,
)
from storefuse_interfaces.srv import GetReceipt, ResolveReview
from storefuse_nodes.common import DURABLE_EVENTS_QOS, EVENTS_QOS, MSG, OK, WARN, Diagnostics, run


class ReceiptNode(Node):
    def __init__(self):
        super().__init__("receipt")
        store = load_store(self.declare_parameter("store", "minimart").value)
        default_ledger = Path(os.environ.get("ROS_HOME", Path.home() / ".ros")) / "storefuse" / f"{store.name}.sqlite"
        ledger_path = self.declare_parameter("ledger", str(default_ledger)).value
        max_wait = self.declare_parameter("max_wait_s", 3.0).value
        hold = self.declare_parameter("hold_s", 8.0).value
        threshold = self.declare_parameter("review_threshold", 0.9).value
        carts = self.declare_parameter("cart_evidence", True).value
        views = self.declare_parameter("product_views", True).value
        self.ledger = Ledger(ledger_path)
        self.pipeline = FusionPipeline(store, self.ledger, max_wait, threshold, cart_evidence=carts,
                                       product_views=views, hold_s=hold)
        reopened = self.pipeline.book.open_sessions()
        self.get_logger().info(f"ledger {ledger_path}: {self.ledger.count()} entries, "
                               f"{len(reopened)} open session(s) rebuilt")
        self.live_pub = self.create_publisher(Receipt, topics.relative(topics.RECEIPTS_LIVE), EVENTS_QOS)
        self.final_pub = self.create_publisher(Receipt, topics.relative(topics.RECEIPTS_FINAL), EVENTS_QOS)
        rel = topics.relative
        self.create_subscription(GateEvent, rel(topics.GATE_EVENTS), self.on_gate, DURABLE_EVENTS_QOS)
        self.create_subscription(ShelfEvent, rel(topics.SHELF_EVENTS), self.on_shelf, DURABLE_EVENTS_QOS)
        self.create_subscription(Watermark, rel(topics.GATE_WATERMARK), self.on_watermark, EVENTS_QOS)
        self.create_subscription(Watermark, rel(topics.SHELF_WATERMARK), self.on_watermark, EVENTS_QOS)
        # Camera detections feed the shopper tracker (attribution when several shoppers are inside).
        for cam in store.cameras:
            self.create_subscription(PersonDetections, rel(topics.camera_topic(cam)), self.on_detections, EVENTS_QOS)
            if views:   # what the camera saw in a hand: the tie-breaker between look-alike weights
                self.create_subscription(ProductViews, rel(topics.camera_topic(cam, "products")),
                                         self.on_views, DURABLE_EVENTS_QOS)
        # Smart carts (cart_shopper.py): their poses bind them to shoppers, their scans and scale
        # changes confirm (or question) who made a shelf change.
        for cart in store.carts if carts else ():
            self.create_subscription(PoseWithCovarianceStamped, rel(topics.cart_topic(cart, "pose")),
                                     lambda m, c=cart: self.on_cart_pose(c, m), EVENTS_QOS)
            self.create_subscription(CartEvent, rel(topics.cart_topic(cart, "events")), self.on_cart_event, EVENTS_QOS)
        self.create_service(GetReceipt, "get_receipt", self.get_receipt)
        self.create_service(ResolveReview, "resolve_review", self.resolve_review)
        self.diag = Diagnostics(self, "storefuse/receipt", ledger_path)
        self.create_timer(0.05, self.step)

    def now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def on_gate(self, msg) -> None:
        self.pipeline.push_gate(gate_event_from_msg(msg), self.now_ns())

    def on_shelf(self, msg) -> None:
        self.pipeline.push_shelf(shelf_event_from_msg(msg), self.now_ns())

    def on_detections(self, msg) -> None:
        self.pipeline.push_detections(msg.camera_id, stamp_ns(msg.header.stamp), detections_from_msg(msg),
                                      self.now_ns())

    def on_views(self, msg) -> None:
        for view in product_views_from_msg(msg):
            try:
                self.pipeline.push_product_view(view)
            except BadView as exc:      # counted in diagnostics (bad_views); the view is dropped
                self.get_logger().warning(f"dropped a product view: {exc}", throttle_duration_sec=5.0)

    def on_cart_pose(self, cart_id: str, msg) -> None:
        p = msg.pose.pose.position
        self.pipeline.push_cart_pose(cart_id, stamp_ns(msg.header.stamp), p.x, p.y)

    def on_cart_event(self, msg) -> None:
        self.pipeline.push_cart_change(change_from_msg(msg))

    def on_watermark(self, msg) -> None:
        self.pipeline.advance(msg.header.frame_id, stamp_ns(msg.header.stamp), int(msg.items_published))

    def step(self) -> None:
        for r in self.pipeline.step(self.now_ns()):
            self.publish(r)
        b, buf, views = self.pipeline.book.stats, self.pipeline.buffer, self.pipeline.book.views
        bad_detections = self.pipeline.tracker.rejected
        level = WARN if buf.released_by_timeout or b.unattributed or b.unmatched_exits or bad_detections else OK
        self.diag.set(level, "running", open_sessions=len(self.pipeline.book.open_sessions()),
                      buffered=len(buf), released_by_timeout=buf.released_by_timeout, late_items=buf.late_items,
                      shelf_events=b.events, duplicates=b.duplicates, unattributed=b.unattributed,
                      unmatched_exits=b.unmatched_exits, unexplained=b.unexplained, ledger_entries=self.ledger.count(),
                      bad_detections=bad_detections,
                      **({"product_views": views.received, "bad_views": views.rejected} if views else {}))

    def publish(self, r) -> None:
        msg = receipt_to_msg(MSG, r)
        self.live_pub.publish(msg)
        if r.status != OPEN:
            self.final_pub.publish(msg)
            lines = ", ".join(f"{ln.qty}x {ln.name}" for ln in r.lines) or "(nothing)"
            self.get_logger().info(f"final receipt {r.session_id} [{msg.status_reason}]: {lines} = {r.total:.2f}")

    def get_receipt(self, request, response):
        book = self.pipeline.book
        response.found = request.session_id in book.sessions
        if response.found:
            response.receipt = receipt_to_msg(MSG, book.receipt(request.session_id))
        return response

    def resolve_review(self, request, response):
        try:
            lines = receipt_from_msg(MSG("storefuse_interfaces/msg/Receipt", lines=request.lines)).lines
            r = self.pipeline.book.resolve_review(request.session_id, lines, request.reviewer, request.note,
                                                  self.now_ns())
        except KeyError as exc:
            response.success, response.message = False, str(exc)
            return response
        response.success, response.message = True, "amended"
        response.receipt = receipt_to_msg(MSG, r)
        self.publish(r)
        return response

    def close(self) -> None:
        self.ledger.close()


def main(args=None):
    run(ReceiptNode, args)
