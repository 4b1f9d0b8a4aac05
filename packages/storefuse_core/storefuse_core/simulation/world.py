"""Shoppers walking the store and moving units on and off plates: the timeline and ground truth.

Everything is a function of the scenario and its seed. Time zero is the start of the devices'
streams; device clocks are T0_NS + scenario seconds, so every stamp a run produces is reproducible.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from storefuse_core.calibration import Calibration
from storefuse_core.layout import Store
from storefuse_core.simulation.scenario import Scenario, Shopper

T0_NS = 1_767_225_600_000_000_000      # 2026-01-01T00:00:00Z: the simulated stores' epoch
WALK_MPS = 1.0
STOCK_PER_PLATE = 10
TAIL_S = 3.0


def ns(seconds: float) -> int:
    """Scenario seconds to device nanoseconds, on the microsecond grid the frames carry."""
    return T0_NS + int(round(seconds * 1e6)) * 1000


@dataclass
class Step:
    """A lasting change of a plate's load (a unit taken or put)."""
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
class Timeline:
    steps: list[Step] = field(default_factory=list)
    touches: list[Touch] = field(default_factory=list)
    reads: list[GateRead] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    trajectories: dict[str, list[list[float]]] = field(default_factory=dict)
    visits: dict[str, dict] = field(default_factory=dict)
    end_s: float = 0.0


