"""gate_reader: a gate's serial reader -> anonymous GateEvents (token hashed before it leaves).

A lifecycle node, like shelf_scale: configure opens the port, activate publishes, deactivate stops
(reads meanwhile are dropped), cleanup closes the port; `autostart` (default true) configures and
activates at start-up. Persons passing the gate (PASS frames, storefuse_core.gate) join the party of
the scan they follow within `follow_window_s` (an update GateEvent of the same session on
gates/events); anyone else is tailgating: counted in diagnostics and published as a GateEvent with
an empty token_hash and session_id on gates/tailgating (not on gates/events, which fusion reads).
"""
from __future__ import annotations

from rclpy.lifecycle import State, TransitionCallbackReturn

from storefuse_core import topics
from storefuse_core.convert import gate_event_to_msg, watermark_to_msg
from storefuse_core.errors import StorefuseError
from storefuse_core.events import ENTRY, EXIT
from storefuse_core.gate import GateReader
from storefuse_core.layout import load_store
from storefuse_core.port import LinePort
from storefuse_interfaces.msg import GateEvent, Watermark
from storefuse_nodes.common import DURABLE_EVENTS_QOS, ERROR, EVENTS_QOS, MSG, OK, WARN, Diagnostics, SerialDriver, run

TAILGATING = "gates/tailgating"


class GateReaderNode(SerialDriver):
    def __init__(self):
        super().__init__("gate_reader")
        for name, default in (("gate_id", "gate_entry_1"), ("port", "/dev/ttyUSB0"), ("baudrate", 115200),
                              ("debounce_s", 2.0), ("follow_window_s", 5.0), ("max_party", 20),
                              ("store", "minimart")):
            self.declare_parameter(name, default)
        self.gate_id = self.param("gate_id")
        self.autostart()


    def on_configure(self, state: State) -> TransitionCallbackReturn:
        self.gate_id = self.param("gate_id")
        try:
            store = load_store(self.param("store"))
            if self.gate_id not in store.gates:
                raise StorefuseError(f"store {store.name!r} has no gate {self.gate_id!r}")
        except StorefuseError as exc:
            self.error = str(exc)
            self.get_logger().error(f"cannot configure: {exc}")
            return TransitionCallbackReturn.FAILURE
        direction = EXIT if store.gates[self.gate_id].direction == "exit" else ENTRY
        self.reader = GateReader(self.gate_id, store.token_secret(), self.param("debounce_s"),
                                 self.param("follow_window_s"), direction, self.param("max_party"))
        self.pub = self.create_lifecycle_publisher(GateEvent, topics.relative(topics.GATE_EVENTS), DURABLE_EVENTS_QOS)
        self.wm_pub = self.create_lifecycle_publisher(Watermark, topics.relative(topics.GATE_WATERMARK), EVENTS_QOS)
        self.tailgate_pub = self.create_lifecycle_publisher(GateEvent, TAILGATING, DURABLE_EVENTS_QOS)
        self.lifecycle_pubs = [self.pub, self.wm_pub, self.tailgate_pub]
        self.port = LinePort(self.param("port"), self.param("baudrate")).start()
        self.diag = Diagnostics(self, f"storefuse/gate_reader/{self.gate_id}", self.param("port"))
        self.last_error = ""
        self.timer = self.create_timer(0.02, self.poll)
        return super().on_configure(state)







    def poll(self) -> None:
        lines = self.drain()
        for line in lines:
            ev = self.reader.feed(line)
            if ev is not None:
                self.pub.publish(gate_event_to_msg(MSG, ev))
            for tg in self.reader.take_tailgates():
                self.get_logger().warn(f"tailgating at {self.gate_id}: {tg.party_size} person(s) passed "
                                       f"with no scan to follow (frame {tg.seq})")
                self.tailgate_pub.publish(gate_event_to_msg(MSG, tg))
        if lines:
            self.wm_pub.publish(watermark_to_msg(MSG, self.gate_id, self.reader.watermark_ns,
                                                  self.reader.events_out))
        s, p = self.reader.stats, self.port.stats
        if s.last_error != self.last_error:
            self.get_logger().warn(f"dropped a bad frame from {self.port.url}: {s.last_error}")
            self.last_error = s.last_error
        level = OK if p.connected else ERROR
        if p.connected and s.bad_frames:
            level = WARN
        message = "connected" if p.connected else (p.last_error or "not connected")
        self.diag.set(level, message if self.active else f"inactive; {message}",
                      connected=p.connected, frames=s.frames, bad_frames=s.bad_frames, duplicates=s.duplicates,
                      seq_gaps=s.seq_gaps, reopens=max(0, p.opens - 1), open_failures=p.open_failures,
                      errors=s.errors, passes=s.passes, joined=s.joined, tailgates=s.tailgates,
                      active=self.active, discarded_lines=self.discarded)



def main(args=None):
    run(GateReaderNode, args)
