"""Shoppers walking the store and moving units on and off plates: the timeline and ground truth.

Everything is a function of the scenario and its seed. Time zero is the start of the devices'
streams; device clocks are T0_NS + scenario seconds, so every stamp a run produces is reproducible.
Shoppers walk around gondolas (floor.py), stand in front of the plate, reach in with an arm (the
hand presses on the shelf before the item leaves), and some items rest across two plates.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from storefuse_core.calibration import Calibration
from storefuse_core.layout import Store
from storefuse_core.simulation.floor import Floor
from storefuse_core.simulation.scenario import Scenario, Shopper

T0_NS = 1_767_225_600_000_000_000      # 2026-01-01T00:00:00Z: the simulated stores' epoch
WALK_MPS = 1.1
STOCK_PER_PLATE = 10
STRADDLE_PROB = 0.25                   # units of a multi-plate product resting across two plates
TAIL_S = 3.0
REACH_S = 0.8                          # hand on the shelf
LIFT_AT_S = 0.5                        # item leaves (or lands) this long after the hand arrives
HANDLE_S = 2.0                         # one unit: reach, take, put in basket


def ns(seconds: float) -> int:
    """Scenario seconds to device nanoseconds, on the microsecond grid the frames carry."""
    return T0_NS + int(round(seconds * 1e6)) * 1000


@dataclass
class Step:
    """A lasting change of a plate's load (a unit, or its share on this plate, taken or put)."""
    t_s: float
    plate: str
    grams: float


@dataclass
class Touch:
    """A hand resting on the shelf: a bump that rises, holds and falls (no lasting change)."""
    t0_s: float
    t1_s: float
    plate: str
    grams: float


@dataclass
class GateRead:
    t_s: float
    gate_id: str
    action: str
    token: str
    party: int = 1
    staff: bool = False


@dataclass
class Unit:
    grams: float
    split: tuple[tuple[str, float], ...]     # (plate, fraction of the weight on it)


@dataclass
class PersonPose:
    """What a camera sees of a person at one instant (the renderer's and detector model's input)."""
    id: str
    x: float
    y: float
    heading_rad: float
    height_m: float
    shirt_bgr: tuple[int, int, int]
    pants_bgr: tuple[int, int, int]
    reach: tuple[float, float, float] | None


@dataclass
class Timeline:
    steps: list[Step] = field(default_factory=list)
    touches: list[Touch] = field(default_factory=list)
    reads: list[GateRead] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    trajectories: dict[str, list[list[float]]] = field(default_factory=dict)
    reaches: dict[str, list[tuple[float, float, tuple[float, float, float]]]] = field(default_factory=dict)
    carts: dict[str, str] = field(default_factory=dict)                 # cart id -> shopper pushing it
    cart_events: list[tuple[float, str, str, str, float]] = field(default_factory=list)  # t, cart, kind, sku, g
    visits: dict[str, dict] = field(default_factory=dict)
    end_s: float = 0.0


