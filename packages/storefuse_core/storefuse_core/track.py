"""Shopper tracking: one constant-velocity Kalman filter per shopper, fed by every camera.

Split as Autoware's multi_object_tracker: motion model (predict with process noise from the dt of
the header stamps), association (Mahalanobis gating, a colour gate, scipy's linear_sum_assignment),
processor (update -> spawn -> prune). Identity comes from the gate: a track born near an entry gate within a
few seconds of an ENTRY scan is bound to that session (a party scanned in together binds as many
tracks as it has members); a bound track that is lost (occlusion, camera dropout, a blind spot)
hands its session to a new track that appears where it could have walked to and looks like it
(the cameras' colour descriptors). Track ids are derived from stamps, so a replay names tracks
identically.

Speed (issue 6): the states of all tracked shoppers live in stacked arrays (N x 4, N x 4 x 4), so
predict is one operation and association only looks closer at the few pairs within walking distance.
A camera frame holds one or two detections near a handful of tracks, where numpy's cost per call
is most of the time: up to _FEW_PAIRS pairs are gated (the closed form, operation for operation as
the arrays compute it) and updated (the 2x2 Kalman update written out) in plain floats; more (all
cameras merged into one frame) go through the arrays. The plain-float update rounds differently from
BLAS in the last bit only: on bench/tracker_peers.py's streams every track, id and identity is the
same either way, positions within 1e-13 m.
"""
from __future__ import annotations

import hashlib
import math
from collections import deque
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from storefuse_core.events import ENTRY, GateEvent
from storefuse_core.layout import Store
from storefuse_core.vision import appearance_distance

TENTATIVE, CONFIRMED, LOST = 0, 1, 2


@dataclass
class TrackerParams:
    accel_sd: float = 1.5            # m/s^2: how sharply a shopper may change pace or direction
    gate_chi2: float = 13.8          # 2 dof, 99.9 %: detections farther than this are not this track
    max_jump_m: float = 1.5          # ... nor any farther than this, however uncertain the track
    max_pos_sd_m: float = 1.0        # a coasting track's uncertainty stops growing here
    min_score: float = 0.5           # weaker detections update tracks but never start one
    meas_floor_sd: float = 0.2       # m: cameras disagree by this much on where one person stands
    confirm_hits: int = 3            # tentative until updated this often ...
    confirm_span_s: float = 0.25     # ... over at least this long (one instant seen by 3 cameras is not enough)
    lost_after_s: float = 1.0        # unseen this long: LOST (kept for re-identification)
    delete_after_s: float = 20.0     # unseen this long: gone
    entry_radius_m: float = 2.5      # a track born this close to an entry gate ...
    entry_window_s: float = 4.0      # ... this soon after an ENTRY scan takes its session
    walk_speed_mps: float = 2.0      # re-identification: how far a lost shopper may have walked
    history_s: float = 60.0          # positions kept per track, for attribution
    appearance_alpha: float = 0.1    # how fast a track's colour descriptor follows new detections
    reid_max_distance: float = 0.45  # Hellinger: a detection (or new track) farther from a track is someone else
    reid_window_s: float = 120.0     # a session unseen longer than this is not re-identified by motion
    appearance_weight: float = 8.0   # contested assignments: cost per unit of Hellinger distance ...
    appearance_neutral: float = 0.35  # ... and the distance assumed when a side has no colour


