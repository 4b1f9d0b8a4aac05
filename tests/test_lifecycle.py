"""The serial drivers are lifecycle nodes: with autostart:=false they publish nothing until a manager
(here the test) drives them through ~/change_state; configure opens the port, activate publishes."""
from __future__ import annotations

import itertools

import pytest
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from storefuse_core import topics
from storefuse_core.calibration import load_calibration
from storefuse_core.frame import gate_frame, scale_frame
from storefuse_core.gate import pass_frame
from storefuse_core.layout import load_store
from storefuse_core.simulation.pty import PtyDevice
from storefuse_interfaces.msg import GateEvent, PlateWeights, Watermark
from storefuse_nodes.common import EVENTS_QOS

from sftest import diagnostics_of, node_exe

pytestmark = pytest.mark.system
T0 = 1_767_225_600_000_000_000
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def _call(client, srv_type, name, request, timeout=30.0):
    cli = client.node.create_client(srv_type, name)
    client.wait_for(cli.service_is_ready, timeout, f"service {name}")
    future = cli.call_async(request)
    client.wait_for(future.done, timeout, f"an answer from {name}")
    return future.result()


def _transition(client, node, transition_id) -> bool:
    return _call(client, ChangeState, f"{node}/change_state",
                 ChangeState.Request(transition=Transition(id=transition_id))).success


def _state(client, node) -> int:
    return _call(client, GetState, f"{node}/get_state", GetState.Request()).current_state.id



def _spin(client, seconds, between=None):
    """Spin for `seconds`, calling `between()` every ~50 ms (a device streaming meanwhile)."""
    import time
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if between:
            between()
        client.executor.spin_once(timeout_sec=0.05)


def test_shelf_scale_waits_for_configure_and_activate(tmp_path, processes, ros_client):
    store = load_store("minimart")
    plates = store.board_plates("scale_G1")
    off, gain, _ = load_calibration(store.root / "calibration.yaml").arrays(plates)
    counts = [round(o + 500.0 / g) for o, g in zip(off, gain)]
    pty = PtyDevice("scale_G1", tmp_path / "dev")
    seq = itertools.count(1)

    def stream(n=3):                    # ~60 frames a second while the test spins
        for _ in range(n):
            k = next(seq)
            pty.write(scale_frame(k, T0 + k * 16_666_667, counts))

    weights, marks, config = [], [], []
    c = ros_client.node
    c.create_subscription(PlateWeights, topics.PLATE_WEIGHTS, weights.append, EVENTS_QOS)
    c.create_subscription(Watermark, topics.SHELF_WATERMARK, marks.append, EVENTS_QOS)
    c.create_subscription(String, topics.SHELF_CONFIG, config.append, LATCHED)
    diag = diagnostics_of(ros_client, "storefuse/shelf_scale/scale_G1")
    node = "/store/shelf_scale"
    processes.start([node_exe("storefuse_nodes", "shelf_scale"), "--ros-args", "-r", "__ns:=/store",
                     "-p", "board_id:=scale_G1", "-p", f"port:={pty.path}", "-p", "autostart:=false"],
                    tmp_path / "scale.log")
    try:
        assert _state(ros_client, node) == State.PRIMARY_STATE_UNCONFIGURED
        _spin(ros_client, 1.5, stream)
        assert (weights, marks, config, diag) == ([], [], [], {})
        assert c.count_publishers(topics.PLATE_WEIGHTS) == 0        # unconfigured: not even a publisher

        assert _transition(ros_client, node, Transition.TRANSITION_CONFIGURE)
        assert _state(ros_client, node) == State.PRIMARY_STATE_INACTIVE
        ros_client.wait_for(lambda: diag.get("connected") == "True", 30, "the configured driver to open the port")
        assert diag["active"] == "False" and diag["_message"].startswith("inactive")
        _spin(ros_client, 1.0, stream)
        assert (weights, marks, config) == ([], [], [])             # inactive: the port is read, nothing sent

        assert _transition(ros_client, node, Transition.TRANSITION_ACTIVATE)
        ros_client.wait_for(lambda: (stream(), len(weights) >= 5 and marks and config)[1], 30,
                            "weights, a watermark and the latched detector config once active")
        assert weights[0].board_id == "scale_G1" and config[0].data.startswith('{"board_id": "scale_G1"')
        ros_client.wait_for(lambda: diag.get("active") == "True", 10, "diagnostics to say active")
        assert diag["seq_gaps"] == "0"      # frames dropped while inactive are not a sequence gap
        assert int(diag["discarded_lines"]) > 0

        assert _transition(ros_client, node, Transition.TRANSITION_DEACTIVATE)
        _spin(ros_client, 0.5)
        n = len(weights)
        _spin(ros_client, 1.0, stream)
        assert len(weights) == n
        assert _transition(ros_client, node, Transition.TRANSITION_CLEANUP)
        assert _state(ros_client, node) == State.PRIMARY_STATE_UNCONFIGURED
        ros_client.wait_for(lambda: c.count_publishers(topics.PLATE_WEIGHTS) == 0, 10, "cleanup to drop the publisher")
    finally:
        pty.close()


