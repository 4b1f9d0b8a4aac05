"""Store layouts: the source of truth, validated up front with one clear LayoutError."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from storefuse_core.errors import LayoutError, StorefuseError
from storefuse_core.layout import load_store, parse_store, store_dir

GOOD = """
store: small
name: Small test store
gondolas:
  - {id: G1, x: 2.0, y: 2.0, length_m: 2.0, depth_m: 0.5, shelf_heights_m: [0.3, 0.8], plates_per_shelf: 2}
  - {id: G2, x: 2.0, y: 4.0, yaw_deg: 90, length_m: 1.0, depth_m: 0.5, shelf_heights_m: [0.5],
     plates_per_shelf: 3}
gates:
  - {id: gate_entry_1, direction: entry, x: 0.5, y: 0.5}
  - {id: gate_exit_1, x: 1.5, y: 0.5}
cameras:
  - {id: cam0, x: 1, y: 1, z: 3, yaw_deg: 90, width: 640, height: 480, fx: 320, fy: 320, cx: 320, cy: 240}
products:
  - {sku: A, name: Apple pack, grams: 100.0, price: 1.0, plates: [G1S1P1]}
  - {sku: B, name: Bottle, grams: 200.0, grams_sd: 3.0, price: 3.0, plates: [G1S2P1, G1S2P2]}
  - {sku: C, name: Crate, grams: 500.0, price: 9.0}
