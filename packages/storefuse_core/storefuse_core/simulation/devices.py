"""What the store's devices put on their serial lines, sample by sample.

Load cells: raw ADC counts = offset + grams / grams_per_count, with per-plate noise (heavy-tailed
across plates like the real AiFi plates: median ~0.7 g), slow drift, integer quantisation and the
hand's press while an item is taken. Gate readers: ENTRY/EXIT frames plus heartbeats.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from storefuse_core.frame import gate_frame, scale_frame
from storefuse_core.simulation.world import T0_NS, World, ns

HEARTBEAT_S = 0.5


class ScaleBoardSim:
    def __init__(self, world: World, board_id: str, index: int):
        store, sensors = world.store, world.scenario.sensors
        self.board_id = board_id
        self.plates = store.board_plates(board_id)
        self.rate = sensors["plate_rate_hz"]
        self.phase_ns = index * 1_000_000 + 137_000
        rng = np.random.default_rng([world.scenario.seed, index, 1])
        self.rng = rng
        # Per-plate noise is heavy-tailed across plates, as on the real AiFi plates (sd of sample
        # differences: median ~1.1 g, p90 ~3.8 g, p99 ~11 g): lognormal around plate_noise_g.
        med = sensors["plate_noise_g"]
        self.noise = np.minimum(med * np.exp(rng.normal(0.0, 1.1, len(self.plates))), 15.0 * max(med, 0.1))
        self.drift = sensors["plate_drift_g_per_h"] / 3600.0 * rng.choice([-1.0, 1.0], len(self.plates))
        off, gain, _ = world.calibration.arrays(self.plates)
        self.offset, self.gain = off, np.where(gain > 0, gain, 0.24)
        self.base = np.array([world.initial_load[p] for p in self.plates])
        col = {p: i for i, p in enumerate(self.plates)}
        self.steps = sorted((ns(s.t_s), col[s.plate], s.grams) for s in world.timeline.steps if s.plate in col)
        self.touches = [(ns(t.t0_s), ns(t.t1_s), col[t.plate], t.grams)
                        for t in world.timeline.touches if t.plate in col]
        faults = world.scenario.faults
        self.dead = [col[f["plate"]] for f in faults if f["kind"] == "plate_dead" and f["plate"] in col]
        # Like the AiFi store (43 of 348 plates never change), some empty plates are dead cells.
        empty = [i for i, p in enumerate(self.plates) if not store.plate_products.get(p)]
        self.dead += [i for i in empty if rng.random() < sensors.get("dead_empty_plate_fraction", 0.5)]
        for f in faults:
            if f["kind"] == "plate_drift" and f.get("plate") in col:
                self.drift[col[f["plate"]]] += float(f.get("g_per_h", 60.0)) / 3600.0
        self.skew = _skew(faults, board_id)
        self.garbage = sum(float(f.get("rate", 0.01)) for f in world.scenario.faults
                           if f["kind"] == "serial_garbage" and f.get("device") == board_id)
        self.seq = 0
        self.next_k = 0

    def frames_until(self, t_end_ns: int) -> list[tuple[int, bytes]]:
        """Frames for every sample time < t_end_ns not yet produced (in time order)."""
        period = 1e9 / self.rate
        k_end = int(np.ceil((t_end_ns - T0_NS - self.phase_ns) / period))
        if k_end <= self.next_k:
            return []
        k = np.arange(self.next_k, k_end)
        self.next_k = k_end
        t = (T0_NS + self.phase_ns + np.round(k * period / 1000.0).astype(np.int64) * 1000).astype(np.int64)
        while self.steps and self.steps[0][0] <= t[0]:          # changes before this chunk: now the base
            _, c, g = self.steps.pop(0)
            self.base[c] += g
        load = np.tile(self.base, (len(t), 1))
        for ts, c, g in self.steps:
            if ts > t[-1]:
                break
            load[t >= ts, c] += g
        for t0, t1, c, g in self.touches:
            if t1 >= t[0] and t0 <= t[-1]:
                rise = np.clip((t - t0) / 0.15e9, 0.0, 1.0) * np.clip((t1 - t) / 0.1e9, 0.0, 1.0)
                load[:, c] += g * rise
        secs = (t - T0_NS)[:, None] / 1e9
        load += self.drift[None, :] * secs + self.rng.normal(0.0, 1.0, load.shape) * self.noise[None, :]
        counts = np.round(self.offset[None, :] + load / self.gain[None, :]).astype(np.int64)
        for c in self.dead:
            counts[:, c] = int(self.offset[c])
        out = []
        for ti, row in zip(t.tolist(), counts):
            self.seq += 1
            frame = scale_frame(self.seq, self.skew(ti), row)
            if self.garbage and self.rng.random() < self.garbage:
                frame = _corrupt(frame, self.rng)
            out.append((ti, frame))
        return out


class GateSim:
    def __init__(self, world: World, gate_id: str):
        self.gate_id = gate_id
        reads = [(ns(r.t_s), r) for r in world.timeline.reads if r.gate_id == gate_id]
        beats = [(ns(k * HEARTBEAT_S), None) for k in range(int(world.timeline.end_s / HEARTBEAT_S) + 1)]
        self.queue = sorted(reads + beats, key=lambda item: (item[0], item[1] is None))
        self.pos = 0
        self.seq = 0
        self.skew = _skew(world.scenario.faults, gate_id)

    def frames_until(self, t_end_ns: int) -> list[tuple[int, bytes]]:
        out = []
        while self.pos < len(self.queue) and self.queue[self.pos][0] < t_end_ns:
            t, read = self.queue[self.pos]
            self.pos += 1
            self.seq += 1
            stamp = self.skew(t)
            if read is None:
                out.append((t, gate_frame(self.seq, stamp, "HB")))
            else:
                out.append((t, gate_frame(self.seq, stamp, read.action, read.token, read.party, read.staff)))
        return out


def _skew(faults, device: str):
    """sensor_clock_skew: the device's clock is off by offset_ms and runs drift_ppm fast."""
    for f in faults:
        if f["kind"] == "sensor_clock_skew" and f.get("device") == device:
            offset = int(float(f.get("offset_ms", 0.0)) * 1e6)
            ppm = float(f.get("drift_ppm", 0.0))
            return lambda t: t + offset + int((t - T0_NS) * ppm * 1e-6) // 1000 * 1000
    return lambda t: t


