"""Launch files: valid ROS 2 launch YAML for the runner, and every node they name is installed
where real `ros2 launch` looks for it (ros2_ws/install/<pkg>/lib/<pkg>/<exec>)."""
from __future__ import annotations

import pytest
import yaml

from storefuse_tools.launch_runner import load_launch

from sftest import INSTALL, ROOT

LAUNCH_FILES = sorted((ROOT / "launch").glob("*.launch.yaml"))
# The launch_ros YAML frontend's actions and the attributes this project uses.
KNOWN = {"arg", "let", "node", "group", "include", "push-ros-namespace", "set_env", "set-env"}


def _actions(entries):
    for entry in entries or []:
        for key, body in entry.items():
            yield key, body
            if key == "group":
                yield from _actions(body.get("children"))


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=[p.name for p in LAUNCH_FILES])
def test_launch_file_uses_only_launch_ros_yaml_actions(path):
    doc = yaml.safe_load(path.read_text())
    assert list(doc) == ["launch"]
    keys = {key for key, _ in _actions(doc["launch"])}
    assert keys <= KNOWN, keys - KNOWN


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=[p.name for p in LAUNCH_FILES])
def test_every_node_is_installed_where_ros2_launch_looks(path, tmp_path):
    scenario = ROOT / "scenarios" / "minimart_two_shoppers.yaml"
    specs = load_launch(path, {"run_dir": str(tmp_path), "scenario": str(scenario)})
    assert specs
    for spec in specs:
        exe = INSTALL / spec.pkg / "lib" / spec.pkg / spec.exec
        assert exe.is_file(), exe
        assert spec.namespace in ("/store", "store"), spec.namespace


def test_sim_launch_starts_the_whole_store():
    specs = load_launch(ROOT / "launch" / "sim.launch.yaml", {"run_dir": "/tmp/x"})
    names = sorted(s.name for s in specs)
    assert names == sorted(["gate_entry_1_reader", "gate_exit_1_reader", "scale_G1", "scale_G2", "scale_G3",
                            "receipt", "store_sim", "recorder", "store_description"])
    without_recorder = load_launch(ROOT / "launch" / "sim.launch.yaml", {"run_dir": "/tmp/x", "record": "false"})
    assert "recorder" not in {s.name for s in without_recorder}
