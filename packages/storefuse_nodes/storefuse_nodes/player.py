"""player: a bag's recorded CDR bytes back onto their topics with their original timing, and /clock.

Nodes under test run with use_sim_time:=true and see the run as it was recorded. The timing (rate,
start offset, loop, pause, step, linger) is storefuse_core.playback; this node only publishes.
Pause and step: services ~/set_paused (std_srvs/SetBool) and ~/step (std_srvs/Trigger), or keys when
started by `storefuse play` in a terminal.
"""
from __future__ import annotations

import sys
import time

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.duration import Duration
from rclpy.executors import SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from std_srvs.srv import SetBool, Trigger

from storefuse_core.errors import StorefuseError
from storefuse_core.playback import open_playback, qos_for, resolve_wait
from storefuse_nodes.common import STOPPED, clean_stop
from storefuse_nodes.msgtypes import message_class

ANY = ParameterDescriptor(dynamic_typing=True)     # `rate:=4` (an int) as well as `rate:=4.0` or `inf`
STRINGS = Parameter.Type.STRING_ARRAY              # no default: an empty list would be typed BYTE_ARRAY
RCLError = rclpy_implementation.RCLError


def qos_profile(choice) -> QoSProfile:
    return QoSProfile(depth=choice.depth, history=HistoryPolicy.KEEP_LAST,
                      reliability=ReliabilityPolicy.RELIABLE if choice.reliable else ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if choice.transient_local
                      else DurabilityPolicy.VOLATILE)