class Track:
    """One shopper hypothesis. While tracked, x (px, py, vx, vy) and P are views of its row in the
    tracker's stacked arrays, read fresh on every access; once dropped it keeps copies of its last."""

    def __init__(self, track_id: str, x: np.ndarray, P: np.ndarray, born_ns: int, last_ns: int, hits: int = 1,
                 state: int = TENTATIVE, session_id: str = "", identity: str = "",
                 history=None, appearance: np.ndarray | None = None):
        self.track_id = track_id
        self._x, self._P = x, P
        self._owner: ShopperTracker | None = None
        self._row = -1
        self.born_ns, self.last_ns, self.hits, self.state = born_ns, last_ns, hits, state
        self.session_id = session_id
        self.identity = identity                                  # the shopper it is (session#member)
        self.left = False                                         # walked out through the exit gate
        self.history: deque[tuple[int, float, float]] = deque(history or ())   # (stamp, x, y), oldest first
        self.appearance = appearance

    @property
    def x(self) -> np.ndarray:
        return self._x if self._owner is None else self._owner._X[self._row]

    @x.setter
    def x(self, value) -> None:
        if self._owner is None:
            self._x = value
        else:
            self._owner._X[self._row] = value

    @property
    def P(self) -> np.ndarray:
        return self._P if self._owner is None else self._owner._P[self._row]

    @P.setter
    def P(self, value) -> None:
        if self._owner is None:
            self._P = value
        else:
            self._owner._P[self._row] = value

    def __repr__(self) -> str:
        return (f"Track({self.track_id!r}, x={self.x!r}, state={self.state}, hits={self.hits}, "
                f"session_id={self.session_id!r}, identity={self.identity!r})")


_H = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0]])
_I4 = np.eye(4)
# pairs in one frame up to which plain floats beat numpy's cost per call (a camera's frame: 1-5 at
# ~10-100 shoppers); more (all cameras' detections merged into one frame) go through arrays
_FEW_PAIRS = 16


