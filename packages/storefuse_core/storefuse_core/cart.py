"""Smart carts: where a cart is (UWB + wheel odometry EKF) and what is in it (scans + cart scale).

ROS-free: the cart_localizer node and the offline benchmark (bench/cart_rmse.py) feed the same
classes with plain numbers, in header-stamp order.

CartLocalizer
    An extended Kalman filter (filterpy) over the cart's planar pose in `map`, state [x, y, yaw].
    Wheel odometry is the control input (the usual odometry motion model): the SE(2) increment
    between consecutive Odometry poses, in the cart's body frame, moves the state; its noise grows
    with the distance driven, the angle turned (a cart pivoting about its handle skids) and the
    time between the header stamps. Velocities are not states: the odometry measures them better
    than ranges at 10 Hz could, and the pose only needs increments. A UWB round (ranges to layout
    anchors x, y, z; tag at `tag_height_m`) is one joint, iterated update (filterpy's update step,
    relinearised). Each range is first gated by its Mahalanobis distance to the prior, so a
    multipath range (always too long) is rejected and counted; a range that passed alone but
    misfits the others after the update goes too. After a sharp turn the prior is wide and gates
    nothing: then the subsets leaving out up to two ranges are solved from their own
    multilateration and the one with the least robust cost wins. Rounds where half the ranges
    are rejected mean the filter is lost: it restarts from multilateration (at once if the round is
    a clean fix of >= 4 ranges, else after `reinit_after` such rounds).
    Start: the first UWB round with >= 3 ranges gives the position by least squares
    (multilateration, leave-one-out when a range does not fit). The heading is unobservable until
    the cart moves: it is aligned (2-D Procrustes) from odometry positions against the filter's
    UWB positions once the odometry has moved `yaw_init_m`; until then the pose's yaw variance is
    pi^2 and no map->odom transform is given.
    Reordering: UWB and odometry come on two topics. Each message is applied in stamp order once
    the other stream has reached its stamp (a UWB round gets the odometry pose interpolated to it),
    or after `reorder_wait_s` (node clock) without it; so live delivery order does not change the
    result.

CartBasket
    A barcode scan and a matching settled weight increase within `confirm_s` of each other (either
    order) put one item in the cart; a weight decrease removes the item whose weight matches best.
    What does not pair up is reported (scans never placed, weight changes nobody scanned).
"""
from __future__ import annotations

import bisect
import itertools
import json
import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Mapping, Sequence

import numpy as np


def wrap(a: float) -> float:
    """An angle in [-pi, pi)."""
    return (a + math.pi) % (2.0 * math.pi) - math.pi


