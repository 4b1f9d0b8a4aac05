"""The store description as RViz and tf2 get it: the store_description node as a real process (late
joiners still receive the latched URDF, transforms and markers), and the commands that generate the
checked-in store files."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String
from tf2_msgs.msg import TFMessage
from visualization_msgs.msg import MarkerArray

from storefuse_core.layout import load_store
from storefuse_core.urdf import store_urdf

from sftest import ROOT, node_exe

# What RViz and tf2 listeners ask for: the latest message, kept for late joiners.
LATCHED_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
AIFI = Path(os.environ.get("STOREFUSE_AIFI_DIR") or ROOT.parent / "shared" / "datasets" / "aifi-autocheckout-test1")


@pytest.mark.system
@pytest.mark.parametrize("store_name", ["aifi", "grocery"])
def test_late_joiners_get_the_description_and_a_transform_for_every_plate(store_name, tmp_path, processes,
                                                                          ros_client):
    store = load_store(store_name)
    status = {}

    def on_diag(msg):
        for s in msg.status:
            if s.name == f"storefuse/store_description/{store_name}":
                status.update({kv.key: kv.value for kv in s.values}, _message=s.message)
    ros_client.node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
    proc = processes.start([node_exe("storefuse_nodes", "store_description"), "--ros-args", "-r", "__ns:=/store",
                            "-p", f"store:={store_name}"], tmp_path / "store_description.log")
    # The node reports only after it has published: everything below subscribes late.
    ros_client.wait_for(lambda: status.get("_message") == "published", 60, "store_description to publish")
    assert status["plates"] == str(len(store.plates)) and status["cameras"] == str(len(store.cameras))

    got: dict[str, object] = {}
    node = ros_client.node
    node.create_subscription(String, "/robot_description", lambda m: got.setdefault("urdf", m), LATCHED_QOS)
    node.create_subscription(TFMessage, "/tf_static", lambda m: got.setdefault("tf", m), LATCHED_QOS)
    node.create_subscription(MarkerArray, "/store/markers", lambda m: got.setdefault("markers", m), LATCHED_QOS)
    ros_client.wait_for(lambda: len(got) == 3, 30, "the latched description, transforms and markers")

    assert got["urdf"].data == store_urdf(store)
    transforms = {t.child_frame_id: t for t in got["tf"].transforms}
    for pid, plate in store.plates.items():
        t = transforms[f"{pid}_link"]
        assert t.header.frame_id == "map"
        assert (t.transform.translation.x, t.transform.translation.y, t.transform.translation.z) == \
            pytest.approx((plate.x, plate.y, plate.z))
    for cam in store.cameras:
        assert transforms[f"{cam}_optical_frame"].header.frame_id == f"{cam}_link"
        assert transforms[f"{cam}_link"].header.frame_id == "map"
    assert {f"{g}_link" for g in store.gates} <= set(transforms)
    plates = [m for m in got["markers"].markers if m.ns == "plates"]
    assert sorted(m.header.frame_id for m in plates) == sorted(f"{p}_link" for p in store.plates)
    for info in node.get_publishers_info_by_topic("/tf_static"):
        assert info.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL
    assert proc.poll() is None, "the node keeps serving late joiners"


def storefuse(*args, cwd=None):
    return subprocess.run(["storefuse", *map(str, args)], capture_output=True, text=True, timeout=300, cwd=cwd)


def test_generate_grocery_writes_the_committed_store(tmp_path):
    proc = storefuse("generate-grocery", "--out", tmp_path / "grocery")
    assert proc.returncode == 0, proc.stderr
    assert "1176 plates" in proc.stdout
    for name in ("layout.yaml", "calibration.yaml", "grocery.urdf"):
        assert (tmp_path / "grocery" / name).read_text() == (ROOT / "urdf_store" / "grocery" / name).read_text(), name


@pytest.mark.skipif(not (AIFI / "products.csv").is_file(),
                    reason=f"AiFi dataset absent ({AIFI}); set STOREFUSE_AIFI_DIR to run the import")
def test_import_aifi_layout_writes_the_committed_store(tmp_path):
    proc = storefuse("import-aifi-layout", AIFI / "products.csv", "--out", tmp_path / "aifi")
    assert proc.returncode == 0, proc.stderr
    for name in ("layout.yaml", "calibration.yaml", "aifi.urdf"):
        assert (tmp_path / "aifi" / name).read_text() == (ROOT / "urdf_store" / "aifi" / name).read_text(), name
    assert not list((tmp_path / "aifi").glob("*.csv"))


def test_urdf_command_regenerates_views_of_a_checkout(tmp_path):
    (tmp_path / "launch").mkdir()
    shutil.copytree(ROOT / "urdf_store" / "minimart", tmp_path / "urdf_store" / "minimart",
                    ignore=shutil.ignore_patterns("*.urdf"))
    proc = storefuse("urdf", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "urdf_store" / "minimart" / "minimart.urdf").read_text() == \
        (ROOT / "urdf_store" / "minimart" / "minimart.urdf").read_text()
    assert (tmp_path / "launch" / "minimart.rviz").read_text() == (ROOT / "launch" / "minimart.rviz").read_text()


def test_store_commands_fail_with_one_clear_message(tmp_path):
    proc = storefuse("urdf", "atlantis", cwd=ROOT)
    assert proc.returncode == 2 and "no urdf_store/atlantis/layout.yaml" in proc.stderr
    proc = storefuse("import-aifi-layout", tmp_path / "missing.csv", "--out", tmp_path / "aifi")
    assert proc.returncode == 2 and "cannot read the AiFi products CSV" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "aifi").exists()