def _corrupt(frame: bytes, rng) -> bytes:
    """Line noise: a flipped byte (checksum catches it) or a truncated frame."""
    b = bytearray(frame)
    if rng.random() < 0.5:
        i = int(rng.integers(1, max(2, len(b) - 2)))
        b[i] = (b[i] + 1 + int(rng.integers(0, 90))) % 128 or 33
        return bytes(b)
    return bytes(b[: int(rng.integers(1, len(b) - 2))]) + b"\r\n"


@dataclass
class CartMessage:
    """One message a smart cart's computer publishes (carts talk Wi-Fi/ROS, not serial)."""
    t_ns: int
    cart_id: str
    kind: str                      # uwb | odom | event
    data: dict


class CartSim:
    """UWB ranges to the anchors (noise, multipath), wheel odometry (scale error, heading drift),
    barcode scans and the cart scale's settled changes."""

    UWB_HZ, ODOM_HZ = 10.0, 20.0

    def __init__(self, world: World, cart_id: str, index: int):
        self.world, self.cart_id = world, cart_id
        self.rng = np.random.default_rng([world.scenario.seed, index, 7])
        self.anchors = sorted(world.store.uwb_anchors.values(), key=lambda a: a.id)
        self.scale_err = 1.0 + float(self.rng.normal(0.0, 0.02))
        self.gyro_bias = float(self.rng.normal(0.0, 0.002))
        ev = sorted(e for e in world.timeline.cart_events if e[1] == cart_id)
        self.events = [(ns(t), kind, sku, g) for t, _, kind, sku, g in ev]
        self.next_uwb = self.next_odom = T0_NS
        self.odom = None            # x, y, yaw in the cart's odom frame
        self.prev = None
        self.total = 0.0
        self.seq = 0

    def messages_until(self, t_end_ns: int) -> list[CartMessage]:
        out: list[CartMessage] = []
        while self.next_odom < t_end_ns:
            out += self._odom(self.next_odom)
            self.next_odom += int(1e9 / self.ODOM_HZ)
        while self.next_uwb < t_end_ns:
            out += self._uwb(self.next_uwb)
            self.next_uwb += int(1e9 / self.UWB_HZ)
        while self.events and self.events[0][0] < t_end_ns:
            t, kind, sku, grams = self.events.pop(0)
            self.seq += 1
            if kind == "scan":
                data = {"kind": 0, "barcode": sku, "delta": 0.0, "total": self.total, "sd": 0.0}
            else:
                measured = grams + float(self.rng.normal(0.0, 2.0))
                self.total += measured
                data = {"kind": 1, "barcode": "", "delta": round(measured, 2), "total": round(self.total, 2), "sd": 2.0}
            out.append(CartMessage(t, self.cart_id, "event", dict(data, seq=self.seq)))
        return sorted(out, key=lambda m: (m.t_ns, m.kind))

    def _true(self, t_ns: int):
        return self.world.cart_pose(self.cart_id, (t_ns - T0_NS) / 1e9)

    def _uwb(self, t: int) -> list[CartMessage]:
        pose = self._true(t)
        if pose is None or not self.anchors:
            return []
        ids, ranges, quality = [], [], []
        for a in self.anchors:
            d = math.sqrt((a.x - pose[0]) ** 2 + (a.y - pose[1]) ** 2 + (a.z - 1.0) ** 2)
            if d > 30.0:
                continue
            r, q = d + float(self.rng.normal(0.0, 0.08)), float(self.rng.uniform(0.7, 1.0))
            if self.rng.random() < 0.05:                       # multipath: the first path was blocked
                r += float(self.rng.uniform(0.3, 2.0))
                q = float(self.rng.uniform(0.2, 0.8))
            ids.append(a.id)
            ranges.append(round(r, 3))
            quality.append(round(q, 2))
        return [CartMessage(t, self.cart_id, "uwb", {"anchor_ids": ids, "ranges": ranges, "quality": quality})]

    def _odom(self, t: int) -> list[CartMessage]:
        pose = self._true(t)
        if pose is None:
            self.prev = None
            return []
        if self.prev is None:
            self.prev, self.odom = pose, [0.0, 0.0, 0.0]
        dt = 1.0 / self.ODOM_HZ
        dist = math.hypot(pose[0] - self.prev[0], pose[1] - self.prev[1]) * self.scale_err
        dyaw = math.atan2(math.sin(pose[2] - self.prev[2]), math.cos(pose[2] - self.prev[2])) + self.gyro_bias * dt
        self.odom[2] += dyaw
        self.odom[0] += dist * math.cos(self.odom[2])
        self.odom[1] += dist * math.sin(self.odom[2])
        self.prev = pose
        return [CartMessage(t, self.cart_id, "odom", {"x": self.odom[0], "y": self.odom[1], "yaw": self.odom[2],
                                                      "v": dist / dt, "w": dyaw / dt})]


def devices(world: World) -> dict[str, object]:
    """Every serial device of the store: scale boards and gate readers, by device id."""
    out: dict[str, object] = {}
    for i, board in enumerate(world.store.boards):
        out[board] = ScaleBoardSim(world, board, i)
    for gate in sorted(world.store.gates):
        out[gate] = GateSim(world, gate)
    return out


def carts(world: World) -> dict[str, CartSim]:
    return {c: CartSim(world, c, i) for i, c in enumerate(sorted(world.timeline.carts))}
