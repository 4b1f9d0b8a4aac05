"""URDF and RViz config generated from a store layout (the layout stays the source of truth).

Every device gets a fixed frame under `map` (REP-105: the store floor, x along the long wall, z up):
gondolas `G<g>_link`, shelves `G<g>S<s>_link`, plates `G<g>S<s>P<p>_link`, cameras `<cam>_link` with a
child `<cam>_optical_frame` (REP-103 optical convention), gates `<gate>_link`, UWB anchors `<uwb>_link`.
The same list of fixed transforms feeds the URDF and the store_description node's /tf_static, so
what RViz draws from /robot_description and what tf2 answers can never disagree.
"""
from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

import yaml

from storefuse_core.frames import OPTICAL_RPY, optical_to_link_rpy
from storefuse_core.layout import Store

MATERIALS = {"floor": (0.85, 0.85, 0.82, 1.0), "gondola": (0.45, 0.47, 0.5, 1.0), "shelf": (0.75, 0.75, 0.75, 1.0),
             "plate": (0.3, 0.55, 0.85, 1.0), "camera": (0.1, 0.1, 0.1, 1.0), "gate_entry": (0.2, 0.7, 0.3, 1.0),
             "gate_exit": (0.8, 0.25, 0.2, 1.0), "uwb": (0.55, 0.3, 0.75, 1.0)}


@dataclass(frozen=True)
class Box:
    size: tuple[float, float, float]
    offset: tuple[float, float, float]
    material: str


@dataclass(frozen=True)
class FixedJoint:
    """One fixed transform: child frame's pose in the parent frame (xyz metres, URDF rpy radians)."""
    parent: str
    child: str
    xyz: tuple[float, float, float]
    rpy: tuple[float, float, float]
    visual: Box | None = None

    @property
    def name(self) -> str:
        return f"{self.parent}_to_{self.child}"


def plate_frame(plate_id: str) -> str:
    return f"{plate_id}_link"


def optical_frame(camera_id: str) -> str:
    return f"{camera_id}_optical_frame"


def fixed_joints(store: Store) -> list[FixedJoint]:
    """Every fixed transform of the store, parents before children, in a stable order."""
    joints = []
    for g in store.gondolas.values():
        top = max(store.shelves[s].height_m for s in g.shelf_ids)
        back = Box((g.length_m, 0.04, top + 0.25), (0.0, g.depth_m / 2 - 0.02, (top + 0.25) / 2), "gondola")
        joints.append(FixedJoint("map", f"{g.id}_link", (g.x, g.y, 0.0), (0.0, 0.0, g.yaw), back))
        for sid in g.shelf_ids:
            shelf = store.shelves[sid]
            board = Box((g.length_m, g.depth_m, 0.02), (0.0, 0.0, -0.012), "shelf")
            joints.append(FixedJoint("map", f"{sid}_link", (g.x, g.y, shelf.height_m), (0.0, 0.0, g.yaw), board))
            for pid in shelf.plate_ids:
                p = store.plates[pid]
                top = Box((p.width_m * 0.94, p.depth_m * 0.9, 0.012), (0.0, 0.0, 0.006), "plate")
                joints.append(FixedJoint("map", plate_frame(pid), (p.x, p.y, p.z), (0.0, 0.0, p.yaw), top))
    for c in store.cameras.values():
        body = Box((0.12, 0.08, 0.06), (-0.06, 0.0, 0.0), "camera")
        joints.append(FixedJoint("map", f"{c.id}_link", c.pose[:3], optical_to_link_rpy(c.pose[3:]), body))
        joints.append(FixedJoint(f"{c.id}_link", optical_frame(c.id), (0.0, 0.0, 0.0), OPTICAL_RPY))
    for gate in store.gates.values():
        post = Box((0.2, 0.2, 1.0), (0.0, gate.width_m / 2 + 0.1, 0.5), f"gate_{gate.direction}")
        joints.append(FixedJoint("map", f"{gate.id}_link", (gate.x, gate.y, 0.0), (0.0, 0.0, gate.yaw), post))
    for a in store.uwb_anchors.values():
        joints.append(FixedJoint("map", f"{a.id}_link", (a.x, a.y, a.z), (0.0, 0.0, 0.0),
                                 Box((0.08, 0.08, 0.08), (0.0, 0.0, 0.0), "uwb")))
    return joints


def _f(v: float) -> str:
    s = f"{round(float(v), 6) + 0.0:.6f}".rstrip("0").rstrip(".")
    return "0" if s in ("", "-0") else s


def _v(values) -> str:
    return " ".join(_f(v) for v in values)