def compose(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """SE(2) a ∘ b for poses (x, y, yaw)."""
    c, s = math.cos(a[2]), math.sin(a[2])
    return a[0] + c * b[0] - s * b[1], a[1] + s * b[0] + c * b[1], wrap(a[2] + b[2])


def inverse(a: Sequence[float]) -> tuple[float, float, float]:
    c, s = math.cos(a[2]), math.sin(a[2])
    return -c * a[0] - s * a[1], s * a[0] - c * a[1], wrap(-a[2])


def between(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """The increment from a to b in a's frame: a^-1 ∘ b."""
    return compose(inverse(a), b)


# ---- multilateration -----------------------------------------------------------------------------
@dataclass
class Fix:
    """A position from one UWB round alone."""
    x: float
    y: float
    cov: np.ndarray                  # 2x2, m^2
    rms_m: float                     # range residual RMS of the ranges used
    used: list[int]                  # indices of the ranges used


def multilaterate(anchors: np.ndarray, ranges: Sequence[float], tag_z: float = 1.0, range_sd: float = 0.08,
                  robust: bool = True) -> Fix | None:
    """Least-squares tag position (x, y) at height tag_z from >= 3 ranges to anchors (n x 3).

    A linear solution (range equations differenced) starts Gauss-Newton on the 3-D ranges. With
    `robust` and >= 4 ranges, a fit whose residual RMS exceeds 2 sd is redone leaving out one range,
    then two, keeping the best fit among those where every range left out is clearly too long
    (multipath only ever lengthens a range; a subset that needs a range to be short is wrong)."""
    a = np.asarray(anchors, dtype=float).reshape(-1, 3)
    r = np.asarray(ranges, dtype=float)
    idx = list(range(len(r)))
    best = _fit(a, r, idx, tag_z, range_sd)
    if not robust or best is None or best.rms_m <= 2.0 * range_sd:
        return best
    for drop in (1, 2):
        if len(idx) - drop < 3:
            break
        for keep in itertools.combinations(idx, len(idx) - drop):
            fit = _fit(a, r, list(keep), tag_z, range_sd)
            if fit is None or fit.rms_m >= best.rms_m:
                continue
            left = [i for i in idx if i not in keep]
            pred = np.hypot(np.hypot(fit.x - a[left, 0], fit.y - a[left, 1]), tag_z - a[left, 2])
            if np.all(r[left] - pred > 2.0 * range_sd):
                best = fit
        if best.rms_m <= 2.0 * range_sd:
            break
    return best


def _fit(a: np.ndarray, r: np.ndarray, idx: list[int], tag_z: float, sd: float) -> Fix | None:
    if len(idx) < 3:
        return None
    a, r = a[idx], r[idx]
    rho2 = np.maximum(r ** 2 - (a[:, 2] - tag_z) ** 2, 0.0)         # horizontal distance squared
    xy = a[:, :2]
    A = 2.0 * (xy[1:] - xy[0])
    b = rho2[0] - rho2[1:] + np.sum(xy[1:] ** 2, axis=1) - np.sum(xy[0] ** 2)
    if np.linalg.matrix_rank(A) < 2:
        return None                                                   # anchors on one line
    p = np.linalg.lstsq(A, b, rcond=None)[0]
    for _ in range(10):                                               # Gauss-Newton on 3-D ranges
        d = np.hypot(np.hypot(p[0] - a[:, 0], p[1] - a[:, 1]), tag_z - a[:, 2])
        J = (p[None, :] - xy) / np.maximum(d, 1e-6)[:, None]
        step = np.linalg.lstsq(J, r - d, rcond=None)[0]
        p = p + step
        if float(np.hypot(*step)) < 1e-6:
            break
    d = np.hypot(np.hypot(p[0] - a[:, 0], p[1] - a[:, 1]), tag_z - a[:, 2])
    J = (p[None, :] - xy) / np.maximum(d, 1e-6)[:, None]
    res = r - d
    rms = float(np.sqrt(np.mean(res ** 2)))
    JtJ = J.T @ J
    if np.linalg.cond(JtJ) > 1e8:
        return None
    dof = max(1, len(idx) - 2)
    scale = max(1.0, float(np.sum(res ** 2)) / dof / sd ** 2)       # a poor fit widens the covariance
    return Fix(float(p[0]), float(p[1]), sd ** 2 * scale * np.linalg.inv(JtJ), rms, idx)


# ---- the EKF -------------------------------------------------------------------------------------
@dataclass
class CartParams:
    tag_height_m: float = 1.0          # the cart's UWB tag above the floor
    range_sd_m: float = 0.08           # UWB range noise (line of sight)
    use_quality: bool = True           # widen a range's sd by its first-path quality (sd / max(q, 0.3))
    gate_chi2: float = 9.0             # per-range Mahalanobis gate (1 dof; 9 = 3 sd); <= 0 disables rejection
    odom_dist_frac: float = 0.05       # sd of each odometry step, along and across, per metre driven
    odom_turn_m_per_rad: float = 0.7   # position sd per radian turned (pivoting about the handle skids)
    odom_yaw_frac: float = 0.05        # yaw sd per radian turned
    pos_sd_per_sqrt_s: float = 0.05    # random walk of the position (pushes odometry cannot see)
    pos_sd_no_odom_per_sqrt_s: float = 1.0    # ... when no odometry reaches the round (walking pace)
    yaw_sd_per_sqrt_s: float = 0.01    # gyro drift
    yaw_init_m: float = 1.0            # odometry travel before the heading is aligned
    yaw_init_sd_rad: float = 0.15
    wide_prior_m2: float = 0.25        # prior position variance (trace) above which updates start from multilateration
    reinit_after: int = 3              # consecutive rounds with most ranges rejected: restart from multilateration
    max_gap_s: float = 5.0             # no UWB round applied for this long: restart
    reorder_wait_s: float = 0.25       # a message waits at most this long (arrival clock) for the other stream
    odom_reset_m: float = 2.0          # an odometry step this long in one message: its odometry restarted

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> CartParams:
        known = cls().__dict__
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ValueError(f"unknown cart localizer parameters: {unknown}")
        return cls(**{k: type(known[k])(v) for k, v in d.items()})


@dataclass
class CartPose:
    """The filter's pose at one sensor stamp."""
    stamp_ns: int
    x: float
    y: float
    yaw: float
    cov: np.ndarray                    # 3x3 over (x, y, yaw)
    source: str                        # uwb | odom | state
    yaw_known: bool
    map_to_odom: tuple[float, float, float] | None    # map -> <cart>/odom, once the heading is known
    accepted: int = 0                  # ranges used (uwb)
    rejected: int = 0                  # ranges rejected by the gate (uwb)
    rejected_ids: tuple[str, ...] = ()  # their anchors

    def as_dict(self) -> dict:
        return {"stamp_ns": self.stamp_ns, "x": self.x, "y": self.y, "yaw": self.yaw,
                "cov": [float(v) for v in self.cov.ravel()], "source": self.source, "yaw_known": self.yaw_known}


@dataclass
class CartStats:
    rounds: int = 0                    # UWB rounds applied
    ranges: int = 0
    ranges_rejected: int = 0
    rounds_skipped: int = 0            # before initialisation, too few ranges to start
    odom_msgs: int = 0
    odom_late: int = 0                 # odometry older than the filter (applied as a late increment)
    uwb_late: int = 0                  # a round older than the filter (came after reorder_wait_s)
    dropped: int = 0                   # odometry not newer than the previous message
    odom_resets: int = 0
    reinits: int = 0                   # lost and restarted from multilateration
    initialised: bool = False
    yaw_known: bool = False


@lru_cache(maxsize=1)
def _ekf_class():
    from filterpy.kalman import ExtendedKalmanFilter  # scipy behind it: import only when a filter is made

    class CartEKF(ExtendedKalmanFilter):
        """x = [x, y, yaw]; u = the odometry increment (dx, dy, dyaw) in the cart's body frame."""

        def predict_x(self, u=0):
            x, y, yaw = self.x[:, 0]
            nx, ny, nyaw = compose((x, y, yaw), u)
            self.x = np.array([[nx], [ny], [nyaw]])

    return CartEKF


def preload() -> None:
    """Import filterpy (and scipy behind it, ~1 s) now rather than at the first UWB round."""
    _ekf_class()


def _range(x, anchor):
    return np.array([[math.sqrt((x[0, 0] - anchor[0]) ** 2 + (x[1, 0] - anchor[1]) ** 2 + anchor[2] ** 2)]])


def _range_jacobian(x, anchor):
    d = max(_range(x, anchor).item(), 1e-6)
    return np.array([[(x[0, 0] - anchor[0]) / d, (x[1, 0] - anchor[1]) / d, 0.0]])


class CartLocalizer:
    """Feed odometry and UWB rounds (any order, each stream in stamp order); get poses back."""

    def __init__(self, anchors: Mapping[str, Sequence[float]], params: CartParams | None = None):
        self.params = params or CartParams()
        self.anchors = {k: (float(v[0]), float(v[1]), float(v[2])) for k, v in anchors.items()}
        self.stats = CartStats()
        self.ekf = None
        self.t_ns: int | None = None                      # the filter's time
        self.odom_at: tuple[float, float, float] | None = None    # odometry pose at the filter's time
        self.yaw_known = False
        self.last_uwb_ns: int | None = None
        self._odom: list[tuple[int, tuple[float, float, float], int]] = []    # waiting: stamp, pose, arrival
        self._last_odom: tuple[int, tuple[float, float, float]] | None = None
        self._uwb: list[tuple[int, list[str], list[float], list[float], int]] = []
        self._last_uwb_ns: int | None = None
        self._now_ns = 0
        self._bad_rounds = 0
        self._align: list[tuple[float, float, float, float]] = []     # odom x, y; map x, y (heading unknown)
        self._last_consumed: tuple[int, tuple[float, float, float]] | None = None

    # ---- inputs ------------------------------------------------------------------------------
    # now_ns: when the message arrived (the node's clock; a bag's log time). Left out, the stamp
    # stands in for it, which is right for messages fed in stamp order.
    def add_odom(self, stamp_ns: int, x: float, y: float, yaw: float, now_ns: int | None = None) -> list[CartPose]:
        now = self._clock(stamp_ns, now_ns)
        if self._last_odom is not None and stamp_ns <= self._last_odom[0]:
            self.stats.dropped += 1                       # duplicate or out of order within the stream
            return self._drain()
        self._last_odom = (stamp_ns, (float(x), float(y), float(yaw)))
        self._odom.append((*self._last_odom, now))
        self.stats.odom_msgs += 1
        return self._drain()

    def add_uwb(self, stamp_ns: int, anchor_ids: Sequence[str], ranges: Sequence[float],
                quality: Sequence[float] | None = None, now_ns: int | None = None) -> list[CartPose]:
        now = self._clock(stamp_ns, now_ns)
        q = list(quality) if quality is not None and len(quality) == len(ranges) else [1.0] * len(ranges)
        item = (stamp_ns, list(anchor_ids), [float(r) for r in ranges], [float(v) for v in q], now)
        bisect.insort(self._uwb, item, key=lambda u: u[0])
        self._last_uwb_ns = max(self._last_uwb_ns or stamp_ns, stamp_ns)
        return self._drain()

    def poll(self, now_ns: int) -> list[CartPose]:
        """Release what has waited `reorder_wait_s` for a stream that fell silent (call on a timer)."""
        self._now_ns = max(self._now_ns, now_ns)
        return self._drain()

    def flush(self) -> list[CartPose]:
        """Apply everything still waiting (end of a bag)."""
        return self._drain(force=True)

    def pose(self) -> CartPose | None:
        """The current estimate (None before the first UWB fix)."""
        return self._pose("state") if self.ekf is not None else None

    # ---- ordering ----------------------------------------------------------------------------
    def _clock(self, stamp_ns: int, now_ns: int | None) -> int:
        self._now_ns = max(self._now_ns, stamp_ns if now_ns is None else now_ns)
        return self._now_ns

    def _drain(self, force: bool = False) -> list[CartPose]:
        """Release inputs in stamp order (odometry first on a tie) once the other stream has reached
        their stamp (its watermark), or after waiting `reorder_wait_s` for it (a silent stream)."""
        out: list[CartPose] = []
        wait = int(self.params.reorder_wait_s * 1e9)
        while self._odom or self._uwb:
            is_odom = bool(self._odom) and (not self._uwb or self._odom[0][0] <= self._uwb[0][0])
            head = self._odom[0] if is_odom else self._uwb[0]
            t, arrived = head[0], head[-1]
            other = self._last_uwb_ns if is_odom else (self._last_odom[0] if self._last_odom else None)
            if not (force or (other is not None and other >= t) or self._now_ns - arrived > wait):
                break
            if is_odom:
                pose = self._on_odom(*self._odom.pop(0)[:2])
            else:
                pose = self._on_uwb(*self._uwb.pop(0)[:4])
            if pose is not None:
                out.append(pose)
        return out

    def _odom_at(self, t: int) -> tuple[float, float, float] | None:
        """The odometry pose at t: the last one applied if it is not older, else interpolated towards
        the next one waiting (None: no odometry reaches t)."""
        prev = self._last_consumed
        if prev is None:
            return None
        if prev[0] >= t:
            return prev[1]
        nxt = self._odom[0] if self._odom else None
        if nxt is None or nxt[0] < t:
            return None
        f = (t - prev[0]) / (nxt[0] - prev[0])
        inc = between(prev[1], nxt[1])
        return compose(prev[1], (f * inc[0], f * inc[1], f * inc[2]))

    # ---- filter steps ------------------------------------------------------------------------
    def _on_odom(self, t: int, o: tuple[float, float, float]) -> CartPose | None:
        self._last_consumed = (t, o)
        if self.ekf is not None and self.last_uwb_ns is not None and t - self.last_uwb_ns > self.params.max_gap_s * 1e9:
            self.ekf, self.yaw_known, self._align = None, False, []          # no UWB for too long: lost
        if self.ekf is None:
            self.odom_at = o
            return None
        if self.t_ns is not None and t < self.t_ns:
            self.stats.odom_late += 1
        self._predict(t, o)
        return self._pose("odom")

    def _on_uwb(self, t: int, ids: list[str], ranges: list[float], q: list[float]) -> CartPose | None:
        p = self.params
        keep = [i for i, a in enumerate(ids) if a in self.anchors and np.isfinite(ranges[i]) and ranges[i] > 0]
        ids, ranges, q = [ids[i] for i in keep], [ranges[i] for i in keep], [q[i] for i in keep]
        if self.t_ns is not None and t < self.t_ns:
            self.stats.uwb_late += 1                      # waited past reorder_wait_s: applied now
        o = self._odom_at(t)
        if self.ekf is not None and self.last_uwb_ns is not None and t - self.last_uwb_ns > p.max_gap_s * 1e9:
            self.ekf, self.yaw_known, self._align = None, False, []          # gone too long: start over
        if self.ekf is None:
            fix = self._fix(ids, ranges)
            if fix is None:
                self.stats.rounds_skipped += 1
                return None
            self._start(t, fix, o)
            self.stats.rounds += 1
            self.stats.ranges += len(ranges)
            self.last_uwb_ns = t
            pose = self._pose("uwb", ids, fix.used)
            self.stats.ranges_rejected += pose.rejected
            self._collect_alignment()
            return pose
        self._predict(t, o)
        used = self._update(ids, ranges, q)
        self.stats.rounds += 1
        self.stats.ranges += len(ranges)
        if p.gate_chi2 > 0 and len(ranges) >= 3 and 2 * (len(ranges) - len(used)) >= len(ranges):
            # Half the round disagrees with the filter. If every range of it agrees with every other
            # (a clean multilateration from >= 4), the filter is what is wrong: restart it now;
            # otherwise after `reinit_after` such rounds in a row.
            self._bad_rounds += 1
            fix = self._fix(ids, ranges)
            clean = fix is not None and len(fix.used) == len(ranges) >= 4 and fix.rms_m <= 2.0 * p.range_sd_m
            if fix is not None and (clean or self._bad_rounds >= p.reinit_after):
                self._restart_position(fix)
                self.stats.reinits += 1
                self._bad_rounds = 0
                used = fix.used
        else:
            self._bad_rounds = 0
        self.last_uwb_ns = t
        self._collect_alignment()
        pose = self._pose("uwb", ids, used)
        self.stats.ranges_rejected += pose.rejected
        return pose

    def _fix(self, ids: list[str], ranges: list[float]) -> Fix | None:
        if len(ranges) < 3:
            return None
        a = np.array([self.anchors[i] for i in ids])
        p = self.params
        return multilaterate(a, ranges, p.tag_height_m, p.range_sd_m, robust=p.gate_chi2 > 0)

    def _start(self, t: int, fix: Fix, o) -> None:
        ekf = _ekf_class()(dim_x=3, dim_z=1)
        ekf.x = np.array([[fix.x], [fix.y], [0.0]])
        ekf.P = np.zeros((3, 3))
        ekf.P[:2, :2] = fix.cov
        ekf.P[2, 2] = math.pi ** 2
        self.ekf, self.t_ns, self.yaw_known, self._align = ekf, t, False, []
        self.odom_at = o if o is not None else (self._last_consumed[1] if self._last_consumed else None)
        self.stats.initialised = True
        self.stats.yaw_known = False

    def _restart_position(self, fix: Fix) -> None:
        P = self.ekf.P.copy()
        P[:2, :] = 0.0
        P[:, :2] = 0.0
        P[:2, :2] = fix.cov
        self.ekf.x[0, 0], self.ekf.x[1, 0] = fix.x, fix.y
        self.ekf.P = P
        if not self.yaw_known:
            self._align = []

    def _predict(self, t: int, o) -> None:
        """Move the filter to t with the odometry increment since its last odometry pose."""
        p, ekf = self.params, self.ekf
        dt = max(0.0, (t - self.t_ns) / 1e9) if self.t_ns is not None else 0.0
        inc = (0.0, 0.0, 0.0)
        if o is not None and self.odom_at is not None and o != self.odom_at:
            inc = between(self.odom_at, o)
            if math.hypot(inc[0], inc[1]) > p.odom_reset_m:
                self.stats.odom_resets += 1          # the cart's odometry restarted: no increment
                inc = (0.0, 0.0, 0.0)
        if o is not None:
            self.odom_at = o
        dist, turn = math.hypot(inc[0], inc[1]), abs(inc[2])
        pos_sd = p.odom_dist_frac * dist + p.odom_turn_m_per_rad * turn
        walk = p.pos_sd_per_sqrt_s if o is not None else p.pos_sd_no_odom_per_sqrt_s
        pos_var = pos_sd ** 2 + walk ** 2 * dt
        yaw_var = (p.odom_yaw_frac * turn) ** 2 + p.yaw_sd_per_sqrt_s ** 2 * dt
        if not self.yaw_known:
            # Heading unknown: the increment's direction in map is too. Keep the position, widen it.
            ekf.P = ekf.P + np.diag([pos_var + dist ** 2, pos_var + dist ** 2, 0.0])
        else:
            yaw = ekf.x[2, 0]
            c, s = math.cos(yaw), math.sin(yaw)
            ekf.F = np.array([[1.0, 0.0, -s * inc[0] - c * inc[1]],
                              [0.0, 1.0, c * inc[0] - s * inc[1]],
                              [0.0, 0.0, 1.0]])
            ekf.Q = np.diag([pos_var, pos_var, yaw_var])
            ekf.predict(u=inc)
        self.t_ns = max(self.t_ns or t, t)

    def _update(self, ids: list[str], ranges: list[float], q: list[float]) -> list[int]:
        """One UWB round (a joint, iterated update); returns the indices of the ranges used."""
        p, ekf = self.params, self.ekf
        sds = [p.range_sd_m / max(qi, 0.3) if p.use_quality else p.range_sd_m for qi in q]
        anchors = [self._anchor_rel(i) for i in ids]
        x0, P0 = ekf.x.copy(), ekf.P.copy()
        n = len(ranges)
        if p.gate_chi2 <= 0:                                  # no outlier rejection: every range counts
            self._iterated_update(x0, P0, anchors, ranges, sds, x0)
            return list(range(n))
        if np.trace(P0[:2, :2]) > p.wide_prior_m2:
            use = self._consensus(ids, anchors, ranges, sds, x0, P0)
        else:
            # Tracking: gate each range by its Mahalanobis distance to the prior. A range that passed
            # alone can still disagree with the others: the worst post-fit residual beyond the gate
            # goes and the round is redone.
            use = [i for i in range(n) if self._nis(anchors[i], ranges[i], sds[i]) <= p.gate_chi2]
            while use:
                self._iterated_update(x0, P0, [anchors[i] for i in use], [ranges[i] for i in use],
                                      [sds[i] for i in use], x0)
                res = [abs(ranges[i] - _range(ekf.x, anchors[i]).item()) / sds[i] for i in use]
                worst = int(np.argmax(res))
                if len(use) <= 2 or res[worst] ** 2 <= p.gate_chi2:
                    break
                use.pop(worst)
        if not use:
            ekf.x, ekf.P = x0, P0
        return use

    def _consensus(self, ids, anchors, ranges, sds, x0, P0) -> list[int]:
        """A wide prior (after a sharp turn or a gap) admits more than one range solution and gates
        nothing: minimise prior term + sum(min(residual^2 / sd^2, gate)) (a too-short range is not
        capped: multipath only lengthens) over the subsets that leave out up to two ranges, each
        solved from its own multilateration, then update with the ranges that fit the winner."""
        p, ekf, n = self.params, self.ekf, len(ranges)
        absolute = np.array([self.anchors[i] for i in ids])
        sizes = [k for k in (n, n - 1, n - 2) if k >= 2]
        if sum(math.comb(n, k) for k in sizes) > 64:
            sizes = sizes[:2]
        Pinv = np.linalg.inv(P0)
        best: tuple[float, np.ndarray] | None = None
        for k in sizes:
            for subset in itertools.combinations(range(n), k):
                start = x0
                fit = _fit(absolute, np.asarray(ranges), list(subset), p.tag_height_m, p.range_sd_m) if k >= 3 else None
                if fit is not None:
                    start = np.array([[fit.x], [fit.y], [x0[2, 0]]])
                self._iterated_update(x0, P0, [anchors[i] for i in subset], [ranges[i] for i in subset],
                                      [sds[i] for i in subset], start)
                dx = ekf.x - x0
                dx[2, 0] = wrap(dx[2, 0])
                res = [(ranges[i] - _range(ekf.x, anchors[i]).item()) / sds[i] for i in range(n)]
                # Multipath only lengthens a range: a long one costs at most the gate, a short one in full.
                cost = (dx.T @ Pinv @ dx).item() + sum(min(r * r, p.gate_chi2) if r > 0 else r * r for r in res)
                if best is None or cost < best[0] - 1e-9:
                    best = (cost, ekf.x.copy())
        x = best[1]
        use = [i for i in range(n) if (ranges[i] - _range(x, anchors[i]).item()) ** 2 / sds[i] ** 2 <= p.gate_chi2]
        if use:
            self._iterated_update(x0, P0, [anchors[i] for i in use], [ranges[i] for i in use],
                                  [sds[i] for i in use], x)
        return use

    def _iterated_update(self, x0, P0, anchors, z, sds, start, iterations: int = 8) -> None:
        """Iterated EKF update (Gauss-Newton on the posterior) with filterpy's update step: the
        measurement is relinearised at each iterate x_i, h(x_i) + H_i (x0 - x_i), so a wide prior
        (after a turn, a gap, a restart) converges instead of stopping at the first linearisation."""
        ekf = self.ekf
        zv = np.array(z, dtype=float).reshape(-1, 1)
        R = np.diag(np.square(sds))
        xi = start.copy()
        for _ in range(iterations):
            H = np.vstack([_range_jacobian(xi, a) for a in anchors])
            hx = np.vstack([_range(xi, a) for a in anchors]) + H @ (x0 - xi)
            ekf.x, ekf.P = x0.copy(), P0.copy()
            ekf.update(zv, lambda _x, H=H: H, lambda _x, hx=hx: hx, R=R)
            step = float(np.hypot(*(ekf.x[:2, 0] - xi[:2, 0])))
            xi = ekf.x.copy()
            if step < 1e-4:
                break
        ekf.x[2, 0] = wrap(ekf.x[2, 0])
        ekf.P = (ekf.P + ekf.P.T) / 2.0

    def _anchor_rel(self, anchor_id: str) -> tuple[float, float, float]:
        """The anchor relative to the tag's height (the state is planar)."""
        ax, ay, az = self.anchors[anchor_id]
        return ax, ay, az - self.params.tag_height_m

    def _nis(self, a: tuple[float, float, float], r: float, sd: float) -> float:
        """Normalised innovation squared of one range against the prior (its Mahalanobis distance^2)."""
        H = _range_jacobian(self.ekf.x, a)
        S = (H @ self.ekf.P @ H.T).item() + sd ** 2
        y = r - _range(self.ekf.x, a).item()
        return y * y / S

    def _collect_alignment(self) -> None:
        """Align the heading once the odometry has moved far enough (2-D Procrustes)."""
        if self.yaw_known or self.odom_at is None:
            return
        o, m = self.odom_at, self.ekf.x[:2, 0]
        self._align.append((o[0], o[1], float(m[0]), float(m[1])))
        pts = np.array(self._align)
        travelled = float(np.max(np.hypot(pts[:, 0] - pts[0, 0], pts[:, 1] - pts[0, 1])))
        if travelled < self.params.yaw_init_m or len(pts) < 5:
            return
        od, md = pts[:, :2] - pts[:, :2].mean(0), pts[:, 2:] - pts[:, 2:].mean(0)
        theta = math.atan2(float(np.sum(od[:, 0] * md[:, 1] - od[:, 1] * md[:, 0])), float(np.sum(od * md)))
        ekf = self.ekf
        ekf.x[2, 0] = wrap(theta + o[2])
        ekf.P[2, :] = 0.0
        ekf.P[:, 2] = 0.0
        ekf.P[2, 2] = self.params.yaw_init_sd_rad ** 2
        self.yaw_known = self.stats.yaw_known = True
        self._align = []

    def _pose(self, source: str, ids: Sequence[str] = (), used: Sequence[int] = ()) -> CartPose:
        x, y, yaw = (float(v) for v in self.ekf.x[:, 0])
        m2o = None
        if self.yaw_known and self.odom_at is not None:
            m2o = compose((x, y, yaw), inverse(self.odom_at))
        rejected = tuple(a for i, a in enumerate(ids) if i not in set(used))
        return CartPose(int(self.t_ns), x, y, wrap(yaw), self.ekf.P.copy(), source, self.yaw_known, m2o,
                        len(used), len(rejected), rejected)


# ---- bags ----------------------------------------------------------------------------------------
def odom_pose(msg) -> tuple[float, float, float]:
    """nav_msgs/Odometry -> planar (x, y, yaw)."""
    p, q = msg.pose.pose.position, msg.pose.pose.orientation
    yaw = math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))
    return float(p.x), float(p.y), yaw


