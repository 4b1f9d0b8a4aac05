"""Scenario files (DESIGN.md contract), validated on load with one ScenarioError naming the entry."""
from __future__ import annotations

import pytest

from storefuse_core.errors import LayoutError, ScenarioError, StorefuseError
from storefuse_core.simulation.scenario import SENSOR_DEFAULTS, load_scenario, parse_scenario

# The DESIGN.md example, on the minimart planogram.
DESIGN_EXAMPLE = """
store: minimart
seed: 7
shoppers:
  - id: alice
    enter_s: 2.0
    group: g1
    cart: cart_1
    script:
      - pick: {name: "Coca-Cola Classic 12 fl oz Can", qty: 2}
      - put_back: {name: "Coca-Cola Classic 12 fl oz Can"}
      - pick: {name: "Dasani Purified Water 16.9 fl oz"}
      - put_back: {name: "Dasani Purified Water 16.9 fl oz", plate: G1S1P4}
      - pick: {sku: MM-0028}
      - hand_over: {name: "Coca-Cola Classic 12 fl oz Can", to: bob}
      - dwell: {s: 4}
      - exit: {}
  - id: bob
    enter_s: 3.0
    group: g1
    script:
      - pick: {name: "Snickers Chocolate Bar 1.86 oz"}
  - id: sam
    staff: true
    enter_s: 30
    script:
      - put_back: {name: "Pringles Original 5.2 oz", qty: 6}
  - random: {count: 5, arrivals_per_min: 6, picks: [1, 3], put_back_prob: 0.1, group_prob: 0.2}
sensors:
  plate_rate_hz: 60
  plate_noise_g: 0.7
  plate_drift_g_per_h: 5
  camera_rate_hz: 10
  detection_miss_rate: 0.1
  detection_false_per_frame: 0.05
  detection_pos_sd_m: 0.15
faults:
  - {kind: camera_dropout, camera: cam1, at_s: 60, for_s: 30}
  - {kind: serial_garbage, device: scale_G1, rate: 0.01}
  - {kind: plate_dead, plate: G3S2P1}
"""

ONE = """
store: minimart
seed: 3
shoppers:
  - id: alice
    enter_s: 2.0
    script:
      - pick: {name: "Coca-Cola Classic 12 fl oz Can"}
"""


def error(text, *needles):
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "sc.yaml")
    message = str(info.value)
    assert message.startswith("sc.yaml"), message
    for needle in needles:
        assert needle in message, message
    return message


def test_design_example_loads():
    sc = parse_scenario(DESIGN_EXAMPLE, "design.yaml")
    assert sc.store.name == "minimart" and sc.seed == 7
    ids = [s.id for s in sc.shoppers]
    assert {"alice", "bob", "sam"} <= set(ids) and len(ids) == 8
    assert [s.enter_s for s in sc.shoppers] == sorted(s.enter_s for s in sc.shoppers)
    alice = next(s for s in sc.shoppers if s.id == "alice")
    assert (alice.group, alice.cart, alice.staff) == ("g1", "cart_1", False)
    kinds = [a.kind for a in alice.script]
    assert kinds == ["pick", "put_back", "pick", "put_back", "pick", "hand_over", "dwell", "exit"]
    assert alice.script[0].sku == "MM-0001" and alice.script[0].qty == 2
    assert alice.script[3].plate == "G1S1P4"
    assert alice.script[4].sku == "MM-0028"
    assert alice.script[5].to == "bob" and alice.script[6].seconds == 4.0
    sam = next(s for s in sc.shoppers if s.id == "sam")
    assert sam.staff and sam.script[0].qty == 6 and sam.script[-1].kind == "exit"
    assert sc.sensors["plate_rate_hz"] == 60.0 and sc.sensors["gate_duplicate_prob"] == SENSOR_DEFAULTS[
        "gate_duplicate_prob"]
    assert [f["kind"] for f in sc.faults] == ["camera_dropout", "serial_garbage", "plate_dead"]
    assert sc.text == DESIGN_EXAMPLE


def test_script_without_exit_gets_one():
    sc = parse_scenario(ONE)
    assert [a.kind for a in sc.shoppers[0].script] == ["pick", "exit"]


def test_load_from_file_and_seed_override(tmp_path):
    path = tmp_path / "one.yaml"
    path.write_text(ONE)
    sc = load_scenario(path)
    assert sc.seed == 3 and sc.source == str(path)
    assert load_scenario(path, seed=11).seed == 11


def test_missing_file(tmp_path):
    with pytest.raises(ScenarioError, match="cannot read scenario"):
        load_scenario(tmp_path / "none.yaml")


def test_scenario_error_is_a_storefuse_error():
    assert issubclass(ScenarioError, StorefuseError)


def test_unknown_product():
    error(ONE.replace("Coca-Cola Classic 12 fl oz Can", "Caviar"), "alice", "script[0] pick",
          "unknown product 'Caviar'", "minimart")


