"""What every storefuse node shares: QoS, diagnostics, a clean main loop."""
from __future__ import annotations

import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import Node as LifecycleNode
from rclpy.lifecycle import State, TransitionCallbackReturn
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


# How a spinning process learns it was stopped (SIGINT, SIGTERM): as an interrupt, as the executor's
# shutdown exception, or as an error out of rclpy while its deferred signal handler shuts the context
# down under the executor. Two such races are known: an RCLError while the wait set is built
# (ros2/rclpy#398), and a RuntimeError "Unable to convert call argument '0'" from a subscription's
# take_message (seen in CI on store_sim; also ros/joint_state_publisher#117). The first two are always a
# clean stop; a RuntimeError (RCLError is one) only if the context is shut down, now or within
# `settle_s` (the handler's thread may not have finished): otherwise it is a real error.
STOPPED = (KeyboardInterrupt, ExternalShutdownException, RuntimeError)


def clean_stop(exc: BaseException, context=None, settle_s: float = 1.0) -> bool:
    if not isinstance(exc, RuntimeError):
        return True
    deadline = time.monotonic() + settle_s
    while rclpy.ok(context=context):       # the C signal handler runs no Python callback to await
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def run(node_cls, args=None) -> None:
    rclpy.init(args=args)
    node = None
    try:
        node = node_cls()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except STOPPED as exc:
        if not clean_stop(exc):
            raise
    finally:
        if node is not None:
            close = getattr(node, "close", None)
            if close:
                close()
            node.destroy_node()
        rclpy.try_shutdown()


class SerialDriver(LifecycleNode):
    """What every serial driver shares as a lifecycle node: configure opens the port (subclass),
    activate publishes, deactivate keeps reading but drops what it reads, cleanup/shutdown/error
    release the port, the timer, diagnostics and publishers. `autostart` (default true) configures
    and activates at start-up, for launchers without a lifecycle manager."""

    def __init__(self, name: str):
        super().__init__(name)
        self.port = self.timer = self.diag = None
        self.active, self.error, self.discarded = False, "", 0
        self.lifecycle_pubs: list = []

    def autostart(self) -> None:
        if self.declare_parameter("autostart", True).value:
            if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                raise SystemExit(f"{self.get_name()}: {self.error}")
            self.trigger_activate()

    def param(self, name: str):
        return self.get_parameter(name).value

    def drain(self) -> list[bytes]:
        """Lines from the port; while inactive they are read (the device keeps sending) and dropped."""
        lines = self.port.drain()
        if not self.active:
            self.discarded += len(lines)
            return []
        return lines

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        ret = super().on_activate(state)           # enables the publishers
        self.active = True
        self.get_logger().info("active: publishing")
        return ret

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self.active = False
        self.get_logger().info("inactive: frames are read and dropped")
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self.release()
        return super().on_cleanup(state)

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self.release()
        return super().on_shutdown(state)

    def on_error(self, state: State) -> TransitionCallbackReturn:
        self.release()
        return TransitionCallbackReturn.SUCCESS

    def release(self) -> None:
        self.active = False
        if self.timer is not None:
            self.destroy_timer(self.timer)
            self.diag.destroy()
            for pub in self.lifecycle_pubs:
                self.destroy_lifecycle_publisher(pub)
            self.lifecycle_pubs = []
            self.timer = self.diag = None
        self.close()

    def close(self) -> None:
        if self.port is not None:
            self.port.stop()
            self.port = None
