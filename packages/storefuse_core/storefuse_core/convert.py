"""Domain records <-> ROS messages, for rclpy classes and rosbags classes alike.

Both kinds are built with keyword arguments and read by attribute, so one set of functions
serves the live nodes and the offline replay; only the class lookup and the numeric-array
container differ (MsgFactory).
"""
from __future__ import annotations

import array
import importlib

import numpy as np

from storefuse_core.events import Candidate, GateEvent, PlateBlock, ProductView, Receipt, ReceiptLine, ShelfEvent

P = "storefuse_interfaces/msg/"


class MsgFactory:
    def __init__(self, resolve, rclpy_arrays: bool):
        self.resolve = resolve
        self.rclpy_arrays = rclpy_arrays

    def __call__(self, msgtype: str, /, **fields):
        return self.resolve(msgtype)(**fields)

    def array(self, values: np.ndarray, typecode: str):
        """rclpy takes array.array without per-element checks; rosbags wants numpy."""
        dtype = {"f": np.float32, "d": np.float64, "q": np.int64, "B": np.uint8}[typecode]
        values = np.ascontiguousarray(values, dtype=dtype).ravel()
        if self.rclpy_arrays:
            out = array.array(typecode)
            out.frombytes(values.tobytes())
            return out
        return values


def rclpy_factory() -> MsgFactory:
    def resolve(name: str):
        pkg, kind, cls = name.split("/")
        return getattr(importlib.import_module(f"{pkg}.{kind}"), cls)
    return MsgFactory(resolve, rclpy_arrays=True)


def rosbags_factory(typestore) -> MsgFactory:
    return MsgFactory(lambda name: typestore.types[name], rclpy_arrays=False)


def stamp_ns(t) -> int:
    return int(t.sec) * 1_000_000_000 + int(t.nanosec)