def store_urdf(store: Store) -> str:
    """The store as URDF: root link `map` with the floor, a fixed joint to every device link."""
    length, width = store.floor_size
    out = ['<?xml version="1.0"?>',
           f"<!-- GENERATED from urdf_store/{store.name}/layout.yaml by `storefuse urdf`: do not edit. -->",
           f"<robot name={quoteattr(store.name)}>"]
    out += [f'  <material name="{m}"><color rgba="{_v(rgba)}"/></material>' for m, rgba in MATERIALS.items()]
    out.append(_link("map", Box((length, width, 0.01), (length / 2, width / 2, -0.005), "floor")))
    for j in fixed_joints(store):
        out.append(_link(j.child, j.visual))
        out.append(f'  <joint name="{j.name}" type="fixed"><parent link="{j.parent}"/><child link="{j.child}"/>'
                   f'<origin xyz="{_v(j.xyz)}" rpy="{_v(j.rpy)}"/></joint>')
    out.append("</robot>")
    return "\n".join(out) + "\n"


def _link(name: str, box: Box | None) -> str:
    if box is None:
        return f'  <link name="{name}"/>'
    return (f'  <link name="{name}"><visual><origin xyz="{_v(box.offset)}" rpy="0 0 0"/>'
            f'<geometry><box size="{_v(box.size)}"/></geometry><material name="{box.material}"/></visual></link>')


def rviz_config(store: Store, namespace: str = "store") -> str:
    """An RViz2 config: fixed frame map, the store model from /robot_description, TF, the markers."""
    length, width = store.floor_size
    latched = {"Depth": 1, "Durability Policy": "Transient Local", "History Policy": "Keep Last",
               "Reliability Policy": "Reliable"}
    few_frames = len(store.plates) < 400
    displays = [
        {"Alpha": 0.5, "Cell Size": 1, "Class": "rviz_default_plugins/Grid", "Color": "160; 160; 164",
         "Enabled": True, "Name": "Grid", "Plane": "XY", "Plane Cell Count": int(max(length, width)) + 2,
         "Offset": {"X": round(length / 2, 3), "Y": round(width / 2, 3), "Z": 0},
         "Reference Frame": "<Fixed Frame>", "Value": True},
        {"Alpha": 1, "Class": "rviz_default_plugins/RobotModel", "Collision Enabled": False,
         "Description File": "", "Description Source": "Topic",
         "Description Topic": {**latched, "Value": "/robot_description"}, "Enabled": True,
         "Name": f"{store.name} (layout)", "TF Prefix": "", "Update Interval": 0, "Value": True,
         "Visual Enabled": True},
        {"Class": "rviz_default_plugins/TF", "Enabled": True, "Frame Timeout": 15,
         "Frames": {"All Enabled": True}, "Marker Scale": 0.3, "Name": "TF", "Show Arrows": False,
         "Show Axes": few_frames, "Show Names": False, "Update Interval": 0, "Value": few_frames},
        {"Class": "rviz_default_plugins/MarkerArray", "Enabled": True, "Name": "Store markers",
         "Namespaces": {}, "Topic": {**latched, "Value": f"/{namespace}/markers"}, "Value": True},
    ]
    config = {
        "Panels": [{"Class": "rviz_common/Displays", "Name": "Displays"},
                   {"Class": "rviz_common/Views", "Name": "Views"}],
        "Visualization Manager": {
            "Class": "", "Displays": displays, "Enabled": True,
            "Global Options": {"Background Color": "48; 48; 48", "Fixed Frame": "map", "Frame Rate": 30},
            "Name": "root",
            "Tools": [{"Class": "rviz_default_plugins/Interact"}, {"Class": "rviz_default_plugins/MoveCamera"},
                      {"Class": "rviz_default_plugins/Select"}, {"Class": "rviz_default_plugins/FocusCamera"},
                      {"Class": "rviz_default_plugins/Measure"}],
            "Value": True,
            "Views": {"Current": {"Class": "rviz_default_plugins/Orbit", "Distance": round(1.1 * max(length, width), 2),
                                  "Focal Point": {"X": round(length / 2, 3), "Y": round(width / 2, 3), "Z": 0},
                                  "Name": "Current View", "Pitch": 0.9, "Target Frame": "<Fixed Frame>",
                                  "Value": "Orbit (rviz_default_plugins)", "Yaw": 4.71},
                      "Saved": None},
        },
        "Window Geometry": {"Height": 900, "Width": 1400},
    }
    header = (f"# GENERATED from urdf_store/{store.name}/layout.yaml by `storefuse urdf`: do not edit.\n"
              f"# rviz2 -d launch/{store.name}.rviz, with the store_description node running "
              f"(namespace /{namespace}).\n")
    return header + yaml.safe_dump(config, sort_keys=False, width=120)