class World:
    def __init__(self, scenario: Scenario, calibration: Calibration):
        self.scenario = scenario
        self.store: Store = scenario.store
        self.calibration = calibration
        self.rng = np.random.default_rng(scenario.seed)
        self.stock: dict[str, list[float]] = {}       # plate -> unit weights resting on it
        self.initial_load: dict[str, float] = {}
        for pid in sorted(self.store.plates):
            skus = self.store.plate_products.get(pid, ())
            units = []
            for sku in skus[:1]:
                p = self.store.products[sku]
                units = [float(self.rng.normal(p.grams, p.grams_sd)) for _ in range(STOCK_PER_PLATE)]
            self.stock[pid] = units
            self.initial_load[pid] = float(sum(units))
        self.timeline = Timeline()
        self._run()

    # ---- shoppers -----------------------------------------------------------------------------
    def _run(self) -> None:
        tl, store = self.timeline, self.store
        entry = store.gates[sorted(g for g in store.gates if store.gates[g].direction == "entry")[0]]
        exit_ = store.gates[sorted(g for g in store.gates if store.gates[g].direction == "exit")[0]]
        baskets: dict[str, list[tuple[str, str, float]]] = {}   # shopper -> (sku, origin plate, grams)
        groups: dict[str, list[Shopper]] = {}
        for s in self.scenario.shoppers:
            if s.group:
                groups.setdefault(s.group, []).append(s)
        for s in self.scenario.shoppers:
            visit = s.group or s.id
            token = f"tok-{visit}"
            first_of_group = not s.group or groups[s.group][0] is s
            if first_of_group:
                party = len(groups[s.group]) if s.group else 1
                self._read(s.enter_s, entry.id, "ENTRY", token, party, s.staff)
                if not s.staff:
                    tl.visits[visit] = {"visit_id": visit, "members": [], "entry_s": s.enter_s, "token": token}
            if not s.staff:
                tl.visits[visit]["members"].append(s.id)
            baskets[s.id] = []
            t, pos = s.enter_s + 0.5, (entry.x, entry.y)
            traj = [[t, pos[0], pos[1]]]
            for a in s.script:
                if a.kind == "dwell":
                    t += a.seconds
                    traj.append([t, pos[0], pos[1]])
                elif a.kind == "exit":
                    t, pos = self._walk(traj, t, pos, (exit_.x, exit_.y))
                    last_member = not s.group or groups[s.group][-1] is s
                    if last_member:
                        self._read(t, exit_.id, "EXIT", token, 1, s.staff)
                    if not s.staff:
                        v = tl.visits[visit]
                        v["exit_s"] = max(v.get("exit_s", 0.0), t)
                elif a.kind == "hand_over":
                    moved = [u for u in baskets[s.id] if u[0] == a.sku][: a.qty]
                    for unit in moved:
                        baskets[s.id].remove(unit)
                        baskets.setdefault(a.to, []).append(unit)
                    t += 1.0
                    self._event(t, s.id, "hand_over", a.sku, "", len(moved), 0.0, to=a.to)
                else:
                    t, pos = self._shelf_action(s, a, t, pos, traj, baskets)
            tl.trajectories[s.id] = traj
            tl.end_s = max(tl.end_s, t)
        for visit in tl.visits.values():
            members = visit["members"]
            counts: dict[str, int] = {}
            for m in members:
                for sku, _, _ in baskets.get(m, []):
                    counts[sku] = counts.get(sku, 0) + 1
            visit["lines"] = [{"sku": sku, "name": store.products[sku].name, "qty": q}
                              for sku, q in sorted(counts.items()) if q > 0]
        tl.end_s += TAIL_S

    def _shelf_action(self, s: Shopper, a, t, pos, traj, baskets):
        store = self.store
        product = store.products[a.sku]
        if a.kind == "pick":
            plates = [p for p in product.plates if self.stock[p]] or list(product.plates)
            plate = max(plates, key=lambda p: (len(self.stock[p]), p))
        else:
            held = [u for u in baskets[s.id] if u[0] == a.sku]
            plate = a.plate or (held[-1][1] if held else product.plates[0] if product.plates else "")
        front = self._front(plate)
        t, pos = self._walk(traj, t, pos, front)
        for _ in range(a.qty):
            press = float(self.rng.uniform(60.0, 250.0))
            self.timeline.touches.append(Touch(t, t + 0.8, plate, press))
            if a.kind == "pick":
                grams = self.stock[plate].pop() if self.stock[plate] else product.grams
                self.timeline.steps.append(Step(t + 0.5, plate, -grams))
                if not s.staff:
                    baskets[s.id].append((a.sku, plate, grams))
                self._event(t + 0.5, s.id, "pick", a.sku, plate, 1, grams)
            else:
                held = [u for u in baskets[s.id] if u[0] == a.sku]
                unit = held[-1] if held else (a.sku, plate, float(self.rng.normal(product.grams, product.grams_sd)))
                if held:
                    baskets[s.id].remove(unit)
                self.stock[plate].append(unit[2])
                self.timeline.steps.append(Step(t + 0.5, plate, unit[2]))
                self._event(t + 0.5, s.id, "put", a.sku, plate, 1, unit[2])
            t += 2.0
        traj.append([t, pos[0], pos[1]])
        return t, pos

    def _front(self, plate_id: str) -> tuple[float, float]:
        plate = self.store.plates[plate_id]
        g = self.store.gondolas[plate.gondola_id]
        off = g.depth_m / 2 + 0.35
        return plate.x + math.sin(g.yaw) * off, plate.y - math.cos(g.yaw) * off

    def _walk(self, traj, t, pos, target):
        dist = math.hypot(target[0] - pos[0], target[1] - pos[1])
        steps = max(1, int(dist / WALK_MPS * 10))
        for k in range(1, steps + 1):
            f = k / steps
            traj.append([t + f * dist / WALK_MPS, pos[0] + f * (target[0] - pos[0]), pos[1] + f * (target[1] - pos[1])])
        return t + dist / WALK_MPS, target

    def _read(self, t, gate, action, token, party, staff):
        self.timeline.reads.append(GateRead(t, gate, action, token, party, staff))
        if self.rng.random() < self.scenario.sensors["gate_duplicate_prob"]:
            self.timeline.reads.append(GateRead(t + 0.3, gate, action, token, party, staff))

    def _event(self, t, shopper, kind, sku, plate, qty, grams, **extra):
        self.timeline.events.append(dict(t_ns=ns(t), shopper=shopper, kind=kind, sku=sku, plate=plate,
                                         qty=qty, grams=round(grams, 3), **extra))

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
            "events": sorted(tl.events, key=lambda e: (e["t_ns"], e["shopper"])),
            "trajectories": {k: [[ns(p[0]), round(p[1], 3), round(p[2], 3)] for p in v]
                             for k, v in sorted(tl.trajectories.items())},
        }


def simulate(scenario: Scenario, calibration: Calibration) -> World:
    return World(scenario, calibration)
