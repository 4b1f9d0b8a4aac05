"""Every scenario in scenarios/ loads, and for the scripted ones the simulator's ground-truth
receipts are exactly what the script implies (computed here independently of the simulator)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml

from storefuse_core.calibration import load_calibration
from storefuse_core.simulation.scenario import load_scenario
from storefuse_core.simulation.world import World

LIBRARY = sorted((Path(__file__).resolve().parents[3] / "scenarios").glob("*.yaml"))
SCRIPTED = [p for p in LIBRARY if not any("random" in s for s in yaml.safe_load(p.read_text())["shoppers"])]


def implied_receipts(scenario) -> dict[str, Counter]:
    """The DESIGN.md meanings: put_back and hand_over move one unit unless qty is given; a group pays
    one receipt; an item handed to another payer is billed to whoever leaves with it; staff never pay."""
    baskets: dict[str, Counter] = {s.id: Counter() for s in scenario.shoppers}
    for s in scenario.shoppers:                      # the simulator plays shoppers in entry order
        for a in s.script:
            if a.kind == "pick":
                baskets[s.id][a.sku] += a.qty
            elif a.kind == "put_back":
                baskets[s.id][a.sku] -= min(a.qty, baskets[s.id][a.sku])
            elif a.kind == "hand_over":
                moved = min(a.qty, baskets[s.id][a.sku])
                baskets[s.id][a.sku] -= moved
                baskets[a.to][a.sku] += moved
    receipts: dict[str, Counter] = {}
    for s in scenario.shoppers:
        if not s.staff:
            receipts.setdefault(s.group or s.id, Counter()).update(baskets[s.id])
    return {k: +v for k, v in receipts.items()}


def test_the_library_covers_the_standard_suite():
    names = {p.stem for p in LIBRARY}
    for fault in ("camera_dropout", "serial_garbage", "plate_dead", "plate_drift", "gate_duplicate_read",
                  "sensor_clock_skew", "kill_node"):
        assert f"fault_{fault}" in names
    assert {"aifi_busy_shelf", "aifi_lookalikes", "minimart_misplaced", "minimart_groups", "minimart_smart_carts",
            "aifi_rush_hour", "minimart_day", "grocery_peak"} <= names


@pytest.mark.parametrize("path", LIBRARY, ids=[p.stem for p in LIBRARY])
def test_scenario_loads(path):
    sc = load_scenario(path)
    assert sc.shoppers


@pytest.mark.parametrize("path", SCRIPTED, ids=[p.stem for p in SCRIPTED])
def test_ground_truth_receipts_are_what_the_script_implies(path):
    sc = load_scenario(path)
    gt = World(sc, load_calibration(sc.store.root / "calibration.yaml")).ground_truth()
    got = {v["visit_id"]: Counter({ln["sku"]: ln["qty"] for ln in v["lines"]}) for v in gt["visits"]}
    assert got == implied_receipts(sc)
    for v in gt["visits"]:
        assert v["entry_ns"] < v["exit_ns"]
