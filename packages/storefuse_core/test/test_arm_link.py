"""The simulated camera host's pose link (simulation/product_views.py): whose body a camera gives the
hand holding an item. Crowding is the failure that matters: a body near the reaching arm can take it."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

from storefuse_core.simulation import product_views as pv


class _Camera:
    """Sees the floor within `half_m` of the origin (x and y)."""

    def __init__(self, half_m: float = 10.0):
        self.half_m = half_m

    def project(self, pts):
        return np.asarray(pts, float)[:, :2], np.ones(len(pts))

    def in_image(self, uv, margin=0.0):
        return np.all(np.abs(np.asarray(uv, float)) <= self.half_m, axis=1)


def _links(people, n=3000, cam=None, seed=1):
    host = SimpleNamespace(link_rng=np.random.default_rng(seed))
    hand = (0.0, 0.6)                                  # the reacher stands at the origin, the shelf ahead
    return [pv.ProductViewSim._link(host, cam or _Camera(), "a", people, hand) for _ in range(n)]


def _nearest(points, people):
    out = {}
    for bx, by in points:
        key = None if math.isnan(bx) else min(people, key=lambda k: math.hypot(people[k][0] - bx, people[k][1] - by))
        out[key] = out.get(key, 0) + 1
    return out


def test_a_reacher_alone_is_linked_with_a_hip_points_error():
    people = {"a": (0.0, 0.0), "b": (3.0, 0.0)}
    got = _links(people)
    linked = [p for p in got if not math.isnan(p[0])]
    assert abs(len(linked) / len(got) - pv.LINK_RATE) < 0.03
    err = np.array([math.hypot(x, y) for x, y in linked])
    assert err.max() < 0.6 and 0.08 < float(np.sqrt(np.mean(err ** 2))) / math.sqrt(2) < 0.12
    assert _nearest(linked, people).get("b", 0) == 0          # 3 m away: never takes the hand


def test_a_body_standing_on_the_arm_sometimes_takes_the_hand():
    people = {"a": (0.0, 0.0), "b": (0.05, 0.3)}            # right beside the arm
    counts = _nearest([p for p in _links(people) if not math.isnan(p[0])], people)
    share = counts.get("b", 0) / sum(counts.values())
    assert 0.08 < share < 0.2                                # MISLINK_MAX, nearly
    people = {"a": (0.0, 0.0), "b": (0.6, 0.0)}              # a neighbour at the same shelf
    counts = _nearest([p for p in _links(people) if not math.isnan(p[0])], people)
    assert 0 < counts.get("b", 0) / sum(counts.values()) < 0.05


def test_a_body_outside_the_image_is_never_reported():
    got = _links({"a": (0.0, 0.0)}, n=200, cam=_Camera(half_m=-1.0))
    assert all(math.isnan(x) and math.isnan(y) for x, y in got)


def test_views_round_trip_through_cdr_with_or_without_a_linked_body():
    from storefuse_core.bag import make_typestore
    from storefuse_core.convert import product_views_from_msg, product_views_to_msg, rosbags_factory
    from storefuse_core.events import ProductView
    store = make_typestore()
    f = rosbags_factory(store)
    views = [ProductView(5_000_000_000, "cam1", "G1", "G1S2", 1.0, 2.0, 1.1, 20.0, (("C", 0.9),), 1.2, 1.5),
             ProductView(5_000_000_000, "cam1", "G1", "G1S2", 3.0, 2.0, 1.1, 20.0, (("D", 0.8),))]
    t = "storefuse_interfaces/msg/ProductViews"
    raw = store.serialize_cdr(product_views_to_msg(f, "cam1", 5_000_000_000, views, {}), t)
    back = product_views_from_msg(store.deserialize_cdr(raw, t))
    assert [(v.linked, v.probabilities) for v in back] == [(True, (("C", 0.9),)), (False, (("D", 0.8),))]
    assert (back[0].body_x, back[0].body_y) == (1.2, 1.5)


def test_a_view_recorded_before_bodies_were_linked_reads_as_unlinked():
    from storefuse_core.convert import product_views_from_msg
    old = SimpleNamespace(gondola_id="G1", shelf_id="G1S2", position=SimpleNamespace(x=1.0, y=2.0, z=1.1),
                          pixels=20.0, candidates=[SimpleNamespace(sku="C", probability=0.9)])
    msg = SimpleNamespace(header=SimpleNamespace(stamp=SimpleNamespace(sec=5, nanosec=0)), camera_id="cam1",
                          views=[old])
    (v,) = product_views_from_msg(msg)
    assert not v.linked and v.probabilities == (("C", 0.9),)