class World:
    def __init__(self, scenario: Scenario, calibration: Calibration):
        self.scenario = scenario
        self.store: Store = scenario.store
        self.calibration = calibration
        self.rng = np.random.default_rng(scenario.seed)
        self.floor = Floor(self.store)
        self.stock: dict[str, list[Unit]] = {}        # sku -> units on its plates, front unit last
        self.initial_load: dict[str, float] = {p: 0.0 for p in self.store.plates}
        for sku in sorted(self.store.products):
            p = self.store.products[sku]
            units = []
            for i, pid in enumerate(p.plates):
                for _ in range(STOCK_PER_PLATE):
                    grams = float(self.rng.normal(p.grams, p.grams_sd))
                    nxt = p.plates[i + 1] if i + 1 < len(p.plates) else None
                    if nxt and self._adjacent(pid, nxt) and self.rng.random() < STRADDLE_PROB:
                        f = float(self.rng.uniform(0.3, 0.7))
                        units.append(Unit(grams, ((pid, f), (nxt, 1.0 - f))))
                    else:
                        units.append(Unit(grams, ((pid, 1.0),)))
            order = self.rng.permutation(len(units)) if units else []
            self.stock[sku] = [units[int(k)] for k in order]
            for u in self.stock[sku]:
                for pid, f in u.split:
                    self.initial_load[pid] += u.grams * f
        self.looks: dict[str, tuple] = {}
        self.timeline = Timeline()
        self._run()

    def _adjacent(self, a: str, b: str) -> bool:
        pa, pb = self.store.plates[a], self.store.plates[b]
        return pa.shelf_id == pb.shelf_id and abs(int(a.rsplit("P", 1)[1]) - int(b.rsplit("P", 1)[1])) == 1

    # ---- shoppers -----------------------------------------------------------------------------
    def _run(self) -> None:
        tl, store = self.timeline, self.store
        entries = sorted(g for g in store.gates if store.gates[g].direction == "entry")
        exits = sorted(g for g in store.gates if store.gates[g].direction == "exit")
        baskets: dict[str, list[tuple[str, Unit]]] = {}
        groups: dict[str, list[Shopper]] = {}
        group_exit: dict[str, tuple] = {}
        for s in self.scenario.shoppers:
            if s.group:
                groups.setdefault(s.group, []).append(s)
        for n, s in self._order():
            visit = s.group or s.id
            token = f"tok-{visit}"
            entry = store.gates[entries[n % len(entries)] if not s.group else entries[0]]
            exit_ = store.gates[exits[n % len(exits)] if not s.group else exits[0]]
            first_of_group = not s.group or groups[s.group][0] is s
            if first_of_group:
                party = len(groups[s.group]) if s.group else 1
                self._read(s.enter_s, entry.id, "ENTRY", token, party, s.staff)
                if not s.staff:
                    tl.visits[visit] = {"visit_id": visit, "members": [], "entry_s": s.enter_s,
                                        "token": token}
            if not s.staff:
                tl.visits[visit]["members"].append(s.id)
            self.looks[s.id] = (float(self.rng.uniform(1.55, 1.95)),
                                tuple(int(v) for v in self.rng.integers(20, 235, 3)),
                                tuple(int(v) for v in self.rng.integers(20, 160, 3)))
            baskets.setdefault(s.id, [])          # a hand-over may have reached them already
            tl.reaches[s.id] = []
            if s.cart:
                tl.carts[s.cart] = s.id
            t, pos = s.enter_s + 0.5, (entry.x, entry.y)
            traj = [[s.enter_s, pos[0], pos[1]]]
            for a in s.script:
                if a.kind == "dwell":
                    t += a.seconds
                    traj.append([t, pos[0], pos[1]])
                elif a.kind == "exit":
                    t, pos = self._walk(traj, t, pos, (exit_.x, exit_.y))
                    if s.group:     # one scan out for the group, when its last member leaves
                        group_exit[s.group] = max(group_exit.get(s.group, (0.0,))[0], t), exit_.id, token, s.staff
                    else:
                        self._read(t, exit_.id, "EXIT", token, 1, s.staff)
                    if not s.staff:
                        v = tl.visits[visit]
                        v["exit_s"] = max(v.get("exit_s", 0.0), t)
                    t += 0.5
                    traj.append([t, pos[0], pos[1] - 0.5])
                elif a.kind == "hand_over":
                    moved = [u for u in baskets[s.id] if u[0] == a.sku][: a.qty]
                    for unit in moved:
                        baskets[s.id].remove(unit)
                        baskets.setdefault(a.to, []).append(unit)
                    receiver = tl.trajectories.get(a.to)
                    if receiver and (s.group is None or s.group != self._group_of(a.to)):
                        t, pos = self._meet(traj, t, pos, receiver)
                    else:
                        t += 1.0
                        traj.append([t, pos[0], pos[1]])
                    self._event(t, s, "hand_over", a.sku, [], len(moved), 0.0, to=a.to)
                else:
                    t, pos = self._shelf_action(s, a, t, pos, traj, baskets)
            tl.trajectories[s.id] = traj
            tl.end_s = max(tl.end_s, t)
        for t_exit, gate_id, token, staff in (group_exit[g] for g in sorted(group_exit)):
            self._read(t_exit, gate_id, "EXIT", token, 1, staff)
        for visit in tl.visits.values():
            counts: dict[str, int] = {}
            for m in visit["members"]:
                for sku, _ in baskets.get(m, []):
                    counts[sku] = counts.get(sku, 0) + 1
            visit["lines"] = [{"sku": sku, "name": store.products[sku].name, "qty": q}
                              for sku, q in sorted(counts.items()) if q > 0]
        tl.end_s += TAIL_S

    def _group_of(self, shopper_id: str):
        return next((s.group for s in self.scenario.shoppers if s.id == shopper_id), None)

    def _order(self) -> list[tuple[int, Shopper]]:
        """Shoppers in scenario order, except that a visit receiving a hand-over from another visit
        is simulated first: the giver then knows where to walk to hand it over."""
        blocks: dict[str, list[tuple[int, Shopper]]] = {}
        for n, s in enumerate(self.scenario.shoppers):
            blocks.setdefault(s.group or s.id, []).append((n, s))
        order = list(blocks)
        for _ in range(len(order)):
            moved = False
            for giver in list(order):
                for _, s in blocks[giver]:
                    for a in s.script:
                        to = (self._group_of(a.to) or a.to) if a.kind == "hand_over" else None
                        if to in blocks and to != giver and order.index(to) > order.index(giver):
                            order.remove(to)
                            order.insert(order.index(giver), to)
                            moved = True
            if not moved:
                break
        return [item for v in order for item in blocks[v]]

    def _meet(self, traj, t, pos, other):
        """Walk to another shopper and keep beside them for 1.5 s while handing something over."""
        target = _position(other, t)
        for _ in range(2):       # aim where they will be on arrival
            eta = t + math.hypot(target[0] - pos[0], target[1] - pos[1]) / WALK_MPS
            target = _position(other, eta)
        t, pos = self._walk(traj, t, pos, target)
        for k in range(1, 16):
            x, y = _position(other, t + 0.1 * k)
            traj.append([t + 0.1 * k, x + 0.35, y])
        return t + 1.5, (traj[-1][1], traj[-1][2])

    def _shelf_action(self, s: Shopper, a, t, pos, traj, baskets):
        product = self.store.products[a.sku]
        for _ in range(a.qty):
            if a.kind == "pick":
                if not self.stock[a.sku]:
                    self._event(t, s, "out_of_stock", a.sku, [], 0, 0.0)
                    continue
                unit = self.stock[a.sku].pop()
                sign = -1.0
            else:
                held = [u for u in baskets[s.id] if u[0] == a.sku]
                if held:
                    baskets[s.id].remove(held[-1])
                    unit = held[-1][1]
                else:
                    home = a.plate or (product.plates[0] if product.plates else "")
                    if not home:
                        continue
                    unit = Unit(float(self.rng.normal(product.grams, product.grams_sd)), ((home, 1.0),))
                if a.plate:
                    unit = Unit(unit.grams, ((a.plate, 1.0),))
                sign = 1.0
            main = max(unit.split, key=lambda pf: pf[1])[0]
            t, pos = self._walk(traj, t, pos, self._front(main))
            reach = self._reach_point(main)
            self.timeline.reaches[s.id].append((t, t + REACH_S, reach))
            self.timeline.touches.append(Touch(t, t + REACH_S, main, float(self.rng.uniform(60.0, 250.0))))
            for pid, f in unit.split:
                self.timeline.steps.append(Step(t + LIFT_AT_S, pid, sign * unit.grams * f))
            if a.kind == "pick":
                if not s.staff:
                    baskets[s.id].append((a.sku, unit))
                if s.cart:      # into the smart cart: the scanner reads it, then the cart scale settles
                    self.timeline.cart_events.append((t + LIFT_AT_S + 0.8, s.cart, "scan", a.sku, 0.0))
                    self.timeline.cart_events.append((t + LIFT_AT_S + 1.3, s.cart, "weight", a.sku, unit.grams))
            else:
                self.stock[a.sku].append(unit)
                if s.cart:      # taken out of the cart before it goes back on the shelf
                    self.timeline.cart_events.append((t - 0.2, s.cart, "weight", a.sku, -unit.grams))
            self._event(t + LIFT_AT_S, s, "pick" if sign < 0 else "put", a.sku, [p for p, _ in unit.split], 1,
                        unit.grams, misplaced=bool(a.plate and a.plate not in product.plates))
            t += HANDLE_S
            traj.append([t, pos[0], pos[1]])
        return t, pos

    def _front(self, plate_id: str) -> tuple[float, float]:
        plate = self.store.plates[plate_id]
        g = self.store.gondolas[plate.gondola_id]
        off = g.depth_m / 2 + 0.45
        return plate.x + math.sin(g.yaw) * off, plate.y - math.cos(g.yaw) * off

    def _reach_point(self, plate_id: str) -> tuple[float, float, float]:
        plate = self.store.plates[plate_id]
        g = self.store.gondolas[plate.gondola_id]
        off = g.depth_m / 2 - 0.1
        return (round(plate.x + math.sin(g.yaw) * off, 3), round(plate.y - math.cos(g.yaw) * off, 3),
                plate.z + 0.1)

    def _walk(self, traj, t, pos, target):
        for wp in self.floor.path(pos, target)[1:]:
            dist = math.hypot(wp[0] - pos[0], wp[1] - pos[1])
            steps = max(1, int(dist / WALK_MPS * 10))
            for k in range(1, steps + 1):
                f = k / steps
                traj.append([t + f * dist / WALK_MPS, pos[0] + f * (wp[0] - pos[0]),
                             pos[1] + f * (wp[1] - pos[1])])
            t, pos = t + dist / WALK_MPS, (float(wp[0]), float(wp[1]))
        return t, pos

    def _read(self, t, gate, action, token, party, staff):
        self.timeline.reads.append(GateRead(t, gate, action, token, party, staff))
        dup = self.scenario.sensors["gate_duplicate_prob"]
        dup += sum(float(f.get("rate", 1.0)) for f in self.scenario.faults
                   if f["kind"] == "gate_duplicate_read" and f.get("gate", gate) == gate)
        if self.rng.random() < dup:
            self.timeline.reads.append(GateRead(t + 0.3, gate, action, token, party, staff))

    def _event(self, t, shopper: Shopper, kind, sku, plates, qty, grams, **extra):
        self.timeline.events.append(dict(t_ns=ns(t), shopper=shopper.id, payer=shopper.group or shopper.id,
                                         staff=shopper.staff, kind=kind, sku=sku, plates=plates, qty=qty,
                                         grams=round(grams, 3), **extra))

    # ---- what cameras see ---------------------------------------------------------------------
    def people_at(self, t_s: float) -> list[PersonPose]:
        if getattr(self, "_times", None) is None:     # built once: cameras ask ten times a second
            self._times = {sid: np.array([p[0] for p in traj]) for sid, traj in self.timeline.trajectories.items()}
        out = []
        for sid, traj in self.timeline.trajectories.items():
            if not traj or t_s < traj[0][0] or t_s > traj[-1][0]:
                continue
            times = self._times[sid]
            k = max(1, int(np.searchsorted(times, t_s)))
            k = min(k, len(traj) - 1)
            (t0, x0, y0), (t1, x1, y1) = traj[k - 1], traj[k]
            f = 0.0 if t1 <= t0 else (t_s - t0) / (t1 - t0)
            x, y = x0 + f * (x1 - x0), y0 + f * (y1 - y0)
            heading = math.atan2(y1 - y0, x1 - x0) if (x1, y1) != (x0, y0) else math.pi / 2
            reach = next((r for a, b, r in self.timeline.reaches.get(sid, []) if a <= t_s <= b), None)
            if reach is not None:
                heading = math.atan2(reach[1] - y, reach[0] - x)
            height, shirt, pants = self.looks[sid]
            out.append(PersonPose(sid, x, y, heading, height, shirt, pants, reach))
        return out

    def cart_pose(self, cart_id: str, t_s: float) -> tuple[float, float, float] | None:
        """The cart trails its shopper by 0.7 m; None when it is not in the store."""
        sid = self.timeline.carts.get(cart_id)
        pose = next((p for p in self.people_at(t_s) if p.id == sid), None) if sid else None
        if pose is None:
            return None
        h = pose.heading_rad if pose.reach is None else pose.heading_rad + math.pi / 2
        return pose.x - 0.7 * math.cos(h), pose.y - 0.7 * math.sin(h), h

    # ---- ground truth -------------------------------------------------------------------------
    def ground_truth(self) -> dict:
        tl = self.timeline
        visits = []
        for v in sorted(tl.visits.values(), key=lambda v: (v["exit_s"], v["visit_id"])):
            visits.append({"visit_id": v["visit_id"], "members": v["members"], "entry_ns": ns(v["entry_s"]),
                           "exit_ns": ns(v["exit_s"]), "lines": v["lines"]})
        return {
            "store": self.store.name, "seed": self.scenario.seed, "t0_ns": T0_NS,
            "duration_s": round(tl.end_s, 3), "visits": visits,
            "staff": sorted(s.id for s in self.scenario.shoppers if s.staff),
            "events": sorted(tl.events, key=lambda e: (e["t_ns"], e["shopper"])),
            "faults": [dict(f) for f in self.scenario.faults],
            "carts": {c: {"shopper": sid, "events": [[ns(t), kind, sku, round(g, 3)]
                                                     for t, cid, kind, sku, g in self.timeline.cart_events if cid == c]}
                      for c, sid in sorted(self.timeline.carts.items())},
            "trajectories": {k: [[ns(p[0]), round(p[1], 3), round(p[2], 3)] for p in v]
                             for k, v in sorted(tl.trajectories.items())},
        }


def simulate(scenario: Scenario, calibration: Calibration) -> World:
    return World(scenario, calibration)


def _position(traj: list, t: float) -> tuple[float, float]:
    """Where a trajectory ([t, x, y] rows) is at time t (held at its ends)."""
    if t <= traj[0][0]:
        return traj[0][1], traj[0][2]
    for (t0, x0, y0), (t1, x1, y1) in zip(traj, traj[1:]):
        if t0 <= t <= t1:
            f = (t - t0) / (t1 - t0) if t1 > t0 else 1.0
            return x0 + f * (x1 - x0), y0 + f * (y1 - y0)
    return traj[-1][1], traj[-1][2]