class ShopperTracker:
    def __init__(self, store: Store, params: TrackerParams | None = None):
        self.store = store
        self.p = params or TrackerParams()
        self.tracks: list[Track] = []
        self.now_ns: int | None = None
        self.entries: list[list] = []         # [GateEvent, members still to bind]
        self.members: dict[str, int] = {}      # session -> members bound so far
        self.retired: list[Track] = []         # deleted bound tracks: their history still says where they were
        self.exited: set[str] = set()
        self.reidentified = 0
        self.rejected = 0                      # detections without a usable position or covariance
        # rows 0..len(tracks)-1: tracks[i]'s state, covariance, last update and whether it is LOST
        self._X = np.zeros((0, 4))
        self._P = np.zeros((0, 4, 4))
        self._seen = np.zeros(0, dtype=np.int64)
        self._lost = np.zeros(0, dtype=bool)
        self._pruned_ns: int | None = None
        self._motion_cache: tuple = (None, None, None)

    # ---- inputs -------------------------------------------------------------------------------
    def on_gate(self, ev: GateEvent) -> None:
        if ev.direction == ENTRY:
            self.entries.append([ev, max(1, int(ev.party_size or 1))])
        elif ev.session_id:
            self.on_exit(ev.session_id, ev)

    def on_exit(self, session_id: str, ev: GateEvent) -> None:
        """A visit scanned out: its shoppers are leaving. Their tracks give the session up and are
        marked as leaving, so that they neither keep a closed session alive for re-identification nor
        take the next shopper's name; when none of them is in sight, the unnamed track standing at
        the exit gate is the one walking out."""
        if session_id:
            self.exited.add(session_id)
        leaving = [t for t in self.tracks if session_id and t.session_id == session_id]
        if not any(t.state == CONFIRMED for t in leaving):
            gate = self.store.gates.get(ev.gate_id)
            near = [] if gate is None else sorted(
                (math.hypot(t.x[0] - gate.x, t.x[1] - gate.y), t.track_id, t) for t in self.tracks
                if not t.session_id and not t.left and t.state == CONFIRMED)
            if near and near[0][0] <= self.p.entry_radius_m:
                leaving.append(near[0][2])
        for t in leaving:
            t.session_id, t.left = "", True

    def on_detections(self, stamp_ns: int, detections) -> None:
        """One camera frame's detections (objects with x, y, cov (9), score), in stamp order."""
        self._predict(stamp_ns)
        if len(detections):
            # x, y and the 3x3 covariance of each detection, a row each; R: the position block plus the
            # floor, in plain floats ((a, b), (c, d)) as association and update read it
            rows = np.array([(d.x, d.y, *d.cov) for d in detections], dtype=float).reshape(len(detections), 11)
            floor = self.p.meas_floor_sd ** 2       # (a zero covariance is fine: the floor is added)
            R, ok = [], []
            for row in rows.tolist():
                _, _, sxx, sxy, _, syx, syy, *_ = row
                rxx, ryy = sxx + floor, syy + floor
                good = all(map(math.isfinite, row)) and rxx > 0 and rxx * ryy - sxy * syx > 0
                ok.append(good)
                if good:
                    R.append(((rxx, sxy + 0.0), (syx + 0.0, ryy)))
            if not all(ok):         # a broken camera host's detection says nowhere: counted, never a track
                self.rejected += ok.count(False)
                detections = [d for d, good in zip(detections, ok) if good]
                rows = rows[np.array(ok)]
        if len(detections):
            z = rows[:, :2]
            pairs = self._associate(z, R, detections)
            if pairs:
                self._update_all(pairs, z, R, stamp_ns, detections)
            used = {di for _, di in pairs}
            for di, d in enumerate(detections):
                if di not in used and d.score >= self.p.min_score:
                    self._spawn(z[di], R[di], stamp_ns, getattr(d, "appearance", None))
        self._prune(stamp_ns)

    # ---- motion model -------------------------------------------------------------------------
    def _predict(self, stamp_ns: int) -> None:
        n = len(self.tracks)
        if self.now_ns is not None and stamp_ns > self.now_ns and n:
            F, Q = self._motion((stamp_ns - self.now_ns) / 1e9)
            cap = self.p.max_pos_sd_m ** 2
            X = self._X[:n]
            X[:] = np.matmul(F, X[:, :, None])[:, :, 0]
            P = np.matmul(np.matmul(F, self._P[:n]), F.T) + Q
            for i in (0, 1):
                wide = np.flatnonzero(P[:, i, i] > cap)          # keep the gate of a lost track finite
                if len(wide):
                    f = np.sqrt(cap / P[wide, i, i])[:, None]
                    P[wide, i, :] *= f
                    P[wide, :, i] *= f
            self._P[:n] = P
            X[self._lost[:n], 2:] = 0.0                        # a lost shopper is assumed to stand still
        self.now_ns = stamp_ns if self.now_ns is None else max(self.now_ns, stamp_ns)

    def _motion(self, dt: float) -> tuple[np.ndarray, np.ndarray]:
        """F and Q for a step of dt seconds; the cameras' period repeats, so the last pair is kept."""
        key = (dt, self.p.accel_sd)
        if self._motion_cache[0] != key:
            F = np.array([[1, 0, dt, 0], [0, 1, 0, dt], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=float)
            G = np.array([[dt * dt / 2, 0], [0, dt * dt / 2], [dt, 0], [0, dt]])
            self._motion_cache = (key, F, G @ G.T * self.p.accel_sd ** 2)
        return self._motion_cache[1], self._motion_cache[2]

    # ---- association ----------------------------------------------------------------------------
    def _associate(self, z: np.ndarray, R: list, detections=()) -> list[tuple[int, int]]:
        n, m = len(self.tracks), len(z)
        if not n or not m:
            return []
        # walking distance first, all pairs at once (a loose bound; the exact test is math.hypot, as the
        # gate is); the pairs left are gated in plain floats when few (a camera's frame), else as arrays
        rel = z[None, :, :] - self._X[:n, None, :2]          # detection minus track
        rx, ry = rel[:, :, 0], rel[:, :, 1]
        reach = self.p.max_jump_m * (1 + 1e-9) + 1e-12
        ti, di = (rx * rx + ry * ry <= reach * reach).nonzero()
        if not len(ti):
            return []
        gate = self._gate_few if len(ti) <= _FEW_PAIRS else self._gate_many
        edges, S, r, looks = gate(ti, di, rel, R, detections)
        if not edges:
            return []
        if len(edges) == 1 or len({i for i, _ in edges}) == len(edges) == len({j for _, j in edges}):
            return sorted(edges)        # no two claims on one track or detection: every pair is assigned
        # where several shoppers stand within each other's gates (two at the gate scanner, a pair at one
        # shelf) position alone cannot say who is who: the colour descriptor joins the cost (a pair where
        # either side has none gets the typical distance, neither favoured nor blamed)
        S = np.asarray(S, dtype=float).reshape(-1, 2, 2)
        r = np.asarray(r, dtype=float).reshape(-1, 2)
        looks = np.asarray(looks, dtype=float)
        looks = np.where(np.isnan(looks), self.p.appearance_neutral, looks).tolist()
        big = 1e6
        cost = np.full((n, m), big)
        for (i, j), d2k, det, look in zip(edges, self._mahalanobis(S, r), np.linalg.det(S).tolist(), looks):
            cost[i, j] = d2k + math.log(det) + self.p.appearance_weight * look
        rows, cols = linear_sum_assignment(cost)
        return [(int(i), int(j)) for i, j in zip(rows, cols) if cost[i, j] < big]

    def _gate_few(self, ti: np.ndarray, di: np.ndarray, rel: np.ndarray, R: list, detections):
        """The gates of a few pairs in plain floats: the closed form below is, operation for operation,
        what the arrays compute in `_gate_many`, without numpy's cost per call. Returns the pairs that
        pass, their innovation covariances and residuals, and how they look (`_pair_looks`)."""
        gate, jump = self.p.gate_chi2, self.p.max_jump_m
        cands, unsure = [], []         # [track, detection, S (a, b, c, d), r (ex, ey), d2]
        for i, j, (ex, ey), ((a, b), (c, d)) in zip(
                ti.tolist(), di.tolist(), rel[ti, di].tolist(), self._P[ti, :2, :2].tolist()):
            if math.hypot(ex, ey) > jump:
                continue
            (ra, rb), (rc, rd) = R[j]
            a, b, c, d = a + ra, b + rb, c + rc, d + rd
            det = a * d - b * c
            if not (det > 0.0 and math.isfinite(det)):
                continue            # a broken covariance fits nothing (the arrays' NaN fails the gate too)
            d2 = (ex * (d * ex - b * ey) + ey * (a * ey - c * ex)) / det
            if abs(d2 - gate) <= 1e-6 * gate:
                unsure.append(len(cands))
            cands.append([i, j, (a, b, c, d), (ex, ey), d2])
        if unsure:
            S = np.array([cands[k][2] for k in unsure], dtype=float).reshape(-1, 2, 2)
            r = np.array([cands[k][3] for k in unsure], dtype=float).reshape(-1, 2)
            for k, d2 in zip(unsure, self._mahalanobis(S, r)):
                cands[k][4] = d2
        cands = [c for c in cands if c[4] <= gate]
        looks = self._pair_looks([c[0] for c in cands], [c[1] for c in cands], detections)
        # a detection that does not look like a track is not that shopper, however near: in a crowd
        # another shopper is always within the gate (walking past, a step behind in a queue, at the same
        # shelf), and a track that takes them once follows the wrong person from then on; a pair where
        # either side has no colour (NaN) stays: position alone decides, as it must without
        edges, S, r, kept_looks = [], [], [], []
        for c, look in zip(cands, looks):
            if not look > self.p.reid_max_distance:
                edges.append((c[0], c[1]))
                S.append(c[2])
                r.append(c[3])
                kept_looks.append(look)
        return edges, S, r, kept_looks

    def _gate_many(self, ti: np.ndarray, di: np.ndarray, rel: np.ndarray, R: list, detections):
        """`_gate_few` on arrays, for a frame with many pairs near each other (all cameras' detections
        merged into one frame)."""
        jump, gate = self.p.max_jump_m, self.p.gate_chi2
        near = [k for k, (a, b) in enumerate(rel[ti, di].tolist()) if math.hypot(a, b) <= jump]
        ti, di = ti[near], di[near]
        S = self._P[ti, :2, :2] + np.array(R, dtype=float).reshape(-1, 2, 2)[di]
        r = rel[ti, di]
        # Mahalanobis gate in closed form; a pair this cannot call either way gets the exact solve
        a, b, c, d = S[:, 0, 0], S[:, 0, 1], S[:, 1, 0], S[:, 1, 1]
        ex, ey = r[:, 0], r[:, 1]
        d2 = (ex * (d * ex - b * ey) + ey * (a * ey - c * ex)) / (a * d - b * c)
        unsure = np.abs(d2 - gate) <= 1e-6 * gate
        if unsure.any():
            d2[unsure] = self._mahalanobis(S[unsure], r[unsure])
        inside = d2 <= gate
        ti, di, S, r = ti[inside], di[inside], S[inside], r[inside]
        looks = np.array(self._pair_looks(ti.tolist(), di.tolist(), detections), dtype=float)
        fits = ~(looks > self.p.reid_max_distance)        # NaN (no colour) fits
        return list(zip(ti[fits].tolist(), di[fits].tolist())), S[fits], r[fits], looks[fits]

    def _pair_looks(self, ti: list[int], di: list[int], detections) -> list[float]:
        """Hellinger distance (as `appearance_distance`) of track ti[k] to detection di[k], all pairs
        at once; NaN where either side has no colour (or an all-zero descriptor)."""
        out = [math.nan] * len(ti)
        rows, descs = [], []
        for k, (i, j) in enumerate(zip(ti, di)):
            a = self.tracks[i].appearance
            b = getattr(detections[j], "appearance", None) if j < len(detections) else None
            if a is not None and b is not None and len(b):
                rows.append(k)
                descs += (a, b)
        if not rows:
            return out
        # tracks' and detections' descriptors interleaved in one array, clipped at 0 (np.maximum is
        # np.clip(x, 0, None) without clip's Python wrapper)
        C = np.maximum(np.array(descs, dtype=np.float64), 0.0)
        bc = np.sqrt(C[0::2] * C[1::2]).sum(axis=1)
        has = C.any(axis=1).tolist()
        for k, v, has_a, has_b in zip(rows, bc.tolist(), has[0::2], has[1::2]):
            if has_a and has_b:
                out[k] = v if math.isnan(v) else math.sqrt(max(0.0, 1.0 - min(1.0, v)))
        return out

    @staticmethod
    def _mahalanobis(S: np.ndarray, r: np.ndarray) -> list[float]:
        """r' S^-1 r by LAPACK, the gate's and the assignment cost's reference value."""
        return np.matmul(r[:, None, :], np.linalg.solve(S, r[:, :, None]))[:, 0, 0].tolist()

    # ---- processor ----------------------------------------------------------------------------
    def _update_all(self, pairs: list[tuple[int, int]], z: np.ndarray, R: list, stamp_ns: int,
                    detections) -> None:
        """Kalman update of every matched track (each track appears once); the bookkeeping then runs
        pair by pair, as binding reads the other tracks."""
        X, P = (self._updated_few if len(pairs) <= _FEW_PAIRS else self._updated_many)(pairs, z, R)
        for (i, j), x, p in zip(pairs, X, P):
            self._X[i], self._P[i], self._seen[i] = x, p, stamp_ns
            self._after_update(self.tracks[i], stamp_ns, getattr(detections[j], "appearance", None),
                               float(x[0]), float(x[1]))

    def _updated_few(self, pairs: list[tuple[int, int]], z: np.ndarray, R: list) -> tuple[list, list]:
        """New states of a few tracks in plain floats (numpy's cost per call is most of the time for
        one or two): H picks the position, so S = P[:2, :2] + R, K = P[:, :2] S^-1, P <- P - K P[:2, :].
        Rounds differently from BLAS (`_updated_many`) in the last bit only."""
        zs, X, P = z.tolist(), [], []
        for i, j in pairs:
            x, p = self._X[i].tolist(), self._P[i].tolist()
            (ra, rb), (rc, rd) = R[j]
            a, b, c, d = p[0][0] + ra, p[0][1] + rb, p[1][0] + rc, p[1][1] + rd
            det = a * d - b * c
            ex, ey = zs[j][0] - x[0], zs[j][1] - x[1]
            p0, p1 = p[0], p[1]
            for k, row in enumerate(p):
                k0 = (row[0] * d - row[1] * c) / det          # row k of K
                k1 = (row[1] * a - row[0] * b) / det
                x[k] += k0 * ex + k1 * ey
                p[k] = [v - k0 * u - k1 * w for v, u, w in zip(row, p0, p1)]
            X.append(x)
            P.append(p)
        return X, P

    def _updated_many(self, pairs: list[tuple[int, int]], z: np.ndarray, R: list) -> tuple[np.ndarray, np.ndarray]:
        """New states of many tracks at once (H P H', P H' and H x are the position block, exactly what
        the products give)."""
        ti = np.array([i for i, _ in pairs])
        di = np.array([j for _, j in pairs])
        X, P = self._X[ti], self._P[ti]
        K = np.matmul(P[:, :, :2], np.linalg.inv(P[:, :2, :2] + np.array([R[j] for j in di.tolist()], dtype=float)))
        X = X + np.matmul(K, (z[di] - X[:, :2])[:, :, None])[:, :, 0]
        return X, np.matmul(_I4 - np.matmul(K, _H), P)

    def _after_update(self, t: Track, stamp_ns: int, appearance, px: float, py: float) -> None:
        t.hits += 1
        t.last_ns = stamp_ns
        self._look(t, appearance)
        if t.state == TENTATIVE and t.hits >= self.p.confirm_hits and \
                stamp_ns - t.born_ns >= int(self.p.confirm_span_s * 1e9):
            t.state = CONFIRMED
            self._bind(t)
        elif t.state == LOST:           # seen again: it keeps whatever identity it still has
            t.state = CONFIRMED
            self._lost[t._row] = False
        t.history.append((stamp_ns, px, py))
        horizon = stamp_ns - int(self.p.history_s * 1e9)
        while t.history and t.history[0][0] < horizon:
            t.history.popleft()

    def _look(self, t: Track, appearance) -> None:
        if appearance is None or len(appearance) == 0 or \
                not (appearance.any() if isinstance(appearance, np.ndarray) else np.any(appearance)):
            return
        alpha = self.p.appearance_alpha
        if t.appearance is None:
            t.appearance = np.asarray(appearance, dtype=np.float64)
        else:        # in float64, without converting the descriptor first
            t.appearance = (1 - alpha) * t.appearance + np.multiply(alpha, appearance, dtype=np.float64)

    def _spawn(self, z: np.ndarray, R, stamp_ns: int, appearance=None) -> None:
        P = np.diag([R[0][0] + 0.01, R[1][1] + 0.01, 1.0, 1.0])
        tid = hashlib.sha256(f"{stamp_ns}/{z[0]:.3f}/{z[1]:.3f}".encode()).hexdigest()[:32]
        track_id = f"{tid[:8]}-{tid[8:12]}-{tid[12:16]}-{tid[16:20]}-{tid[20:32]}"
        t = Track(track_id, np.array([z[0], z[1], 0.0, 0.0]), P, stamp_ns, stamp_ns,
                  identity=track_id, history=[(stamp_ns, float(z[0]), float(z[1]))])
        self._look(t, appearance)
        self._attach(t)
        self.tracks.append(t)

    def _attach(self, t: Track) -> None:
        """Give t the next row of the stacked arrays (doubling them when full)."""
        row = len(self.tracks)
        if row == len(self._X):
            cap = max(16, 2 * row)
            for name in ("_X", "_P", "_seen", "_lost"):
                old = getattr(self, name)
                new = np.zeros((cap,) + old.shape[1:], dtype=old.dtype)
                new[:row] = old[:row]
                setattr(self, name, new)
        self._X[row], self._P[row] = t._x, t._P
        self._seen[row], self._lost[row] = t.last_ns, t.state == LOST
        t._owner, t._row, t._x, t._P = self, row, None, None

    def _at_gate(self, point, ev: GateEvent) -> bool:
        gate = self.store.gates.get(ev.gate_id)
        return gate is not None and math.hypot(point[1] - gate.x, point[2] - gate.y) <= self.p.entry_radius_m

    def _bind(self, t: Track) -> None:
        """Give a newly confirmed track its session: from a fresh entry scan, or from a lost shopper
        it could be (reachable on foot since last seen, and looking alike when both have colour)."""
        born = t.history[0]
        eligible = []
        for entry in self.entries:
            ev = entry[0]
            gate = self.store.gates.get(ev.gate_id)
            if gate is None or abs(born[0] - ev.stamp_ns) > self.p.entry_window_s * 1e9:
                continue
            if math.hypot(born[1] - gate.x, born[2] - gate.y) <= self.p.entry_radius_m:
                eligible.append(entry)
        # people walk through a gate in the order they scanned: a track takes the scan whose place in
        # the queue matches the number of shoppers born at the gate before it and still waiting for
        # their name (tentative tracks that have been seen again; a false detection's track, seen
        # once, is no one in the queue, nor is an older track that found no scan)
        if eligible:
            slots = [e for e in sorted(eligible, key=lambda e: e[0].stamp_ns) for _ in range(e[1])]
            ahead = sum(1 for o in self.tracks if o is not t and not o.session_id and o.history
                        and o.state == TENTATIVE and o.hits >= 2
                        and born[0] - self.p.entry_window_s * 1e9 <= o.history[0][0] < born[0]
                        and any(self._at_gate(o.history[0], e[0]) for e in eligible))
            entry = slots[min(ahead, len(slots) - 1)]
            ev = entry[0]
            member = self.members.get(ev.session_id, 0)
            self.members[ev.session_id] = member + 1
            t.session_id, t.identity = ev.session_id, f"{ev.session_id}#{member}"
            entry[1] -= 1
            if entry[1] <= 0:
                self.entries.remove(entry)
            return
        best, best_cost = None, None
        for o in self.tracks + self.retired:
            if o is t or not o.session_id or o.session_id in self.exited:
                continue
            if o in self.tracks and o.state != LOST:
                continue
            gap = (born[0] - o.last_ns) / 1e9
            if gap < 0 or gap > self.p.reid_window_s:
                continue
            cost = self._continuation_cost(o, t, gap, need_look=False)
            if cost is not None and (best_cost is None or cost < best_cost):
                best, best_cost = o, cost
        if best is not None:
            self._hand_over(best, t)
            if best in self.retired:
                self.retired.remove(best)

    def _prune(self, stamp_ns: int) -> None:
        n = len(self.tracks)
        # after a prune at this stamp, only tracks updated or born at it have changed: none is due
        again = stamp_ns == self._pruned_ns and self.p.lost_after_s >= 0 and self.p.delete_after_s >= 0
        if n and not again:
            # nothing to do unless a track is due to be dropped or lost (the loop below decides)
            unseen = (stamp_ns - self._seen[:n]) / 1e9
            if ((unseen > self.p.delete_after_s) | ((unseen > self.p.lost_after_s) & ~self._lost[:n])).any():
                self._prune_tracks(stamp_ns)
        self._pruned_ns = stamp_ns
        if self.retired:
            horizon = stamp_ns - int(self.p.reid_window_s * 1e9)
            self.retired = [t for t in self.retired if t.last_ns >= horizon and t.session_id not in self.exited]

    def _prune_tracks(self, stamp_ns: int) -> None:
        keep, rows, lost = [], [], []
        for t in self.tracks:
            unseen = (stamp_ns - t.last_ns) / 1e9
            if unseen > self.p.delete_after_s and t.session_id:
                self.retired.append(t)
            if unseen > self.p.delete_after_s or (t.state == TENTATIVE and unseen > self.p.lost_after_s) \
                    or (t.left and unseen > self.p.lost_after_s):
                t._x, t._P = self._X[t._row].copy(), self._P[t._row].copy()
                t._owner, t._row = None, -1
                continue
            if unseen > self.p.lost_after_s and t.state != LOST:
                t.state = LOST
                self._lost[t._row] = True
                if t.session_id:
                    lost.append(t)
            keep.append(t)
            rows.append(t._row)
        m = len(keep)
        if m < len(self.tracks):
            rows = np.array(rows, dtype=np.intp)
            for arr in (self._X, self._P, self._seen, self._lost):
                arr[:m] = arr[rows]
            for k, t in enumerate(keep):
                t._row = k
        self.tracks = keep
        for t in lost:
            self._continue_lost(t)

    def _continue_lost(self, o: Track) -> None:
        """A bound shopper just went missing. If an unnamed track already follows someone who could
        be them (it appeared around the time they were last seen, where they could have walked to, and
        looks like them), it is their continuation: it takes the session now rather than never (a
        track is otherwise named only when it is confirmed, which may have been before this loss)."""
        best, best_cost = None, None
        for t in self.tracks:
            if t is o or t.session_id or t.left or t.state != CONFIRMED or not t.history:
                continue
            born_ns = t.history[0][0]
            if born_ns < o.last_ns - int(self.p.lost_after_s * 1e9):
                continue              # older than the loss: someone else all along
            cost = self._continuation_cost(o, t, max(0.0, (born_ns - o.last_ns) / 1e9), need_look=True)
            if cost is not None and (best_cost is None or cost < best_cost):
                best, best_cost = t, cost
        if best is not None:
            self._hand_over(o, best)

    def _continuation_cost(self, old: Track, new: Track, gap_s: float, need_look: bool) -> float | None:
        """How well `new` (from where it was first seen) continues `old` (from where it was last seen)
        gap_s later: None when it could not have walked there or does not look like them."""
        _, bx, by = new.history[0]
        reach = self.p.walk_speed_mps * gap_s + 1.0
        d = math.hypot(bx - old.x[0], by - old.x[1])
        if d > reach:
            return None
        look = 0.0
        if new.appearance is not None and old.appearance is not None:
            look = appearance_distance(new.appearance, old.appearance)
            if look > self.p.reid_max_distance:
                return None
        elif need_look:
            return None
        return look + d / reach * 0.2

    def _hand_over(self, old: Track, new: Track) -> None:
        """The shopper `old` followed is now followed by `new`: the name moves with them."""
        new.session_id, new.identity = old.session_id, old.identity
        old.session_id, old.identity = "", old.track_id
        self.reidentified += 1

    # ---- outputs ------------------------------------------------------------------------------
    def confirmed(self) -> list[Track]:
        """Tracks seen recently enough to report (a coasting track is not reported as a shopper)."""
        return [t for t in self.tracks if t.state == CONFIRMED and self.now_ns is not None
                and self.now_ns - t.last_ns <= int(self.p.lost_after_s * 1e9)]

    def near(self, x: float, y: float, t0_ns: int, t1_ns: int, radius_m: float) -> dict[str, float]:
        """Sessions whose track came within radius_m of (x, y) between t0 and t1: closest distance."""
        return {k: w.closest for k, w in self.whereabouts(x, y, t0_ns, t1_ns).items()
                if k and w.closest is not None and w.closest <= radius_m}

    def whereabouts(self, x: float, y: float, t0_ns: int, t1_ns: int) -> dict[str, Whereabouts]:
        """Per session, what the cameras say about (x, y) between t0 and t1: its closest approach in
        that window, or else where and when it was last seen before it (a shopper seen 8 m away a
        second earlier cannot have reached the shelf; one unseen for a minute could have). Under ""
        the confirmed track nobody is bound to that stood nearest: someone is there, but the cameras
        lost who."""
        out: dict[str, Whereabouts] = {}
        for t in self.tracks:
            if t.session_id or t.state == TENTATIVE or t.left:
                continue
            ds = [math.hypot(px - x, py - y) for ts, px, py in t.history if t0_ns <= ts <= t1_ns]
            if ds and ("" not in out or sum(ds) / len(ds) < out[""].mean):
                out[""] = Whereabouts(closest=min(ds), mean=sum(ds) / len(ds))
        for t in self.tracks + self.retired:
            if not t.session_id:
                continue
            w = out.setdefault(t.session_id, Whereabouts())
            total = count = 0
            for ts, px, py in t.history:
                if ts > t1_ns:
                    break
                d = math.hypot(px - x, py - y)
                if ts >= t0_ns:
                    w.closest = d if w.closest is None else min(w.closest, d)
                    total, count = total + d, count + 1
                elif w.last_ns is None or ts > w.last_ns:
                    w.last_ns, w.last_d = ts, d
            if count:      # a group's members: the one that stood nearest on average
                w.mean = total / count if w.mean is None else min(w.mean, total / count)
        return out


@dataclass
class Whereabouts:
    closest: float | None = None     # m: closest approach inside the window
    mean: float | None = None        # m: mean distance inside the window (where it stood)
    last_ns: int | None = None       # else: last seen before the window ...
    last_d: float | None = None      # ... this far away