"""


def parse(text):
    return parse_store(text, Path("x.yaml"))


def bad(text, *needles):
    with pytest.raises(LayoutError) as info:
        parse(text)
    message = str(info.value)
    assert message.startswith("x.yaml"), message
    for needle in needles:
        assert needle in message, message
    return message


def test_minimart_loads(minimart):
    assert minimart.name == "minimart" and minimart.currency == "USD"
    assert len(minimart.plates) == 48
    assert len(minimart.products) >= 20
    assert minimart.boards == ("scale_G1", "scale_G2", "scale_G3")
    assert sorted(minimart.gates) == ["gate_entry_1", "gate_exit_1"]
    assert set(minimart.cameras) == {"cam0", "cam1", "cam2", "cam3"}
    assert all(p.plates for p in minimart.products.values())
    assert minimart.source_text.startswith("# Minimart")


def test_board_plate_order_is_shelf_by_shelf(minimart):
    order = minimart.board_plates("scale_G2")
    assert len(order) == 16
    assert order[:5] == ("G2S1P1", "G2S1P2", "G2S1P3", "G2S1P4", "G2S2P1")
    assert order[-1] == "G2S4P4"
    with pytest.raises(LayoutError, match="no scale board 'scale_G9'"):
        minimart.board_plates("scale_G9")


def test_product_by_sku_or_name(minimart):
    assert minimart.product("MM-0028").name == "Gatorade Cool Blue 28 fl oz"
    assert minimart.product("Gatorade Cool Blue 28 fl oz").sku == "MM-0028"
    assert minimart.plate_products["G3S2P3"] == ("MM-0028",)
    with pytest.raises(KeyError, match="no product"):
        minimart.product("Caviar")


def test_load_by_path_and_by_name_agree(minimart):
    by_path = load_store(minimart.root / "layout.yaml")
    assert by_path.products == minimart.products and by_path.plates == minimart.plates
    assert store_dir("minimart") == minimart.root


def test_unknown_store_name():
    with pytest.raises(LayoutError, match="store 'atlantis' not found"):
        load_store("atlantis")


def test_missing_file(tmp_path):
    with pytest.raises(LayoutError, match="cannot read layout"):
        load_store(tmp_path / "nope.yaml")


def test_token_secret_from_environment(minimart, monkeypatch):
    monkeypatch.delenv("STOREFUSE_TOKEN_SECRET", raising=False)
    default = minimart.token_secret()
    monkeypatch.setenv("STOREFUSE_TOKEN_SECRET", "s3cret")
    assert minimart.token_secret() == b"s3cret" != default


def test_geometry_of_a_small_layout():
    store = parse(GOOD)
    assert store.title == "Small test store"
    assert store.shelves["G1S2"].plate_ids == ("G1S2P1", "G1S2P2")
    p1, p2 = store.plates["G1S1P1"], store.plates["G1S1P2"]
    assert (p1.x, p1.y, p1.z, p1.width_m) == pytest.approx((1.5, 2.0, 0.3, 1.0))
    assert p2.x == pytest.approx(2.5)
    rotated = store.plates["G2S1P1"]                 # yaw 90: plates run along +y
    assert (rotated.x, rotated.y) == pytest.approx((2.0, 4.0 - 1.0 / 3))
    assert store.gondolas["G2"].yaw == pytest.approx(math.pi / 2)
    assert store.gates["gate_exit_1"].direction == "exit"
    assert store.cameras["cam0"].pose[5] == pytest.approx(math.pi / 2)
    assert store.cameras["cam0"].rate_hz == 10.0
    assert store.products["A"].grams_sd == 1.0 and store.products["B"].grams_sd == 3.0
    assert store.products["C"].plates == ()
    assert store.plate_products == {"G1S1P1": ("A",), "G1S2P1": ("B",), "G1S2P2": ("B",)}


def test_layout_error_is_a_storefuse_error():
    assert issubclass(LayoutError, StorefuseError)


def test_bad_yaml():
    bad("gondolas: [1, 2\n", "not valid YAML")


def test_not_a_mapping():
    bad("- a\n- b\n", "a layout is a mapping")


@pytest.mark.parametrize("key", ["store", "gondolas", "gates", "products"])
def test_missing_top_level_key(key):
    lines = GOOD.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(f"{key}:"))
    end = next((j for j in range(start + 1, len(lines)) if lines[j] and not lines[j].startswith(" ")),
               len(lines))
    bad("\n".join(lines[:start] + lines[end:]), f"missing top-level '{key}'")


def test_unknown_plate_on_a_product():
    bad(GOOD.replace("plates: [G1S1P1]", "plates: [G1S1P9]"), "product A (Apple pack)",
        "unknown plate 'G1S1P9'")


def test_product_on_two_shelves():
    bad(GOOD.replace("plates: [G1S1P1]", "plates: [G1S1P1, G1S2P1]"), "product A", "more than one shelf")


def test_plates_must_be_a_list():
    bad(GOOD.replace("plates: [G1S1P1]", "plates: G1S1P1"), "product A", "'plates' must be a list")
    bad(GOOD.replace("plates: [G1S1P1]", "plates: 7"), "product A", "'plates' must be a list")


def test_overlapping_gondolas():
    bad(GOOD.replace("{id: G2, x: 2.0, y: 4.0", "{id: G2, x: 2.5, y: 2.2"), "gondola G2 overlaps gondola G1")


def test_duplicate_gondola():
    bad(GOOD.replace("id: G2, x: 2.0, y: 4.0", "id: G1, x: 6.0, y: 6.0"), "duplicate gondola id G1")


@pytest.mark.parametrize("key", ["fx", "fy", "cx", "cy", "width", "height"])
def test_camera_without_intrinsics(key):
    text = GOOD.replace(f", {key}: ", f", no_{key}: ")
    bad(text, "cameras[0]", "camera cam0 has no intrinsics", f"'{key}'")


def test_camera_with_non_numeric_size():
    bad(GOOD.replace("width: 640", "width: wide"), "cameras[0]", "'width' must be a number")


def test_bad_camera_id():
    bad(GOOD.replace("id: cam0", "id: camera_left"), "camera ids are cam<N>", "camera_left")


@pytest.mark.parametrize("gate_id", ["gate_in_1", "entry_1", "gate_entry_x", "gate_entry"])
def test_bad_gate_id(gate_id):
    bad(GOOD.replace("id: gate_entry_1", f"id: {gate_id}"), "gates[0]", f"got '{gate_id}'")


def test_gate_direction_contradicts_its_id():
    bad(GOOD.replace("{id: gate_entry_1, direction: entry", "{id: gate_entry_1, direction: exit"),
        "gate_entry_1 has direction 'exit'")


def test_store_needs_entry_and_exit_gates():
    bad(GOOD.replace("  - {id: gate_exit_1, x: 1.5, y: 0.5}\n", ""), "at least one exit gate")
    bad(GOOD.replace("  - {id: gate_entry_1, direction: entry, x: 0.5, y: 0.5}\n", ""),
        "at least one entry gate")


@pytest.mark.parametrize("old, new, needle", [
    ("{id: G1, x: 2.0", "{id: Gondola1, x: 2.0", "needs an id like G1"),
    ("{id: G1, x: 2.0", "{id: G1, x: two", "'x' must be a number, got 'two'"),
    ("{id: G1, x: 2.0", "{id: G1, x: true", "'x' must be a number"),
    ("length_m: 2.0, ", "", "missing 'length_m'"),
    ("shelf_heights_m: [0.3, 0.8]", "shelf_heights_m: 0.3", "shelf_heights_m"),
    ("shelf_heights_m: [0.3, 0.8]", "shelf_heights_m: [0.3, low]", "shelf_heights_m"),
    ("shelf_heights_m: [0.3, 0.8], plates_per_shelf: 2", "shelf_heights_m: [0.3, 0.8], plates_per_shelf: 0",
     "plates_per_shelf >= 1"),
])
def test_bad_gondola(old, new, needle):
    assert old in GOOD
    bad(GOOD.replace(old, new, 1), "gondolas[0]", needle)


@pytest.mark.parametrize("old, new, needle", [
    ("{sku: A, name: Apple pack, ", "{name: Apple pack, ", "every product needs a sku and a name"),
    ("sku: B, name: Bottle", "sku: A, name: Bottle", "duplicate sku"),
    ("sku: B, name: Bottle", "sku: B, name: Apple pack", "duplicate name"),
    ("grams: 100.0", "grams: 0", "grams must be > 0"),
    ("grams: 100.0", "grams: heavy", "'grams' must be a number"),
    ("grams: 100.0, price: 1.0", "grams: 100.0", "missing 'price'"),
])
def test_bad_product(old, new, needle):
    assert old in GOOD
    bad(GOOD.replace(old, new, 1), needle)


def test_empty_lists():
    bad(GOOD.replace("products:\n", "products: []\nunused:\n"), "'products' must be a non-empty list")
    bad("store: s\ngondolas: []\ngates: []\nproducts: []\n", "'gondolas' must be a non-empty list")