def cart_of(topic: str) -> tuple[str, str] | None:
    """'/store/carts/cart_1/uwb' -> ('cart_1', 'uwb')."""
    parts = topic.strip("/").split("/")
    if len(parts) >= 3 and parts[-3] == "carts":
        return parts[-2], parts[-1]
    return None


def localize_messages(messages, anchors: Mapping[str, Sequence[float]], params: CartParams | None = None
                      ) -> tuple[dict[str, list[CartPose]], dict[str, CartStats]]:
    """Every cart's poses from recorded messages (objects with .topic and a decoded .msg, e.g.
    storefuse_core.bag.read_bag): the offline twin of the cart_localizer node."""
    from storefuse_core.convert import stamp_ns
    filters: dict[str, CartLocalizer] = {}
    poses: dict[str, list[CartPose]] = {}
    for m in messages:
        which = cart_of(m.topic)
        if which is None or which[1] not in ("uwb", "odom"):
            continue
        cart, leaf = which
        loc = filters.setdefault(cart, CartLocalizer(anchors, params))
        t = stamp_ns(m.msg.header.stamp)
        now = getattr(m, "log_ns", None)
        if leaf == "uwb":
            out = loc.add_uwb(t, list(m.msg.anchor_ids), [float(r) for r in m.msg.ranges_m],
                              [float(q) for q in m.msg.quality], now_ns=now)
        else:
            out = loc.add_odom(t, *odom_pose(m.msg), now_ns=now)
        poses.setdefault(cart, []).extend(out)
    for cart, loc in filters.items():
        poses.setdefault(cart, []).extend(loc.flush())
    return poses, {c: f.stats for c, f in filters.items()}


