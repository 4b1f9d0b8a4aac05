"""Every device driver starts from the store's launch file and reports on /diagnostics.

The store stack (launch/minimart.launch.yaml) runs through the launch runner, each node its own
process, inside sim.launch.yaml with frames:=true: the simulator drives the serial drivers'
pseudo-terminals, renders raw frames on cameras/<id>/image_raw for the real camera nodes and
publishes the smart carts' UWB ranges and odometry for the cart localizers.
"""
from __future__ import annotations

import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseWithCovarianceStamped
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from storefuse_core import topics
from storefuse_core.convert import stamp_ns
from storefuse_core.layout import load_store
from storefuse_core.simulation.world import T0_NS
from storefuse_interfaces.msg import PersonDetections
from storefuse_nodes.common import EVENTS_QOS
from storefuse_tools.launch_runner import _CLEAN_STOP_CODES, LaunchRunner, load_launch

from sftest import ROOT

pytestmark = pytest.mark.system
SCENARIO = ROOT / "scenarios" / "minimart_smart_carts.yaml"
INBOX = QoSProfile(depth=200, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)


def test_every_driver_of_the_store_launch_reports_diagnostics(tmp_path, ros_env, ros_client):
    store = load_store("minimart")
    args = {"scenario": str(SCENARIO), "run_dir": str(tmp_path / "run"), "record": "false", "frames": "true"}
    specs = load_launch(ROOT / "launch" / "sim.launch.yaml", args)
    store_nodes = load_launch(ROOT / "launch" / "minimart.launch.yaml", {"dev_dir": str(tmp_path / "run" / "dev")})
    assert {s.name for s in store_nodes} <= {s.name for s in specs}     # the store stack, whole
    cameras = sorted(c for c, cam in store.cameras.items() if cam.kind == "rgb")
    expected = ({f"storefuse/gate_reader/{g}" for g in store.gates}
                | {f"storefuse/shelf_scale/{b}" for b in store.boards}
                | {f"storefuse/camera/{c}" for c in cameras}
                | {f"storefuse/cart_localizer/{c}" for c in store.carts})
    drivers = {"gate_reader", "shelf_scale", "camera", "cart_localizer"}
    assert len(expected) == sum(s.exec in drivers for s in store_nodes)  # one status per driver node

    node = ros_client.node
    diag: dict[str, dict] = {}

    def on_diag(msg):
        for s in msg.status:
            if s.name in expected:
                diag[s.name] = {kv.key: kv.value for kv in s.values} | {"_level": s.level, "_message": s.message}

    detections = {c: [] for c in cameras}
    poses = {c: [] for c in store.carts}
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 100)
    for c in cameras:
        node.create_subscription(PersonDetections, topics.camera_topic(c), detections[c].append, EVENTS_QOS)
    for c in store.carts:
        node.create_subscription(PoseWithCovarianceStamped, topics.cart_topic(c, "pose"), poses[c].append, INBOX)

    lines: list[str] = []
    runner = LaunchRunner(sink=lines.append)
    try:
        runner.start(specs, env=ros_env)

        def ready(name: str) -> bool:
            d = diag.get(name, {})
            if "/cart_localizer/" in name:                 # OK only once a cart has moved: rounds suffice
                return d.get("uwb_rounds", "0") != "0"
            return d.get("_level") == DiagnosticStatus.OK and (
                d.get("connected") == "True" if "/camera/" not in name else d.get("frames", "0") != "0")

        def all_ready() -> bool:
            if runner.failed:
                raise AssertionError(f"{runner.failed} exited:\n" + "\n".join(lines[-40:]))
            return all(ready(n) for n in expected)

        ros_client.wait_for(all_ready, 180, "OK diagnostics from every driver: "
                            + ", ".join(sorted(n for n in expected if not ready(n))))
        ros_client.wait_for(lambda: all(detections.values()) and all(poses.values()), 60,
                            "detections from every camera node and a pose from every cart localizer")
        # One publisher per camera's detections (its camera node: the simulator publishes frames
        # instead) and per cart's pose (its localizer).
        for topic, owner in [*((topics.camera_topic(c), c) for c in cameras),
                             *((topics.cart_topic(c, "pose"), f"{c}_localizer") for c in store.carts)]:
            pubs = node.get_publishers_info_by_topic(topic)
            assert [(p.node_name, p.node_namespace) for p in pubs] == [(owner, "/store")], topic
    finally:
        codes = runner.stop(timeout=30.0)      # 14 processes on 2 busy cores: Ctrl-C may take > 10 s
    unclean = {name: code for name, code in codes.items() if code not in _CLEAN_STOP_CODES}
    assert not unclean, f"{unclean}\n" + "\n".join(lines[-40:])
    for c in cameras:              # stamped with the frames' sensor time
        assert all(stamp_ns(m.header.stamp) >= T0_NS and m.camera_id == c for m in detections[c])
    for c in store.carts:
        assert all(stamp_ns(m.header.stamp) >= T0_NS and m.header.frame_id == "map" for m in poses[c])
