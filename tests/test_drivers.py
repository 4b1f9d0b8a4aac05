"""Serial drivers as real processes reading pseudo-terminals: bad input is counted, never fatal."""
from __future__ import annotations

import pytest

from storefuse_core import topics
from storefuse_core.calibration import load_calibration
from storefuse_core.frame import gate_frame, scale_frame
from storefuse_core.layout import load_store
from storefuse_core.simulation.pty import PtyDevice
from storefuse_interfaces.msg import GateEvent, ShelfEvent
from storefuse_nodes.common import EVENTS_QOS

from sftest import diagnostics_of, node_exe

pytestmark = pytest.mark.system
T0 = 1_767_225_600_000_000_000



def test_gate_reader_survives_garbage_and_a_late_port(tmp_path, processes, ros_client):
    dev = tmp_path / "dev"
    proc = processes.start([node_exe("storefuse_nodes", "gate_reader"), "--ros-args", "-r", "__ns:=/store",
                            "-p", "gate_id:=gate_entry_1", "-p", f"port:={dev}/gate_entry_1"], tmp_path / "gate.log")
    diag = diagnostics_of(ros_client, "storefuse/gate_reader/gate_entry_1")
    events = []
    ros_client.node.create_subscription(GateEvent, topics.GATE_EVENTS, events.append, EVENTS_QOS)
    # The port does not exist yet: the driver reports it and keeps retrying.
    ros_client.wait_for(lambda: diag.get("open_failures", "0") != "0", 30, "open failures in diagnostics")
    assert diag["connected"] == "False" and "cannot open" in diag["_message"]
    pty = PtyDevice("gate_entry_1", dev)
    try:
        ros_client.wait_for(lambda: diag.get("connected") == "True", 30, "the driver to open the late port")
        good = gate_frame(1, T0, "ENTRY", "card-0042", 1)
        bad = [b"garbage without framing\r\n", good[:-8] + b"FFFF\r\n", b"$GATE,2,1,ENTRY,x,1,SHOPPER*0000\r\n",
               b"\xff\xfe\x00\r\n", gate_frame(3, T0 + 10, "ENTRY", "has space!", 1)]
        for frame in [*bad, good, gate_frame(5, T0 + 500_000_000, "ENTRY", "card-0042", 1)]:
            pty.write(frame)
        ros_client.wait_for(lambda: diag.get("bad_frames") == str(len(bad)) and events, 30, "bad frames counted")
        ros_client.wait_for(lambda: diag.get("duplicates") == "1", 30, "the repeated read debounced")
        assert len(events) == 1
        ev = events[0]
        assert ev.direction == GateEvent.DIRECTION_ENTRY and ev.session_id.startswith("s-")
        assert "card-0042" not in ev.token_hash and len(ev.token_hash) == 32
        assert proc.poll() is None, "the driver must keep running after bad input"
    finally:
        pty.close()


def test_shelf_scale_publishes_a_pick_from_raw_counts(tmp_path, processes, ros_client):
    store = load_store("minimart")
    plates = store.board_plates("scale_G1")
    cal = load_calibration(store.root / "calibration.yaml")
    off, gain, _ = cal.arrays(plates)
    dev = tmp_path / "dev"
    pty = PtyDevice("scale_G1", dev)
    events = []
    ros_client.node.create_subscription(ShelfEvent, topics.SHELF_EVENTS, events.append, EVENTS_QOS)
    diag = diagnostics_of(ros_client, "storefuse/shelf_scale/scale_G1")
    processes.start([node_exe("storefuse_nodes", "shelf_scale"), "--ros-args", "-r", "__ns:=/store",
                     "-p", "board_id:=scale_G1", "-p", f"port:={dev}/scale_G1"], tmp_path / "scale.log")
    try:
        ros_client.wait_for(lambda: diag.get("connected") == "True", 30, "the scale driver to connect")
        load = [3680.0] * len(plates)           # ten cans on G1S1P1, ...
        col = plates.index("G1S1P1")
        for k in range(240):                     # 4 s at 60 Hz; one can leaves at 2 s
            grams = list(load)
            if k >= 120:
                grams[col] -= 368.0
            counts = [round(o + g / s) for o, g, s in zip(off, grams, gain)]
            pty.write(scale_frame(k + 1, T0 + k * 16_666_667, counts))
            if k == 60:
                pty.write(b"$SCL,61,99,1,2*ZZZZ\r\n")      # line noise in the middle of the stream
        ros_client.wait_for(lambda: pty.flush() == 0 and bool(events), 30, "a shelf event")
        ros_client.wait_for(lambda: diag.get("bad_frames") == "1", 10, "the bad frame counted")
        ev = events[0]
        assert ev.kind == ShelfEvent.KIND_PICK and ev.shelf_id == "G1S1"
        assert abs(ev.delta_grams + 368.0) < 5.0
        assert ev.candidates[0].sku == "MM-0001" and ev.candidates[0].qty == 1
        assert len(events) == 1
    finally:
        pty.close()