def pose_to_msg(f, pose: CartPose):
    """geometry_msgs/PoseWithCovarianceStamped in map (f: a convert.MsgFactory); the 3x3 (x, y, yaw)
    covariance goes into the 6x6 (x y z roll pitch yaw); z, roll and pitch are fixed on a floor."""
    from storefuse_core.convert import header
    cov = np.zeros((6, 6))
    ix = [0, 1, 5]
    cov[np.ix_(ix, ix)] = pose.cov
    cov[2, 2] = cov[3, 3] = cov[4, 4] = 1e-6
    return f("geometry_msgs/msg/PoseWithCovarianceStamped", header=header(f, pose.stamp_ns, "map"),
             pose=f("geometry_msgs/msg/PoseWithCovariance", pose=_pose_msg(f, pose.x, pose.y, pose.yaw),
                    covariance=f.array(cov, "d")))


def transform_msg(f, stamp: int, parent: str, child: str, xyyaw: Sequence[float]):
    """geometry_msgs/TransformStamped parent -> child for a planar pose."""
    from storefuse_core.convert import header
    half = xyyaw[2] / 2.0
    return f("geometry_msgs/msg/TransformStamped", header=header(f, stamp, parent), child_frame_id=child,
             transform=f("geometry_msgs/msg/Transform",
                         translation=f("geometry_msgs/msg/Vector3", x=float(xyyaw[0]), y=float(xyyaw[1]), z=0.0),
                         rotation=f("geometry_msgs/msg/Quaternion", x=0.0, y=0.0, z=math.sin(half),
                                    w=math.cos(half))))


