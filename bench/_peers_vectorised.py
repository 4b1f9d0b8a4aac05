"""A bench-only prototype of a suggestion for track.py (which this benchmark may not edit): the
association cost of every track/detection pair in one numpy pass (closed-form 2x2 inverse and
determinant) instead of one np.linalg.solve per pair, which the cProfile of the 100-shopper scene
shows is ~90 % of ShopperTracker's time. Same gates, same cost, same assignment; bench/tracker_peers.py
checks that its tracks equal ShopperTracker's on every stream before it reports its speed.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from storefuse_core.track import ShopperTracker


class VectorisedAssociation(ShopperTracker):
    def _associate(self, z: np.ndarray, R: list[np.ndarray]) -> list[tuple[int, int]]:
        if not len(self.tracks) or not len(z):
            return []
        X = np.array([t.x[:2] for t in self.tracks])
        r = z[None, :, :] - X[:, None, :]                        # tracks x detections x 2
        dist = np.hypot(r[..., 0], r[..., 1])
        near = dist <= self.p.max_jump_m
        big = 1e6
        cost = np.full(dist.shape, big)
        if not near.any():
            return []
        ti, di = np.nonzero(near)                                 # only pairs a shopper could walk
        P = np.array([t.P[:2, :2] for t in self.tracks])[ti] + np.array(R)[di]
        a, b, c, d = P[:, 0, 0], P[:, 0, 1], P[:, 1, 0], P[:, 1, 1]
        det = a * d - b * c
        rx, ry = r[ti, di, 0], r[ti, di, 1]
        d2 = (rx * (d * rx - b * ry) + ry * (a * ry - c * rx)) / det
        ok = d2 <= self.p.gate_chi2
        cost[ti[ok], di[ok]] = d2[ok] + np.log(det[ok])
        rows, cols = linear_sum_assignment(cost)
        return [(int(i), int(j)) for i, j in zip(rows, cols) if cost[i, j] < big]