def test_gate_reader_waits_for_configure_and_activate_then_reports_tailgating(tmp_path, processes, ros_client):
    pty = PtyDevice("gate_entry_1", tmp_path / "dev")
    events, tailgates = [], []
    ros_client.node.create_subscription(GateEvent, topics.GATE_EVENTS, events.append, EVENTS_QOS)
    ros_client.node.create_subscription(GateEvent, "/store/gates/tailgating", tailgates.append, EVENTS_QOS)
    diag = diagnostics_of(ros_client, "storefuse/gate_reader/gate_entry_1")
    node = "/store/gate_reader"
    processes.start([node_exe("storefuse_nodes", "gate_reader"), "--ros-args", "-r", "__ns:=/store",
                     "-p", "gate_id:=gate_entry_1", "-p", f"port:={pty.path}", "-p", "autostart:=false"],
                    tmp_path / "gate.log")
    try:
        assert _state(ros_client, node) == State.PRIMARY_STATE_UNCONFIGURED
        pty.write(gate_frame(1, T0, "ENTRY", "card-0001", 1))      # nobody reads the port yet
        _spin(ros_client, 1.5)
        assert (events, tailgates, diag) == ([], [], {})

        assert _transition(ros_client, node, Transition.TRANSITION_CONFIGURE)
        assert _transition(ros_client, node, Transition.TRANSITION_ACTIVATE)
        assert _state(ros_client, node) == State.PRIMARY_STATE_ACTIVE
        ros_client.wait_for(lambda: diag.get("connected") == "True" and diag.get("active") == "True", 30,
                            "the driver to open its port")
        s = 1_000_000_000
        for frame in (gate_frame(2, T0 + 10 * s, "ENTRY", "card-0042", 1), pass_frame(3, T0 + 11 * s, 1),
                      pass_frame(4, T0 + 12 * s, 1), pass_frame(5, T0 + 60 * s, 1)):
            pty.write(frame)
        ros_client.wait_for(lambda: len(events) == 2 and tailgates, 30, "the scan, its party update, a tailgate")
        scan, grow = events
        assert scan.seq == 2 and scan.party_size == 1          # the frame sent before configure was never read
        assert (grow.session_id, grow.token_hash, grow.party_size) == (scan.session_id, scan.token_hash, 2)
        assert tailgates[0].token_hash == "" and tailgates[0].session_id == "" and tailgates[0].seq == 5
        ros_client.wait_for(lambda: diag.get("tailgates") == "1", 10, "tailgating counted in diagnostics")
        assert (diag["passes"], diag["joined"]) == ("3", "1")
    finally:
        pty.close()