def time_msg(f: MsgFactory, ns: int):
    return f("builtin_interfaces/msg/Time", sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


def header(f: MsgFactory, ns: int, frame_id: str):
    return f("std_msgs/msg/Header", stamp=time_msg(f, ns), frame_id=frame_id)


# ---- PlateWeights ------------------------------------------------------------------------------
def block_to_msg(f: MsgFactory, b: PlateBlock, frame_id: str):
    return f(P + "PlateWeights", header=header(f, int(b.stamps_ns[0]), frame_id), board_id=b.board_id,
             plate_count=int(b.grams.shape[1]), first_seq=int(b.first_seq),
             stamps_ns=f.array(b.stamps_ns, "q"), grams=f.array(b.grams, "f"),
             plate_status=f.array(b.plate_status, "B"))


def block_from_msg(m) -> PlateBlock:
    stamps = np.asarray(m.stamps_ns, dtype=np.int64)
    grams = np.asarray(m.grams, dtype=np.float32).reshape(len(stamps), int(m.plate_count))
    return PlateBlock(m.board_id, int(m.first_seq), stamps, grams, np.asarray(m.plate_status, dtype=np.uint8))


# ---- ShelfEvent --------------------------------------------------------------------------------
def shelf_event_to_msg(f: MsgFactory, e: ShelfEvent):
    cands = [f(P + "ProductCandidate", sku=c.sku, name=c.name, qty=int(c.qty), unit_grams=float(c.unit_grams),
               probability=float(c.probability)) for c in e.candidates]
    return f(P + "ShelfEvent", header=header(f, e.stamp_ns, f"{e.shelf_id}_link"), event_id=e.event_id,
             start=time_msg(f, e.start_ns), gondola_id=e.gondola_id, shelf_id=e.shelf_id,
             plate_ids=list(e.plate_ids), plate_deltas_grams=f.array(np.array(e.plate_deltas), "d"),
             delta_grams=float(e.delta_grams), noise_sd=float(e.noise_sd), kind=int(e.kind), candidates=cands)


def shelf_event_from_msg(m) -> ShelfEvent:
    return ShelfEvent(m.event_id, stamp_ns(m.header.stamp), stamp_ns(m.start), m.gondola_id, m.shelf_id,
                      list(m.plate_ids), [float(v) for v in m.plate_deltas_grams], float(m.delta_grams),
                      float(m.noise_sd), int(m.kind),
                      [Candidate(c.sku, c.name, int(c.qty), float(c.unit_grams), float(c.probability))
                       for c in m.candidates])


# ---- ProductViews ------------------------------------------------------------------------------
def product_views_to_msg(f: MsgFactory, camera_id: str, t_ns: int, views: list[ProductView], names: dict[str, str]):
    """One camera frame's product views (names: sku -> product name, for a human reading the bag)."""
    items = [f(P + "ProductView", gondola_id=v.gondola_id, shelf_id=v.shelf_id,
               position=f("geometry_msgs/msg/Point", x=float(v.x), y=float(v.y), z=float(v.z)),
               pixels=float(v.pixels),
               body=f("geometry_msgs/msg/Point", x=float(v.body_x), y=float(v.body_y), z=0.0),
               candidates=[f(P + "ProductCandidate", sku=sku, name=names.get(sku, ""), qty=0, unit_grams=0.0,
                             probability=float(p)) for sku, p in v.probabilities]) for v in views]
    return f(P + "ProductViews", header=header(f, t_ns, "map"), camera_id=camera_id, views=items)


def product_views_from_msg(m) -> list[ProductView]:
    """Views of a bag recorded before ProductView had `body` (read with the bag's own definition)
    come out unlinked."""
    t = stamp_ns(m.header.stamp)
    nan = float("nan")
    return [ProductView(t, m.camera_id, v.gondola_id, v.shelf_id, float(v.position.x), float(v.position.y),
                        float(v.position.z), float(v.pixels),
                        tuple((c.sku, float(c.probability)) for c in v.candidates),
                        *((float(v.body.x), float(v.body.y)) if hasattr(v, "body") else (nan, nan)))
            for v in m.views]


# ---- GateEvent ---------------------------------------------------------------------------------
def gate_event_to_msg(f: MsgFactory, e: GateEvent):
    return f(P + "GateEvent", header=header(f, e.stamp_ns, f"{e.gate_id}_link"), gate_id=e.gate_id,
             direction=e.direction, session_id=e.session_id, token_hash=e.token_hash,
             party_size=e.party_size, staff=e.staff, seq=e.seq)


def gate_event_from_msg(m) -> GateEvent:
    return GateEvent(stamp_ns(m.header.stamp), m.gate_id, int(m.direction), m.session_id, m.token_hash,
                     int(m.party_size), bool(m.staff), int(m.seq))


# ---- Receipt -----------------------------------------------------------------------------------
def receipt_to_msg(f: MsgFactory, r: Receipt):
    lines = [f(P + "ReceiptLine", sku=ln.sku, name=ln.name, qty=int(ln.qty), unit_price=float(ln.unit_price),
               confidence=float(ln.confidence), evidence_ids=list(ln.evidence_ids)) for ln in r.lines]
    return f(P + "Receipt", header=header(f, r.stamp_ns, "map"), session_id=r.session_id,
             status=int(r.status), status_reason=r.status_reason, revision=int(r.revision), lines=lines,
             total=float(r.total), currency=r.currency, confidence=float(r.confidence))


def receipt_from_msg(m) -> Receipt:
    lines = [ReceiptLine(ln.sku, ln.name, int(ln.qty), float(ln.unit_price), float(ln.confidence),
                         list(ln.evidence_ids)) for ln in m.lines]
    return Receipt(m.session_id, stamp_ns(m.header.stamp), int(m.status), m.status_reason, int(m.revision),
                   lines, float(m.total), m.currency, float(m.confidence))


def watermark_to_msg(f: MsgFactory, source: str, ns: int, items_published: int):
    return f(P + "Watermark", header=header(f, ns, source), items_published=int(items_published))


# ---- carts -------------------------------------------------------------------------------------
def cart_message(f: MsgFactory, m) -> tuple[str, object]:
    """A simulated cart's message (simulation.devices.CartMessage) -> (leaf topic, ROS message)."""
    link = f"{m.cart_id}/base_link"
    d = m.data
    if m.kind == "uwb":
        return "uwb", f(P + "UwbRanges", header=header(f, m.t_ns, link), cart_id=m.cart_id,
                        anchor_ids=list(d["anchor_ids"]), ranges_m=f.array(np.array(d["ranges"]), "f"),
                        quality=f.array(np.array(d["quality"]), "f"))
    if m.kind == "event":
        return "events", f(P + "CartEvent", header=header(f, m.t_ns, link), cart_id=m.cart_id, kind=int(d["kind"]),
                           barcode=d["barcode"], delta_grams=float(d["delta"]), total_grams=float(d["total"]),
                           noise_sd=float(d["sd"]), seq=int(d["seq"]))
    half = d["yaw"] / 2
    cov = np.zeros(36)
    cov[0] = cov[7] = 0.01
    cov[35] = 0.005
    pose = f("geometry_msgs/msg/PoseWithCovariance",
             pose=f("geometry_msgs/msg/Pose",
                    position=f("geometry_msgs/msg/Point", x=float(d["x"]), y=float(d["y"]), z=0.0),
                    orientation=f("geometry_msgs/msg/Quaternion", x=0.0, y=0.0, z=float(np.sin(half)),
                                  w=float(np.cos(half)))),
             covariance=f.array(cov, "d"))
    twist = f("geometry_msgs/msg/TwistWithCovariance",
              twist=f("geometry_msgs/msg/Twist", linear=f("geometry_msgs/msg/Vector3", x=float(d["v"]), y=0.0, z=0.0),
                      angular=f("geometry_msgs/msg/Vector3", x=0.0, y=0.0, z=float(d["w"]))),
              covariance=f.array(cov, "d"))
    return "odom", f("nav_msgs/msg/Odometry", header=header(f, m.t_ns, f"{m.cart_id}/odom"),
                     child_frame_id=link, pose=pose, twist=twist)


# ---- cameras -----------------------------------------------------------------------------------
def detections_to_msg(f: MsgFactory, camera_id: str, stamp: int, detections) -> object:
    dets = [f(P + "PersonDetection", position=f("geometry_msgs/msg/Point", x=float(d.x), y=float(d.y), z=float(d.z)),
              covariance=f.array(np.asarray(d.cov, dtype=np.float64), "d"), score=float(d.score),
              appearance=f.array(np.asarray(d.appearance, dtype=np.float32), "f")) for d in detections]
    return f(P + "PersonDetections", header=header(f, stamp, "map"), camera_id=camera_id, detections=dets)


def image_to_msg(f: MsgFactory, camera_id: str, stamp: int, jpeg: bytes) -> object:
    return f("sensor_msgs/msg/CompressedImage", header=header(f, stamp, f"{camera_id}_optical_frame"), format="jpeg",
             data=f.array(np.frombuffer(jpeg, dtype=np.uint8), "B"))


class TrackedDetection:
    """A PersonDetection as the shopper tracker reads it (x, y, cov, score, appearance)."""
    __slots__ = ("x", "y", "cov", "score", "appearance")

    def __init__(self, d):
        self.x, self.y, self.cov, self.score = d.position.x, d.position.y, list(d.covariance), d.score
        self.appearance = np.asarray(d.appearance, dtype=np.float32)


def detections_from_msg(m) -> list[TrackedDetection]:
    return [TrackedDetection(d) for d in m.detections]
