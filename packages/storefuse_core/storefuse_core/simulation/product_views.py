"""What the simulated cameras' product classifier reports: an item seen in a shopper's hand.

For each pick and put-back of the world, every ceiling camera with the hand in its image renders
the package as it saw it (vision/package.py:
its size in pixels from the camera's distance, a random hand over part of it, the light, motion
blur, noise, JPEG) and classifies the crop among the products of that gondola
(vision/product_classifier.py) — the camera host's work, so only the answer leaves it. Some actions
are not seen well enough by a camera to classify (the shopper's own body between camera and hand):
the sensors' `product_view_rate` is the share that is, per camera. An item handed from one shopper to another is seen
between them, away from any shelf: the camera host then classifies among every product of the store.

The camera host's pose estimate also links the hand at a shelf to a body: the reported floor point is
the reaching shopper's, with the error of a skeleton's hip point, unless the arm passes close to
another body in the image (a crowded shelf), which may then take the hand; some hands link to no body
at all (the arm hidden), and a body outside the image is never reported.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from storefuse_core.events import ProductView
from storefuse_core.simulation.world import LIFT_AT_S, REACH_S, T0_NS, World, _position

PACKAGE_M = 0.18            # the longer side of a typical package
TOP_K = 8                   # the classifier's answer as sent: its most likely products
MIN_PIXELS = 6.0            # smaller than this, nothing is classified
HAND_OVER_SEEN_S = 0.7      # before the hand-over ends (the pair stand together for 1.5 s)
HAND_HEIGHT_M = 1.1
LINK_RATE = 0.85            # hands at a shelf a pose estimate links to some body
BODY_SD_M = 0.1             # a linked body's floor point around where the person stands
MISLINK_MAX = 0.15          # that a body standing right on the reaching arm takes the hand ...
MISLINK_M = 0.3             # ... falling off with its distance from the arm (a Gaussian of this sd)
BODY_HEIGHT_M = 1.0         # the point of a body that must be in the image for a link
NAN = float("nan")          # a hand linked to no body


class ProductViewSim:
    def __init__(self, world: World, classifier=None):
        from storefuse_core.vision.camera import cameras_of
        from storefuse_core.vision.product_classifier import ProductClassifier
        sc = world.scenario
        self.world, self.store = world, world.store
        self.cameras = cameras_of(world.store, "rgb")
        self.classifier = classifier or ProductClassifier(world.store)     # the cameras' one trained model
        self.rate = sc.sensors["product_view_rate"]
        self.period_ns = int(1e9 / sc.sensors["camera_rate_hz"])
        self.dropouts = [(f["camera"], f.get("at_s", 0.0), f.get("at_s", 0.0) + f.get("for_s", 1e9))
                         for f in sc.faults if f["kind"] == "camera_dropout"]
        self.rng = np.random.default_rng([sc.seed, 0x5F1E])     # its own stream: the world's stays as it was
        self.link_rng = np.random.default_rng([sc.seed, 0xB0D1])     # ... and the pose links theirs
        self._held = sorted(sku for sku, p in world.store.products.items() if p.plates)    # all a hand can hold
        self.pending = sorted(self._sightings(), key=lambda s: (s[0], s[1]))

    def _sightings(self) -> list[tuple[int, str, ProductView]]:
        out = []
        for ev in self.world.timeline.events:
            if ev["kind"] == "hand_over" and ev["qty"] > 0 and ev.get("to") in self.world.timeline.trajectories:
                out += self._hand_over_views(ev, self._frame(ev["t_ns"] - int(HAND_OVER_SEEN_S * 1e9)))
            elif ev["kind"] in ("pick", "put") and ev["plates"]:
                # the item is in the open hand just after it left the shelf, or just before it lands
                lift = (REACH_S - LIFT_AT_S) if ev["kind"] == "pick" else -0.3
                out += self._views(ev, self._frame(ev["t_ns"] + int(lift * 1e9)))
        return out

    def _frame(self, t_ns: int) -> int:
        """The first camera frame at or after t_ns."""
        return T0_NS + -(-(t_ns - T0_NS) // self.period_ns) * self.period_ns

    def _views(self, ev: dict, t_ns: int) -> list[tuple[int, str, ProductView]]:
        plate = self.store.plates[ev["plates"][0]]
        x, y, z = self.world._reach_point(plate.id)
        skus = list(self.store.gondola_skus(plate.gondola_id))      # what the camera host classifies among
        seen = self._seen(ev["sku"], t_ns, x, y, z, plate.gondola_id, plate.shelf_id, skus)
        if not seen:
            return seen
        people = {p.id: (p.x, p.y) for p in self.world.people_at((t_ns - T0_NS) / 1e9)}
        if ev["shopper"] not in people:
            return seen
        out = []
        for t, cid, view in seen:
            bx, by = self._link(self.cameras[cid], ev["shopper"], people, (x, y))
            out.append((t, cid, replace(view, body_x=bx, body_y=by)))
        return out

    def _link(self, cam, reacher: str, people: dict, hand: tuple[float, float]) -> tuple[float, float]:
        """The floor point this camera's pose estimate gives the body of the hand (NaN: none)."""
        rng = self.link_rng
        u, pick = rng.random(), rng.random()
        noise = rng.normal(0.0, BODY_SD_M, 2)
        if u >= LINK_RATE:
            return NAN, NAN
        ax, ay = people[reacher]
        odds = [(MISLINK_MAX * math.exp(-0.5 * (_to_segment(px, py, ax, ay, *hand) / MISLINK_M) ** 2), sid)
                for sid, (px, py) in sorted(people.items()) if sid != reacher]
        who, acc = reacher, 0.0
        for p, sid in odds:
            acc += p
            if pick < acc:
                who = sid
                break
        bx, by = people[who]
        uv, depth = cam.project(np.array([[bx, by, BODY_HEIGHT_M]]))
        if depth[0] <= 0 or not cam.in_image(uv)[0]:
            return NAN, NAN
        return round(float(bx + noise[0]), 3), round(float(by + noise[1]), 3)

    def _hand_over_views(self, ev: dict, t_ns: int) -> list[tuple[int, str, ProductView]]:
        t_s = (t_ns - T0_NS) / 1e9
        trajectories = self.world.timeline.trajectories
        (xa, ya), (xb, yb) = _position(trajectories[ev["shopper"]], t_s), _position(trajectories[ev["to"]], t_s)
        return self._seen(ev["sku"], t_ns, (xa + xb) / 2, (ya + yb) / 2, HAND_HEIGHT_M, "", "", self._held)

    def _seen(self, sku: str, t_ns: int, x: float, y: float, z: float, gondola_id: str, shelf_id: str,
              skus: list[str]) -> list[tuple[int, str, ProductView]]:
        """Every camera that has the hand in its image sees the item, each with its own view of it
        (angle, fingers, blur) and its own chance of a clear enough one."""
        from storefuse_core.vision.package import look_of, render_view
        t_s = (t_ns - T0_NS) / 1e9
        out = []
        rng = self.rng
        for cid, cam in self.cameras.items():
            if any(c == cid and a <= t_s < b for c, a, b in self.dropouts):
                continue
            uv, depth = cam.project(np.array([[x, y, z]]))
            if depth[0] <= 0 or not cam.in_image(uv, margin=8)[0]:
                continue
            pixels = cam.fx * PACKAGE_M / float(depth[0])
            if pixels < MIN_PIXELS or rng.random() >= self.rate:
                continue
            image = render_view(look_of(self.store.products[sku]), rng, pixels,
                                gain=float(rng.uniform(0.65, 1.25)),
                                tint=tuple(float(v) for v in rng.normal(1.0, 0.05, 3)),
                                occlusion=float(rng.uniform(0.0, 0.5)), blur_px=float(rng.uniform(0.0, 1.5)),
                                noise_sd=float(rng.uniform(1.5, 4.0)))
            probs = self.classifier.classify(image, skus)
            top = sorted(probs.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_K]
            out.append((t_ns, cid, ProductView(t_ns, cid, gondola_id, shelf_id, float(x), float(y), float(z),
                                               round(float(pixels), 2),
                                               tuple((k, round(float(p), 6)) for k, p in top))))
        return out

    def outputs_until(self, t_end_ns: int) -> list[tuple[int, str, list[ProductView]]]:
        """(stamp, camera, views) per camera frame with views, up to t_end_ns, in stamp order."""
        out: dict[tuple[int, str], list[ProductView]] = {}
        while self.pending and self.pending[0][0] < t_end_ns:
            t_ns, cid, view = self.pending.pop(0)
            out.setdefault((t_ns, cid), []).append(view)
        return [(t, c, v) for (t, c), v in sorted(out.items())]


def _to_segment(px: float, py: float, ax: float, ay: float, bx: float, by: float) -> float:
    """Distance on the floor from (px, py) to the arm from the body (ax, ay) to the hand (bx, by)."""
    dx, dy = bx - ax, by - ay
    f = 0.0 if dx == dy == 0 else min(1.0, max(0.0, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)))
    return math.hypot(px - ax - f * dx, py - ay - f * dy)