def test_unknown_sku():
    error(ONE.replace('name: "Coca-Cola Classic 12 fl oz Can"', "sku: MM-9999"), "unknown product 'MM-9999'")


def test_unknown_action():
    error(ONE.replace("- pick:", "- steal:"), "alice", "script[0]", "unknown action 'steal'", "pick")


def test_unknown_sensor_key():
    error(ONE + "sensors: {plate_noise: 0.7}\n", "sensors.plate_noise is not a known sensor setting",
          "plate_noise_g")


def test_non_numeric_sensor():
    error(ONE + "sensors: {plate_noise_g: loud}\n", "sensors.plate_noise_g must be a number")


def test_unknown_plate():
    error(ONE.replace('Can"}', 'Can", plate: G9S9P9}'), "alice", "unknown plate 'G9S9P9'")


def test_unknown_plate_in_a_fault():
    error(ONE + "faults:\n  - {kind: plate_dead, plate: G1S1P9}\n", "faults[0]", "unknown plate 'G1S1P9'")


def test_unknown_fault_kind():
    error(ONE + "faults:\n  - {kind: meteor}\n", "faults[0] needs kind one of")


@pytest.mark.parametrize("old, new, needles", [
    ('- pick: {name: "Coca-Cola Classic 12 fl oz Can"}', '- pick: "Coca-Cola Classic 12 fl oz Can"',
     ("script[0] pick", "arguments must be a mapping")),
    ('Can"}', 'Can", qty: two}', ("qty must be a number, got 'two'",)),
    ('Can"}', 'Can", qty: 0}', ("qty must be >= 1",)),
    ('- pick: {name: "Coca-Cola Classic 12 fl oz Can"}', "- dwell: {s: long}",
     ("dwell", "s must be a number")),
    ('- pick: {name: "Coca-Cola Classic 12 fl oz Can"}', "- pick: {qty: 1}", ("needs sku: or name:",)),
    ('- pick: {name: "Coca-Cola Classic 12 fl oz Can"}', "- {pick: {sku: MM-0001}, exit: {}}",
     ("script[0] must be one action",)),
    ("enter_s: 2.0", "enter_s: soon", ("enter_s must be a number",)),
    ("seed: 3", "seed: lucky", ("seed must be a number",)),
])
def test_badly_typed_entries(old, new, needles):
    assert old in ONE
    error(ONE.replace(old, new), *needles)


def test_script_must_be_a_list():
    text = ONE.split("    script:")[0] + "    script: 5\n"
    error(text, "alice", "script must be a list")


def test_sensors_must_be_a_mapping():
    error(ONE + "sensors: [1, 2]\n", "sensors must be a mapping")


def test_shopper_structure():
    error("store: minimart\nshoppers:\n  - {id: x}\n", "shoppers[0]", "needs id and script")
    error("store: minimart\nshoppers: []\n", "no shoppers")
    error(ONE + ONE.split("shoppers:\n")[1], "duplicate shopper ids")
    error(ONE.replace('Can"}', 'Can"}\n      - hand_over: {sku: MM-0001, to: zed}'),
          "hands over to unknown shopper 'zed'")


def test_not_a_scenario():
    error("just text\n", "a scenario is a mapping")
    error("store: minimart\nshoppers: [\n", "not valid YAML")


def test_unknown_store_is_a_layout_error():
    with pytest.raises(LayoutError, match="store 'atlantis' not found"):
        parse_scenario(ONE.replace("store: minimart", "store: atlantis"))


RANDOM = """
store: minimart
seed: {seed}
shoppers:
  - random: {{count: 6, arrivals_per_min: 4, picks: [1, 4], put_back_prob: 0.3}}
"""


def summary(sc):
    return [(s.id, s.enter_s, [(a.kind, a.sku, a.qty) for a in s.script]) for s in sc.shoppers]


def test_random_shoppers_are_deterministic_for_a_seed():
    a = parse_scenario(RANDOM.format(seed=5))
    b = parse_scenario(RANDOM.format(seed=5))
    c = parse_scenario(RANDOM.format(seed=6))
    assert summary(a) == summary(b)
    assert summary(a) != summary(c)
    assert [s.id for s in a.shoppers] == [f"random_{i:03d}" for i in range(1, 7)]
    for s in a.shoppers:
        picks = [x for x in s.script if x.kind == "pick"]
        assert 1 <= len(picks) <= 4 and s.script[-1].kind == "exit"
        assert all(a.store.products[x.sku].plates for x in picks)
    # the seed argument overrides the file's
    assert summary(parse_scenario(RANDOM.format(seed=5), seed=6)) == summary(c)


def test_random_spec_must_be_numeric():
    error(RANDOM.format(seed=1).replace("count: 6", "count: many"), "random", "count must be a number")