def _pose_msg(f, x: float, y: float, yaw: float):
    return f("geometry_msgs/msg/Pose", position=f("geometry_msgs/msg/Point", x=float(x), y=float(y), z=0.0),
             orientation=f("geometry_msgs/msg/Quaternion", x=0.0, y=0.0, z=math.sin(yaw / 2.0),
                           w=math.cos(yaw / 2.0)))


def store_anchors(store) -> dict[str, tuple[float, float, float]]:
    return {a.id: (a.x, a.y, a.z) for a in store.uwb_anchors.values()}


# ---- the basket ----------------------------------------------------------------------------------
@dataclass
class BasketItem:
    sku: str
    name: str
    grams: float                       # as the cart scale measured it
    scan_ns: int
    weight_ns: int


@dataclass
class BasketNote:
    """Something that did not pair up, for review."""
    kind: str                          # scan_not_placed | unscanned_weight | unmatched_removal
    stamp_ns: int
    sku: str = ""
    grams: float = 0.0


@dataclass
class CartBasket:
    """Items in one cart from its scan and weight events (CartEvent), in stamp order.

    `products`: sku -> object with .name, .grams, .grams_sd (layout Products)."""
    products: Mapping[str, object]
    confirm_s: float = 4.0             # a scan and its weight change at most this far apart
    min_grams: float = 5.0             # smaller settled changes are noise
    rel_tol: float = 0.1               # weight match: within 3 sd (scale + product) or this fraction
    items: list[BasketItem] = field(default_factory=list)
    notes: list[BasketNote] = field(default_factory=list)
    pending_scans: list[tuple[int, str]] = field(default_factory=list)
    pending_weights: list[tuple[int, float, float]] = field(default_factory=list)   # stamp, grams, sd
    total_grams: float = 0.0           # the cart scale's own total
    version: int = 0                   # bumps on every change of items or notes

    def scan(self, stamp_ns: int, sku: str) -> bool:
        changed = self.advance(stamp_ns)
        best = self._best_weight(sku, stamp_ns)
        if best is not None:
            t, grams, _ = self.pending_weights.pop(best)
            self._add(sku, grams, stamp_ns, t)
            return True
        self.pending_scans.append((stamp_ns, sku))
        return changed

    def weight(self, stamp_ns: int, delta_grams: float, total_grams: float | None = None,
               noise_sd: float = 2.0) -> bool:
        changed = self.advance(stamp_ns)
        if total_grams is not None:
            self.total_grams = float(total_grams)
        if abs(delta_grams) < self.min_grams:
            return changed
        if delta_grams > 0:
            best = self._best_scan(delta_grams, noise_sd, stamp_ns)
            if best is None:
                self.pending_weights.append((stamp_ns, float(delta_grams), float(noise_sd)))
                return changed
            t, sku = self.pending_scans.pop(best)
            self._add(sku, float(delta_grams), t, stamp_ns)
            return True
        grams = -float(delta_grams)
        cands = [(abs(it.grams - grams), -it.weight_ns, k) for k, it in enumerate(self.items)
                 if self._matches(it.sku, grams, noise_sd, measured=it.grams)]
        if cands:
            self.items.pop(min(cands)[2])
        else:
            self.notes.append(BasketNote("unmatched_removal", stamp_ns, "", round(grams, 2)))
        self.version += 1
        return True

    def advance(self, stamp_ns: int) -> bool:
        """Expire scans and weights older than confirm_s before stamp_ns into notes."""
        limit = stamp_ns - int(self.confirm_s * 1e9)
        old_s = [s for s in self.pending_scans if s[0] < limit]
        old_w = [w for w in self.pending_weights if w[0] < limit]
        if not old_s and not old_w:
            return False
        self.pending_scans = [s for s in self.pending_scans if s[0] >= limit]
        self.pending_weights = [w for w in self.pending_weights if w[0] >= limit]
        self.notes += [BasketNote("scan_not_placed", t, sku) for t, sku in old_s]
        self.notes += [BasketNote("unscanned_weight", t, "", round(g, 2)) for t, g, _ in old_w]
        self.notes.sort(key=lambda n: (n.stamp_ns, n.kind))
        self.version += 1
        return True

    def _matches(self, sku: str, grams: float, sd: float, measured: float | None = None) -> bool:
        p = self.products.get(sku)
        if measured is not None:
            unit, unit_sd = measured, 0.0
        elif p is None or not getattr(p, "grams", 0.0):
            return True                                   # unknown weight: any change confirms
        else:
            unit, unit_sd = float(p.grams), float(getattr(p, "grams_sd", 0.0))
        tol = max(3.0 * math.hypot(sd, unit_sd), self.rel_tol * unit)
        return abs(grams - unit) <= tol

    def _unit(self, sku: str) -> float:
        return float(getattr(self.products.get(sku), "grams", 0.0) or 0.0)

    def _best_scan(self, grams: float, sd: float, stamp_ns: int) -> int | None:
        c = [(abs(grams - self._unit(sku)), -t, k) for k, (t, sku) in enumerate(self.pending_scans)
             if abs(stamp_ns - t) <= self.confirm_s * 1e9 and self._matches(sku, grams, sd)]
        return min(c)[2] if c else None

    def _best_weight(self, sku: str, stamp_ns: int) -> int | None:
        c = [(abs(g - self._unit(sku)), -t, k) for k, (t, g, sd) in enumerate(self.pending_weights)
             if abs(stamp_ns - t) <= self.confirm_s * 1e9 and self._matches(sku, g, sd)]
        return min(c)[2] if c else None

    def _add(self, sku: str, grams: float, scan_ns: int, weight_ns: int) -> None:
        name = str(getattr(self.products.get(sku), "name", sku))
        self.items.append(BasketItem(sku, name, round(grams, 2), scan_ns, weight_ns))
        self.version += 1

    def lines(self) -> list[dict]:
        """Items grouped by sku: [{"sku", "name", "qty"}], sorted by sku."""
        out: dict[str, dict] = {}
        for it in self.items:
            line = out.setdefault(it.sku, {"sku": it.sku, "name": it.name, "qty": 0})
            line["qty"] += 1
        return [out[k] for k in sorted(out)]

    def to_dict(self, cart_id: str = "", stamp_ns: int = 0) -> dict:
        return {"cart_id": cart_id, "stamp_ns": stamp_ns, "lines": self.lines(),
                "items": [asdict(it) for it in self.items], "pending_scans": [s for _, s in self.pending_scans],
                "notes": [asdict(n) for n in self.notes], "scale_total_grams": round(self.total_grams, 2),
                "items_grams": round(sum(it.grams for it in self.items), 2)}

    def to_json(self, cart_id: str = "", stamp_ns: int = 0) -> str:
        return json.dumps(self.to_dict(cart_id, stamp_ns), sort_keys=True)
