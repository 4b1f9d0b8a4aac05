"""Shopper tracking: one constant-velocity Kalman filter per shopper, fed by every camera.

Split as Autoware's multi_object_tracker: motion model (predict with process noise from the dt of
the header stamps), association (Mahalanobis gating + scipy's linear_sum_assignment), processor
(update -> spawn -> prune). Identity comes from the gate: a track born near an entry gate within a
few seconds of an ENTRY scan is bound to that session (a party scanned in together binds as many
tracks as it has members); a bound track that is lost (occlusion, camera dropout, a blind spot)
hands its session to a new track that appears where it could have walked to and looks like it
(the cameras' colour descriptors). Track ids are derived from stamps, so a replay names tracks
identically.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

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
    min_score: float = 0.3           # weaker detections update tracks but never start one
    meas_floor_sd: float = 0.2       # m: cameras disagree by this much on where one person stands
    confirm_hits: int = 3            # tentative until updated this often
    lost_after_s: float = 1.0        # unseen this long: LOST (kept for re-identification)
    delete_after_s: float = 20.0     # unseen this long: gone
    entry_radius_m: float = 2.5      # a track born this close to an entry gate ...
    entry_window_s: float = 4.0      # ... this soon after an ENTRY scan takes its session
    walk_speed_mps: float = 2.0      # re-identification: how far a lost shopper may have walked
    history_s: float = 60.0          # positions kept per track, for attribution
    appearance_alpha: float = 0.1    # how fast a track's colour descriptor follows new detections
    reid_max_distance: float = 0.45  # Hellinger: a lost shopper looks at least this much like the new track
    reid_window_s: float = 120.0     # a session unseen longer than this is not re-identified by motion


@dataclass(eq=False)
class Track:
    track_id: str
    x: np.ndarray                    # px, py, vx, vy
    P: np.ndarray
    born_ns: int
    last_ns: int
    hits: int = 1
    state: int = TENTATIVE
    session_id: str = ""
    identity: str = ""               # the shopper it is (session#member), carried over on re-identification
    history: list[tuple[int, float, float]] = field(default_factory=list)
    appearance: np.ndarray | None = None


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

    # ---- inputs -------------------------------------------------------------------------------
    def on_gate(self, ev: GateEvent) -> None:
        if ev.direction == ENTRY:
            self.entries.append([ev, max(1, int(ev.party_size or 1))])
        else:
            self.exited.add(ev.session_id)

    def on_detections(self, stamp_ns: int, detections) -> None:
        """One camera frame's detections (objects with x, y, cov (9), score), in stamp order."""
        self._predict(stamp_ns)
        z = np.array([[d.x, d.y] for d in detections], dtype=float).reshape(-1, 2)
        R = [np.array(d.cov, dtype=float).reshape(3, 3)[:2, :2] + np.eye(2) * self.p.meas_floor_sd ** 2
             for d in detections]
        pairs = self._associate(z, R)
        used = set()
        for ti, di in pairs:
            self._update(self.tracks[ti], z[di], R[di], stamp_ns, getattr(detections[di], "appearance", None))
            used.add(di)
        for di, d in enumerate(detections):
            if di not in used and d.score >= self.p.min_score:
                self._spawn(z[di], R[di], stamp_ns, getattr(d, "appearance", None))
        self._prune(stamp_ns)

    # ---- motion model -------------------------------------------------------------------------
    def _predict(self, stamp_ns: int) -> None:
        if self.now_ns is not None and stamp_ns > self.now_ns:
            dt = (stamp_ns - self.now_ns) / 1e9
            F = np.array([[1, 0, dt, 0], [0, 1, 0, dt], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=float)
            q = self.p.accel_sd ** 2
            G = np.array([[dt * dt / 2, 0], [0, dt * dt / 2], [dt, 0], [0, dt]])
            Q = G @ G.T * q
            cap = self.p.max_pos_sd_m ** 2
            for t in self.tracks:
                t.x = F @ t.x
                t.P = F @ t.P @ F.T + Q
                for i in (0, 1):
                    if t.P[i, i] > cap:               # keep the gate of a lost track finite
                        f = math.sqrt(cap / t.P[i, i])
                        t.P[i, :] *= f
                        t.P[:, i] *= f
                if t.state == LOST:
                    t.x[2:] = 0.0                     # a lost shopper is assumed to stand still
        self.now_ns = stamp_ns if self.now_ns is None else max(self.now_ns, stamp_ns)

    # ---- association ----------------------------------------------------------------------------
    def _associate(self, z: np.ndarray, R: list[np.ndarray]) -> list[tuple[int, int]]:
        if not len(self.tracks) or not len(z):
            return []
        big = 1e6
        cost = np.full((len(self.tracks), len(z)), big)
        for i, t in enumerate(self.tracks):
            for j in range(len(z)):
                S = t.P[:2, :2] + R[j]
                r = z[j] - t.x[:2]
                d2 = float(r @ np.linalg.solve(S, r))
                if d2 <= self.p.gate_chi2 and math.hypot(r[0], r[1]) <= self.p.max_jump_m:
                    cost[i, j] = d2 + math.log(np.linalg.det(S))
        rows, cols = linear_sum_assignment(cost)
        return [(int(i), int(j)) for i, j in zip(rows, cols) if cost[i, j] < big]

    # ---- processor ----------------------------------------------------------------------------
    def _update(self, t: Track, z: np.ndarray, R: np.ndarray, stamp_ns: int, appearance=None) -> None:
        H = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0]])
        S = H @ t.P @ H.T + R
        K = t.P @ H.T @ np.linalg.inv(S)
        t.x = t.x + K @ (z - H @ t.x)
        t.P = (np.eye(4) - K @ H) @ t.P
        t.hits += 1
        t.last_ns = stamp_ns
        self._look(t, appearance)
        if t.state == TENTATIVE and t.hits >= self.p.confirm_hits:
            t.state = CONFIRMED
            self._bind(t)
        elif t.state == LOST:           # seen again: it keeps whatever identity it still has
            t.state = CONFIRMED
        t.history.append((stamp_ns, float(t.x[0]), float(t.x[1])))
        horizon = stamp_ns - int(self.p.history_s * 1e9)
        while t.history and t.history[0][0] < horizon:
            t.history.pop(0)

    def _look(self, t: Track, appearance) -> None:
        if appearance is None or len(appearance) == 0 or not np.any(appearance):
            return
        a = np.asarray(appearance, dtype=np.float64)
        t.appearance = a if t.appearance is None else \
            (1 - self.p.appearance_alpha) * t.appearance + self.p.appearance_alpha * a

    def _spawn(self, z: np.ndarray, R: np.ndarray, stamp_ns: int, appearance=None) -> None:
        P = np.diag([R[0, 0] + 0.01, R[1, 1] + 0.01, 1.0, 1.0])
        tid = hashlib.sha256(f"{stamp_ns}/{z[0]:.3f}/{z[1]:.3f}".encode()).hexdigest()[:32]
        track_id = f"{tid[:8]}-{tid[8:12]}-{tid[12:16]}-{tid[16:20]}-{tid[20:32]}"
        t = Track(track_id, np.array([z[0], z[1], 0.0, 0.0]), P, stamp_ns, stamp_ns,
                  identity=track_id, history=[(stamp_ns, float(z[0]), float(z[1]))])
        self._look(t, appearance)
        self.tracks.append(t)

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
        # people are seen just after they scan: the latest scan before the track was born is theirs
        before = [e for e in eligible if e[0].stamp_ns <= born[0]]
        if before or eligible:
            entry = max(before, key=lambda e: e[0].stamp_ns) if before else eligible[0]
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
            d = math.hypot(born[1] - o.x[0], born[2] - o.x[1])
            if d > self.p.walk_speed_mps * gap + 1.0:
                continue
            look = 0.0
            if t.appearance is not None and o.appearance is not None:
                look = appearance_distance(t.appearance, o.appearance)
                if look > self.p.reid_max_distance:
                    continue
            cost = look + d / (self.p.walk_speed_mps * gap + 1.0) * 0.2
            if best_cost is None or cost < best_cost:
                best, best_cost = o, cost
        if best is not None:
            t.session_id, t.identity = best.session_id, best.identity
            best.session_id, best.identity = "", best.track_id
            if best in self.retired:
                self.retired.remove(best)
            self.reidentified += 1

    def _prune(self, stamp_ns: int) -> None:
        keep = []
        for t in self.tracks:
            unseen = (stamp_ns - t.last_ns) / 1e9
            if unseen > self.p.delete_after_s and t.session_id:
                self.retired.append(t)
            if unseen > self.p.delete_after_s or (t.state == TENTATIVE and unseen > self.p.lost_after_s):
                continue
            if unseen > self.p.lost_after_s:
                t.state = LOST
            keep.append(t)
        self.tracks = keep
        horizon = stamp_ns - int(self.p.reid_window_s * 1e9)
        self.retired = [t for t in self.retired if t.last_ns >= horizon and t.session_id not in self.exited]

    # ---- outputs ------------------------------------------------------------------------------
    def confirmed(self) -> list[Track]:
        """Tracks seen recently enough to report (a coasting track is not reported as a shopper)."""
        return [t for t in self.tracks if t.state == CONFIRMED and self.now_ns is not None
                and self.now_ns - t.last_ns <= int(self.p.lost_after_s * 1e9)]

    def near(self, x: float, y: float, t0_ns: int, t1_ns: int, radius_m: float) -> dict[str, float]:
        """Sessions whose track came within radius_m of (x, y) between t0 and t1: closest distance."""
        return {k: w.closest for k, w in self.whereabouts(x, y, t0_ns, t1_ns).items()
                if w.closest is not None and w.closest <= radius_m}

    def whereabouts(self, x: float, y: float, t0_ns: int, t1_ns: int) -> dict[str, Whereabouts]:
        """Per session, what the cameras say about (x, y) between t0 and t1: its closest approach in
        that window, or else where and when it was last seen before it (a shopper seen 8 m away a
        second earlier cannot have reached the shelf; one unseen for a minute could have)."""
        out: dict[str, Whereabouts] = {}
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
