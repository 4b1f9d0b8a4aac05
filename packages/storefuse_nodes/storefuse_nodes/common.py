"""What every storefuse node shares: QoS, diagnostics, a clean main loop."""
from __future__ import annotations

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from storefuse_core.convert import rclpy_factory

# Events, tracks, receipts: reliable with room for bursts (DESIGN.md).
EVENTS_QOS = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)
# Gate and shelf events are also kept by their publishers (transient local, last 100): a fusion node
# that restarts receives what it missed while down; its ledger's idempotency keys drop the repeats.
DURABLE_EVENTS_QOS = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                                durability=DurabilityPolicy.TRANSIENT_LOCAL)
# Plate samples are reliable too: the offline replay recomputes every shelf event from the recorded
# samples, so a block lost between driver and recorder would break replay equality.
WEIGHTS_QOS = QoSProfile(depth=200, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)

MSG = rclpy_factory()
OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR


class Diagnostics:
    """Publishes one DiagnosticStatus per device on /diagnostics (absolute: one topic per robot)."""

    def __init__(self, node, name: str, hardware_id: str, period_s: float = 1.0):
        self.node, self.name, self.hardware_id = node, name, hardware_id
        self.pub = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.fields: dict[str, object] = {}
        self.level, self.message = OK, "starting"
        self.timer = node.create_timer(period_s, self.publish)

    def set(self, level, message: str, **fields) -> None:
        self.level, self.message = level, message
        self.fields.update(fields)

    def publish(self) -> None:
        status = DiagnosticStatus(level=self.level, name=self.name, message=self.message,
                                  hardware_id=self.hardware_id,
                                  values=[KeyValue(key=k, value=str(v)) for k, v in sorted(self.fields.items())])
        arr = DiagnosticArray(status=[status])
        arr.header.stamp = self.node.get_clock().now().to_msg()
        self.pub.publish(arr)

    def destroy(self) -> None:
        """Stop publishing (a lifecycle node's cleanup): the timer and the publisher go."""
        self.node.destroy_timer(self.timer)
        self.node.destroy_publisher(self.pub)


def run(node_cls, args=None) -> None:
    rclpy.init(args=args)
    node = None
    try:
        node = node_cls()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            close = getattr(node, "close", None)
            if close:
                close()
            node.destroy_node()
        rclpy.try_shutdown()
