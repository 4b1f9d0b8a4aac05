"""Launch files: valid ROS 2 launch YAML for the runner, and every node they name is installed
where real `ros2 launch` looks for it (ros2_ws/install/<pkg>/lib/<pkg>/<exec>)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from storefuse_core.layout import load_store
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
                            "receipt", "store_sim", "recorder", "store_description",
                            "cart_1_localizer", "cart_2_localizer"])
    without_recorder = load_launch(ROOT / "launch" / "sim.launch.yaml", {"run_dir": "/tmp/x", "record": "false"})
    assert "recorder" not in {s.name for s in without_recorder}


# The device drivers of issue 5: each one must start from the store's launch file.
DRIVERS = {"gate_reader", "shelf_scale", "camera", "depth_camera", "cart_localizer"}
STORE_LAUNCH = ROOT / "launch" / "minimart.launch.yaml"


def _node_entries(entries, path):
    """Every node entry of a launch file and the files it includes, whatever its condition says."""
    for entry in entries or []:
        for key, body in entry.items():
            if key == "node":
                yield path, body
            elif key == "group":
                yield from _node_entries(body.get("children"), path)
            elif key == "include":
                inc = ROOT / "launch" / body["file"].replace("$(dirname)/", "")
                yield from _node_entries(yaml.safe_load(inc.read_text())["launch"], inc)


def _params(spec) -> dict:
    return {p[0]: p[1] for p in spec.params if isinstance(p, tuple)}


def test_every_driver_is_in_the_store_launch_file():
    nodes_dir = ROOT / "packages" / "storefuse_nodes" / "storefuse_nodes"
    for exe in DRIVERS:                                   # each is a node module of storefuse_nodes ...
        assert (nodes_dir / f"{exe}.py").is_file(), exe
    execs = {body["exec"] for _, body in _node_entries(yaml.safe_load(STORE_LAUNCH.read_text())["launch"],
                                                        STORE_LAUNCH)}
    assert DRIVERS <= execs, DRIVERS - execs              # ... and the store launch file starts it


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=[p.name for p in LAUNCH_FILES])
def test_every_referenced_exec_is_installed_even_behind_a_condition(path):
    entries = list(_node_entries(yaml.safe_load(path.read_text())["launch"], path))
    assert entries
    for where, body in entries:
        exe = INSTALL / body["pkg"] / "lib" / body["pkg"] / body["exec"]
        assert exe.is_file(), f"{where.name}: {exe} (run scripts/setup.sh)"


def test_store_launch_has_one_driver_per_layout_device():
    store = load_store("minimart")
    specs = load_launch(STORE_LAUNCH)
    by_exec: dict[str, list[dict]] = {}
    for spec in specs:
        by_exec.setdefault(spec.exec, []).append(_params(spec))
    assert sorted(p["gate_id"] for p in by_exec["gate_reader"]) == sorted(store.gates)
    assert sorted(p["board_id"] for p in by_exec["shelf_scale"]) == sorted(store.boards)
    rgb = sorted(c for c, cam in store.cameras.items() if cam.kind == "rgb")
    assert sorted(p["camera_id"] for p in by_exec["camera"]) == rgb
    assert sorted(p["cart_id"] for p in by_exec["cart_localizer"]) == sorted(store.carts)
    assert "depth_camera" not in by_exec                  # the minimart has no depth camera ...
    assert not any(c.kind == "depth" for c in store.cameras.values())
    with_depth = load_launch(STORE_LAUNCH, {"depth_camera": "cam9"})   # ... a store that adds one names it
    depth = [s for s in with_depth if s.exec == "depth_camera"]
    assert [(s.name, _params(s)["camera_id"]) for s in depth] == [("cam9", "cam9")]
    for spec in specs:                                    # every node reads the shared parameter file
        if spec.exec != "store_description":
            files = [Path(p).resolve() for p in spec.params if not isinstance(p, tuple)]
            assert (ROOT / "config" / "storefuse.yaml").resolve() in files, spec.name


def test_sim_launch_has_one_detections_publisher_per_camera():
    """frames:=false: the simulator's model detections and no camera node; frames:=true: rendered
    frames for the real camera nodes and no model detections. Never both on cameras/<id>/detections."""
    default = load_launch(ROOT / "launch" / "sim.launch.yaml", {"run_dir": "/tmp/x"})
    assert not [s for s in default if s.exec == "camera"]
    assert _params(next(s for s in default if s.exec == "store_sim"))["camera_frames"] is False
    frames = load_launch(ROOT / "launch" / "sim.launch.yaml", {"run_dir": "/tmp/x", "frames": "true"})
    rgb = sorted(c for c, cam in load_store("minimart").cameras.items() if cam.kind == "rgb")
    assert sorted(s.name for s in frames if s.exec == "camera") == rgb
    assert _params(next(s for s in frames if s.exec == "store_sim"))["camera_frames"] is True
    no_carts = load_launch(ROOT / "launch" / "sim.launch.yaml", {"run_dir": "/tmp/x", "carts": "false"})
    assert not [s for s in no_carts if s.exec == "cart_localizer"]


def _declared(module: str) -> set[str]:
    """Parameters a node module declares (literal names, plus '<prefix>.*' for a declared group)."""
    src = (ROOT / "packages" / "storefuse_nodes" / "storefuse_nodes" / f"{module}.py").read_text()
    names = set(re.findall(r'declare_parameter\(\s*"([\w.]+)"', src))
    return names | {m + ".*" for m in re.findall(r'declare_parameter\(\s*f"(\w+)\.\{', src)}


def test_per_node_config_blocks_name_declared_parameters():
    """rclpy ignores an override no node declares: a typo in config/storefuse.yaml would pass silently."""
    doc = yaml.safe_load((ROOT / "config" / "storefuse.yaml").read_text())
    specs = {s.name: s for s in load_launch(STORE_LAUNCH)}
    blocks = {k.removeprefix("/**/"): v["ros__parameters"] for k, v in doc.items() if k != "/**"}
    store = load_store("minimart")
    assert set(store.cameras) | {f"{c}_localizer" for c in store.carts} <= set(blocks)
    for node, params in blocks.items():
        assert node in specs, f"config block for {node}, which no launch file starts"
        declared = _declared(specs[node].exec)
        flat = {f"{k}.{kk}" if isinstance(v, dict) else k for k, v in params.items()
                for kk in (v if isinstance(v, dict) else [None])}
        for key in flat:
            assert key in declared or key.split(".")[0] + ".*" in declared, f"{node}: {key} is not a parameter"