class PlayerNode(Node):
    def __init__(self):
        super().__init__("player")
        p = self.declare_parameter
        bag = p("bag", "").value
        if not bag:
            raise StorefuseError("parameter 'bag' (a rosbag2 folder) is required")
        self.wait_for = list(p("wait_for", STRINGS).value or [])
        self.wait_timeout_s = float(p("wait_timeout_s", 60.0, ANY).value)
        self.delay_s = float(p("delay_s", 1.0, ANY).value)
        self.clock_period_s = 1.0 / float(p("clock_hz", 100.0, ANY).value)
        self.playback, played = open_playback(
            bag, rate=float(p("rate", 1.0, ANY).value), start_s=float(p("start_s", 0.0, ANY).value),
            loop=bool(p("loop", False).value),
            include=p("topics", STRINGS).value, exclude=p("exclude", STRINGS).value,
            paused=bool(p("paused", False).value), linger_s=float(p("linger_s", 3.0, ANY).value))
        self.pubs, self.skipped = {}, {}
        for topic in played:
            try:
                cls = message_class(topic.msgtype)
            except (ImportError, AttributeError, ValueError) as exc:
                self.skipped[topic.name] = topic.count
                self.get_logger().error(f"not playing {topic.name}: type {topic.msgtype} unknown here ({exc})")
                continue
            self.pubs[topic.name] = self.create_publisher(cls, topic.name, qos_profile(qos_for(topic)))
        self.wait_for = resolve_wait(self.wait_for, self.pubs)
        self.clock_pub = self.create_publisher(Clock, "/clock", 10)
        self.create_service(SetBool, "~/set_paused", self.on_set_paused)
        self.create_service(Trigger, "~/step", self.on_step)
        self.stopped = False
        self.bytes, self.wall_s, self.failed = 0, None, {}
        self.get_logger().info(f"{bag}: playing {len(self.pubs)} topics at {self.playback.clock.rate}x"
                               f"{' (paused)' if self.playback.clock.paused else ''}; "
                               f"services {self.get_fully_qualified_name()}/set_paused, .../step")

    # ---- control (services, keyboard) --------------------------------------------------------
    def set_paused(self, paused: bool) -> None:
        self.playback.clock.pause() if paused else self.playback.clock.resume()
        self.publish_clock()

    def step_one(self) -> str:
        if not self.playback.started:
            return "waiting for subscribers"
        item = self.playback.step()
        if item is None:
            return "not paused" if not self.playback.clock.paused else "nothing left to play"
        self.publish_clock()
        self.publish(item)
        return f"{item.topic} at {self.bag_s(item.stamp_ns):.3f} s"

    def bag_s(self, stamp_ns: int) -> float:
        return (stamp_ns - self.playback.schedule.start_ns) / 1e9

    def on_set_paused(self, request, response):
        self.set_paused(request.data)
        response.success, response.message = True, f"{'paused' if request.data else 'playing'} at " \
            f"{self.bag_s(self.playback.clock_ns()):.3f} s"
        return response

    def on_step(self, request, response):
        response.message = self.step_one()
        response.success = " at " in response.message
        return response

    # ---- publishing ----------------------------------------------------------------------------
    def publish_clock(self) -> None:
        msg = Clock()
        msg.clock.sec, msg.clock.nanosec = divmod(self.playback.clock_ns(), 1_000_000_000)
        self.clock_pub.publish(msg)

    def publish(self, item) -> None:
        pub = self.pubs.get(item.topic)
        if pub is None:
            return
        try:
            pub.publish(item.raw)
        except RCLError as exc:          # e.g. a reliable writer blocked past its limit: count, go on
            self.failed[item.topic] = self.failed.get(item.topic, 0) + 1
            if self.failed[item.topic] == 1:
                self.get_logger().error(f"could not publish on {item.topic} (counting, going on): {exc}")
            return
        self.bytes += len(item.raw)

    def wait_for_subscribers(self, executor) -> bool:
        """Hold bag time at the start, publishing /clock, until every wait_for topic has a
        subscriber, then delay_s more: a node on sim time must have its first /clock before its
        first input, or its bounded waits start at time zero."""
        deadline, ready_at = time.monotonic() + self.wait_timeout_s, None
        while rclpy.ok(context=self.context) and not self.stopped:
            self.publish_clock()                   # held at the start: bag time runs once we play
            pubs = [self.clock_pub if t == "/clock" else self.pubs[t] for t in self.wait_for]
            if ready_at is None and all(pub.get_subscription_count() > 0 for pub in pubs):
                ready_at = time.monotonic()
            if ready_at is not None and time.monotonic() - ready_at >= self.delay_s:
                return True
            if time.monotonic() > deadline:
                lonely = [t for t, pub in zip(self.wait_for, pubs) if pub.get_subscription_count() == 0]
                self.get_logger().error(f"no subscriber on {', '.join(lonely)} after {self.wait_timeout_s:g} s")
                return False
            executor.spin_once(timeout_sec=self.clock_period_s)
        return False

    def play(self, executor, controls=None) -> int:
        """The control loop; `controls(node)` is polled each turn (keyboard). 0 when played to the end."""
        if not self.wait_for_subscribers(executor):
            return 1
        pb, next_clock, started = self.playback, 0.0, time.monotonic()
        pb.start()
        while rclpy.ok(context=self.context) and not self.stopped:
            if controls is not None:
                controls(self)
            if time.monotonic() >= next_clock:
                self.publish_clock()
                next_clock = time.monotonic() + self.clock_period_s
            for item in pb.due():
                self.publish(item)
                self.wall_s = time.monotonic() - started      # first to last message
            if pb.finished:                          # never, when looping
                self.publish_clock()
                for pub in self.pubs.values():     # reliable samples still in flight must not die with us
                    pub.wait_for_all_acked(Duration(seconds=5))
                wall = time.monotonic() - started
                self.get_logger().info(f"played {pb.published} messages ({self.bytes / 1e6:.1f} MB) in {wall:.1f} s"
                                       + (f"; skipped topics {self.skipped}" if self.skipped else "")
                                       + (f"; NOT published {self.failed}" if self.failed else ""))
                return 0
            executor.spin_once(timeout_sec=pb.wait_s(max(0.0, next_clock - time.monotonic())))
        return 0


def main(args=None, controls=None) -> int:
    rclpy.init(args=args)
    node, code = None, 0
    try:
        node = PlayerNode()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        code = node.play(executor, controls)
    except StorefuseError as exc:
        print(f"player: {exc}", file=sys.stderr, flush=True)
        code = 2
    except STOPPED as exc:
        if not clean_stop(exc):
            raise
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    if args is None:
        raise SystemExit(code)
    return code
