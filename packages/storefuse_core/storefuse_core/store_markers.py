"""The store as ROS messages for the integrator's check in RViz: /tf_static and a MarkerArray.

Built through a MsgFactory (storefuse_core.convert) so this stays ROS-free and testable with plain
pytest. Markers show what boxes cannot: plates coloured by the product the planogram puts there
(labelled with plate id and product), camera frusta (in each optical frame, so a wrong transform
shows as a frustum pointing the wrong way), gate zones, deal zones and UWB anchors.
"""
from __future__ import annotations

import colorsys
import zlib

from storefuse_core.frames import quaternion
from storefuse_core.layout import Store
from storefuse_core.urdf import fixed_joints, optical_frame, plate_frame

M = "visualization_msgs/msg/Marker"
CUBE, SPHERE_LIST, LINE_STRIP, LINE_LIST, TEXT = 1, 7, 4, 5, 9
ADD, DELETEALL = 0, 3
EMPTY_PLATE = (0.6, 0.6, 0.6, 0.6)


def tf_static(f, store: Store):
    """tf2_msgs/TFMessage with every fixed transform of the store's URDF (stamp 0: valid forever)."""
    transforms = []
    for j in fixed_joints(store):
        q = quaternion(*j.rpy)
        transforms.append(f(
            "geometry_msgs/msg/TransformStamped", header=_header(f, j.parent), child_frame_id=j.child,
            transform=f("geometry_msgs/msg/Transform", translation=f("geometry_msgs/msg/Vector3", x=float(j.xyz[0]),
                                                                     y=float(j.xyz[1]), z=float(j.xyz[2])),
                        rotation=f("geometry_msgs/msg/Quaternion", x=q[0], y=q[1], z=q[2], w=q[3]))))
    return f("tf2_msgs/msg/TFMessage", transforms=transforms)


def product_colour(sku: str) -> tuple[float, float, float, float]:
    """A stable colour per product (hue from a hash of the sku), so neighbours usually differ."""
    r, g, b = colorsys.hsv_to_rgb((zlib.crc32(sku.encode()) % 360) / 360.0, 0.65, 0.9)
    return r, g, b, 0.9


def marker_array(f, store: Store):
    markers = [f(M, header=_header(f, "map"), action=DELETEALL)]     # a restarted node leaves no stale marks
    ids: dict[str, int] = {}

    def add(ns, kind, frame="map", xyz=(0.0, 0.0, 0.0), yaw=0.0, scale=(1.0, 1.0, 1.0), rgba=(1, 1, 1, 1),
            points=(), text=""):
        q = quaternion(0.0, 0.0, yaw)
        ids[ns] = ids.get(ns, -1) + 1
        markers.append(f(
            M, header=_header(f, frame), ns=ns, id=ids[ns],
            type=kind, action=ADD,
            pose=f("geometry_msgs/msg/Pose", position=_point(f, xyz),
                   orientation=f("geometry_msgs/msg/Quaternion", x=q[0], y=q[1], z=q[2], w=q[3])),
            scale=f("geometry_msgs/msg/Vector3", x=float(scale[0]), y=float(scale[1]), z=float(scale[2])),
            color=f("std_msgs/msg/ColorRGBA", r=float(rgba[0]), g=float(rgba[1]), b=float(rgba[2]),
                    a=float(rgba[3])),
            points=[_point(f, p) for p in points], text=text))

    for pid, p in store.plates.items():
        skus = store.plate_products.get(pid, ())
        rgba = product_colour(skus[0]) if skus else EMPTY_PLATE
        add("plates", CUBE, plate_frame(pid), (0.0, 0.0, 0.015), 0.0, (p.width_m * 0.9, p.depth_m * 0.8, 0.02), rgba)
        label = pid + "".join(f"\n{store.products[s].name.strip()}" for s in skus)
        add("plate_labels", TEXT, plate_frame(pid), (0.0, -p.depth_m / 2, 0.08), text=label,
            scale=(0.0, 0.0, 0.035), rgba=(1, 1, 1, 0.9))
    for c in store.cameras.values():
        add("camera_frusta", LINE_LIST, optical_frame(c.id), scale=(0.015, 0.0, 0.0),
            rgba=(1.0, 0.6, 0.1, 0.9) if c.kind == "depth" else (0.2, 0.6, 1.0, 0.9), points=_frustum(c))
        add("camera_labels", TEXT, "map", (c.pose[0], c.pose[1], c.pose[2] + 0.2), text=f"{c.id} ({c.kind})",
            scale=(0.0, 0.0, 0.15))
    for g in store.gates.values():
        rgba = (0.2, 0.8, 0.3, 0.45) if g.direction == "entry" else (0.9, 0.25, 0.2, 0.45)
        add("gate_zones", CUBE, "map", (g.x, g.y, 0.01), g.yaw, (g.width_m, g.width_m, 0.02), rgba)
        add("gate_labels", TEXT, "map", (g.x, g.y, 1.2), text=g.id, scale=(0.0, 0.0, 0.2))
    for z in store.deal_zones.values():
        outline = [(x, y, 0.03) for x, y in z.polygon + z.polygon[:1]]
        add("deal_zones", LINE_STRIP, "map", scale=(0.05, 0.0, 0.0), rgba=(1.0, 0.85, 0.1, 0.9), points=outline)
        cx = sum(x for x, _ in z.polygon) / len(z.polygon)
        cy = sum(y for _, y in z.polygon) / len(z.polygon)
        add("deal_labels", TEXT, "map", (cx, cy, 0.5), text=f"{z.id}: {z.description}", scale=(0.0, 0.0, 0.25),
            rgba=(1.0, 0.9, 0.3, 1.0))
    if store.uwb_anchors:
        add("uwb_anchors", SPHERE_LIST, "map", scale=(0.15, 0.15, 0.15), rgba=(0.6, 0.3, 0.8, 1.0),
            points=[(a.x, a.y, a.z) for a in store.uwb_anchors.values()])
    return f("visualization_msgs/msg/MarkerArray", markers=markers)


def _frustum(c) -> list[tuple[float, float, float]]:
    """Apex-to-corner edges and the far rectangle, in the optical frame, cut at the floor or range."""
    down = -float(c.rotation()[2, 2])          # how much the view axis points down
    depth = min(c.range_m, c.pose[2] / down) if down > 0.1 else c.range_m
    corners = [((u - c.cx) / c.fx * depth, (v - c.cy) / c.fy * depth, depth)
               for u, v in ((0, 0), (c.width, 0), (c.width, c.height), (0, c.height))]
    points = []
    for i, corner in enumerate(corners):
        points += [(0.0, 0.0, 0.0), corner, corner, corners[(i + 1) % 4]]
    return points


def _header(f, frame: str):
    return f("std_msgs/msg/Header", stamp=f("builtin_interfaces/msg/Time", sec=0, nanosec=0), frame_id=frame)


def _point(f, xyz):
    return f("geometry_msgs/msg/Point", x=float(xyz[0]), y=float(xyz[1]), z=float(xyz[2]))
