"""The shipped stores (minimart, aifi, grocery), the extended layout schema, and what is generated
from layouts (URDF, RViz config, /tf_static and markers): plain pytest, no ROS graph."""
from __future__ import annotations

import csv
import math
import os
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from storefuse_core import aifi, grocery
from storefuse_core.calibration import load_calibration
from storefuse_core.errors import LayoutError
from storefuse_core.layout import load_store, parse_store
from storefuse_core.store_markers import marker_array, tf_static
from storefuse_core.urdf import fixed_joints, rviz_config, store_urdf

REPO = Path(__file__).resolve().parents[3]
STORES = ["minimart", "aifi", "grocery"]
SQFT_PER_M2 = 10.7639


def aifi_dir() -> Path | None:
    for cand in (os.environ.get("STOREFUSE_AIFI_DIR"), REPO.parent / "shared" / "datasets" / "aifi-autocheckout-test1",
                 Path("/work/shared/datasets/aifi-autocheckout-test1")):
        if cand and (Path(cand) / "products.csv").is_file():
            return Path(cand)
    return None


needs_aifi = pytest.mark.skipif(aifi_dir() is None, reason="AiFi dataset absent: set STOREFUSE_AIFI_DIR or put it at "
                                "../shared/datasets/aifi-autocheckout-test1 (it may not be committed)")


@pytest.fixture(scope="module", params=STORES)
def store(request):
    return load_store(request.param)


# --- the shipped stores ------------------------------------------------------------------------

def test_names_follow_the_contract(store):
    for pid, plate in store.plates.items():
        g, s, p = map(int, re.fullmatch(r"G(\d+)S(\d+)P(\d+)", pid).groups())
        assert min(g, s, p) >= 1 and plate.shelf_id == f"G{g}S{s}" and plate.gondola_id == f"G{g}"
        assert pid in store.shelves[plate.shelf_id].plate_ids
    assert all(re.fullmatch(r"scale_G[1-9]\d*", b) for b in store.boards)
    assert all(re.fullmatch(r"cam(0|[1-9]\d*)", c) for c in store.cameras)
    assert all(re.fullmatch(r"gate_(entry|exit)_[1-9]\d*", g) for g in store.gates)
    assert all(re.fullmatch(r"cart_[1-9]\d*", c) for c in store.carts)
    # every placed product sits on plates of one shelf; every product can be found by name
    for p in store.products.values():
        assert len({store.plates[x].shelf_id for x in p.plates}) <= 1
        assert store.product(p.name) is p and store.product(p.sku) is p


def test_devices_are_on_the_floor(store):
    length, width = store.floor_size
    points = [(g.x, g.y) for g in store.gates.values()] + [c.pose[:2] for c in store.cameras.values()]
    points += [(p.x, p.y) for p in store.plates.values()] + [(a.x, a.y) for a in store.uwb_anchors.values()]
    assert all(0 <= x <= length and 0 <= y <= width for x, y in points)


def test_aifi_store_sizes():
    s = load_store("aifi")
    assert sorted(s.gondolas) == ["G1", "G2", "G3", "G4", "G5"]
    assert len(s.plates) == 348 and max(len(sh.plate_ids) for sh in s.shelves.values()) == 14
    assert [len(s.gondolas[g].shelf_ids) for g in sorted(s.gondolas)] == [6, 6, 5, 6, 6]
    assert sorted(s.cameras, key=lambda c: int(c[3:])) == [f"cam{i}" for i in range(12)]
    assert {(c.width, c.height) for c in s.cameras.values()} == {(640, 360)}
    assert sorted(s.gates) == ["gate_entry_1", "gate_exit_1"]
    placed = [p for p in s.products.values() if p.plates]
    assert len(s.products) == 391 and len(placed) == 121
    taco = s.product("Taco Bell Fire")
    assert taco.plates == ("G2S5P4", "G2S5P5", "G2S5P6") and taco.grams == pytest.approx(105.53)
    assert s.product("FIJI WATER .5 LTR").plates == ("G1S5P9", "G1S5P10")
    assert taco.sku == aifi.sku_for("Taco Bell Fire") == "AIFI-" + taco.sku[5:] and len(taco.sku) == 15
    # a catalogue name with stray whitespace is kept verbatim, and still found by its tidy spelling
    kool = s.product("Kool-Aid Jammers Tropical Punch Juice Drinks 10 ct")
    assert kool.name.endswith("10 ct\n\n") and kool.plates == ()
    text = (s.root / "layout.yaml").read_text()
    assert "http" not in text and "Image" not in text         # the CSV's image URLs stay out of the repo


def test_grocery_store_sizes():
    s = load_store("grocery")
    length, width = s.floor_size
    assert length * width * SQFT_PER_M2 >= 10_000
    assert len(s.cameras) >= 40 and sum(c.kind == "depth" for c in s.cameras.values()) >= 5
    assert len(s.plates) >= 1000 and len(s.products) >= 300
    assert sum(g.direction == "entry" for g in s.gates.values()) >= 2
    assert sum(g.direction == "exit" for g in s.gates.values()) >= 2
    assert len(s.uwb_anchors) >= 4 and len(s.deal_zones) >= 2 and len(s.carts) >= 2
    assert all(z.skus and all(k in s.products for k in z.skus) for z in s.deal_zones.values())
    assert all(p.plates for p in s.products.values()) and set(s.plate_products) == set(s.plates)


def neighbour_pairs(s):
    """(left, right) products on neighbouring plates of one shelf."""
    for shelf in s.shelves.values():
        seq = []
        for pid in shelf.plate_ids:
            for sku in s.plate_products.get(pid, ()):
                if not seq or seq[-1] != sku:
                    seq.append(sku)
        yield from zip(seq, seq[1:])


def test_grocery_has_look_alikes_on_neighbouring_plates():
    s = load_store("grocery")
    pairs = list(neighbour_pairs(s))
    close = [(a, b) for a, b in pairs if abs(s.products[a].grams - s.products[b].grams) <= 5.0]
    assert len(close) >= 40, len(close)
    assert len(close) < len(pairs) / 4          # ... but most neighbours are told apart by weight


def test_grocery_generation_is_deterministic_and_committed():
    text = grocery.generate_layout()
    assert text == grocery.generate_layout()
    assert text == (REPO / "urdf_store" / "grocery" / "layout.yaml").read_text()


@pytest.mark.parametrize("name", ["aifi", "grocery"])
def test_generated_calibration_covers_every_plate(name):
    s = load_store(name)
    cal = load_calibration(s.root / "calibration.yaml")
    assert set(cal.gains) == set(s.plates)
    assert all(0.2 < g < 0.3 for g in cal.gains.values())


# --- the aifi importer ---------------------------------------------------------------------------

TINY_CSV = """Name,Gondola,Shelf,Plate,Weight,Price,Image
Taco Bell Fire,2,5,4,105.52999877929688,1,http://img/1.jpg
Taco Bell Fire,2,5,5,105.52999877929688,1,http://img/1.jpg
 Spaced Name ,1,1,1,50.0,2,http://img/2.jpg
Ivory Soap,-1,-1,-1,765.0,4,http://img/3.jpg
Ivory Soap,-1,-1,-1,1.68,0,http://img/4.jpg
Unknown Weight,-1,-1,-1,0.0,1,http://img/5.jpg
"""


def test_importer_on_a_small_csv(tmp_path):
    path = tmp_path / "products.csv"
    path.write_text(TINY_CSV)
    text = aifi.layout_from_products_csv(path)
    assert text == aifi.layout_from_products_csv(path)
    s = parse_store(text, tmp_path / "layout.yaml")
    assert len(s.products) == 4 and "http" not in text
    assert s.product("Taco Bell Fire").plates == ("G2S5P4", "G2S5P5")
    assert s.product(" Spaced Name ").name == " Spaced Name " and s.product("Spaced Name").plates == ("G1S1P1",)
    ivory = s.product("Ivory Soap")        # the 1.68 g placeholder row loses to the real one
    assert (ivory.grams, ivory.price, ivory.plates) == (765.0, 4.0, ())
    assert s.product("Unknown Weight").grams == 0.0
    assert s.product("Taco Bell Fire").grams_sd == pytest.approx(max(1.0, 0.02 * 105.53), abs=0.01)


@pytest.mark.parametrize("row, needle", [
    ("Lost,9,1,1,10,1,x", "no plate G9S1P1"),
    ("Lost,1,4,15,10,1,x", "no plate G1S4P15"),
    ("Lost,1,one,1,10,1,x", "must be integers"),
    ("Taco Bell Fire,2,5,6,99.0,1,x", "different weights"),
    ("Weightless,1,2,2,0,1,x", "no unit weight"),
])
def test_importer_rejects_a_bad_row(tmp_path, row, needle):
    path = tmp_path / "products.csv"
    path.write_text(TINY_CSV + row + "\n")
    with pytest.raises(LayoutError, match=needle):
        aifi.layout_from_products_csv(path)


@needs_aifi
def test_aifi_import_matches_the_dataset_and_the_committed_layout():
    folder = aifi_dir()
    text = aifi.layout_from_products_csv(folder / "products.csv")
    assert text == aifi.layout_from_products_csv(folder / "products.csv")
    assert text == (REPO / "urdf_store" / "aifi" / "layout.yaml").read_text()
    s = parse_store(text, Path("aifi/layout.yaml"))
    with (folder / "products.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(s.products) == len({r["Name"] for r in rows})
    placed = {}
    for r in rows:
        if r["Gondola"] != "-1":
            placed.setdefault(r["Name"], set()).add(f"G{r['Gondola']}S{r['Shelf']}P{r['Plate']}")
            assert s.product(r["Name"]).grams == pytest.approx(float(r["Weight"]), abs=1e-3)
            assert s.product(r["Name"]).price == pytest.approx(float(r["Price"]))
    assert {s.product(n).sku: set(p) for n, p in placed.items()} == \
        {p.sku: set(p.plates) for p in s.products.values() if p.plates}
    # every recorded plate file is a plate of the layout, and nothing more
    files = {"G{}S{}P{}".format(*re.findall(r"\d+", f.name)) for f in (folder / "plates").glob("*.csv")}
    if files:
        assert files == set(s.plates)


# --- schema and validation ------------------------------------------------------------------------

BASE = """
store: t
floor: {length_m: 10.0, width_m: 8.0}
gondolas:
  - {id: G1, x: 3.0, y: 3.0, length_m: 2.0, depth_m: 0.5, shelf_heights_m: [0.3, 0.8], plates_per_shelf: [2, 4]}
  - {id: G2, x: 3.0, y: 6.0, yaw_deg: 90, length_m: 2.0, depth_m: 0.5, shelf_heights_m: [0.3], plates_per_shelf: 2}
gates:
  - {id: gate_entry_1, x: 8.0, y: 0.5, width_m: 0.9}
  - {id: gate_exit_1, x: 9.0, y: 0.5}
cameras:
  - {id: cam0, kind: depth, x: 3, y: 3, z: 3, roll_deg: 180, width: 640, height: 480, fx: 380, fy: 380, cx: 320,
     cy: 240, range_m: 5}
  - {id: cam1, x: 6, y: 3, z: 3, roll_deg: 180, width: 640, height: 360, fx: 300, fy: 300, cx: 320, cy: 180}
uwb_anchors:
  - {id: uwb_1, x: 0.2, y: 0.2, z: 2.5}
  - {id: uwb_2, x: 9.8, y: 7.8, z: 2.5}
carts:
  - {id: cart_1}
deal_zones:
  - {id: snack_deal, polygon: [[1, 1], [5, 1], [5, 2], [1, 2]], skus: [A, B], description: Two for one}
products:
  - {sku: A, name: Apple pack, grams: 100.0, price: 1.0, plates: [G1S1P1]}
  - {sku: B, name: Bottle, grams: 200.0, grams_sd: 3.0, price: 3.0, plates: [G1S2P1, G1S2P2]}
  - {sku: C, name: Catalogue only, grams: 0, price: 2.0, plates: []}
"""


def parse(text):
    return parse_store(text, Path("t.yaml"))


def test_extended_schema_loads():
    s = parse(BASE)
    assert s.floor == (10.0, 8.0)
    assert [len(s.shelves[x].plate_ids) for x in ("G1S1", "G1S2", "G2S1")] == [2, 4, 2]
    assert s.plates["G1S2P1"].width_m == pytest.approx(0.5) and s.plates["G1S1P1"].width_m == pytest.approx(1.0)
    assert s.board_plates("scale_G1") == ("G1S1P1", "G1S1P2", "G1S2P1", "G1S2P2", "G1S2P3", "G1S2P4")
    assert s.cameras["cam0"].kind == "depth" and s.cameras["cam0"].range_m == 5.0
    assert s.cameras["cam1"].kind == "rgb" and s.cameras["cam1"].range_m == 6.0
    assert s.gates["gate_entry_1"].width_m == 0.9 and s.gates["gate_exit_1"].width_m == 1.0
    assert sorted(s.uwb_anchors) == ["uwb_1", "uwb_2"] and s.uwb_anchors["uwb_2"].z == 2.5
    assert list(s.carts) == ["cart_1"]
    zone = s.deal_zones["snack_deal"]
    assert zone.skus == ("A", "B") and len(zone.polygon) == 4 and zone.description == "Two for one"
    assert s.products["C"].grams == 0.0 and s.products["C"].plates == ()
    # optical frame looking straight down: view axis -z, image right +x
    assert np.allclose(s.cameras["cam0"].rotation()[:, 2], [0, 0, -1])
    assert np.allclose(s.cameras["cam0"].rotation()[:, 0], [1, 0, 0])


@pytest.mark.parametrize("old, new, needles", [
    ("plates: [G1S1P1]", "plates: [G1S3P1]", ["product A (Apple pack)", "unknown plate 'G1S3P1'"]),
    ("plates: [G1S1P1]", "plates: [G1S1P1, G1S1P1]", ["product A", "plate listed twice"]),
    ("plates: [G1S2P1, G1S2P2]", "plates: [G1S1P2, G1S2P1]", ["product B", "more than one shelf"]),
    ("skus: [A, B]", "skus: [A, Z]", ["deal_zones[0]", "unknown sku 'Z'"]),
    ("{id: G2, x: 3.0, y: 6.0", "{id: G2, x: 3.5, y: 3.2", ["gondolas[1]", "gondola G2 overlaps gondola G1"]),
    ("{id: G2, x: 3.0, y: 6.0", "{id: G2, x: 3.0, y: 7.5", ["gondolas[1]", "outside the floor"]),
    ("{id: gate_exit_1, x: 9.0", "{id: gate_exit_1, x: 10.5", ["gates[1]", "gate gate_exit_1", "outside the floor"]),
    ("{id: uwb_2, x: 9.8, y: 7.8", "{id: uwb_2, x: 9.8, y: -1", ["uwb_anchors[1]", "outside the floor"]),
    ("cy: 180}", "}", ["cameras[1]", "camera cam1 has no intrinsics 'cy'"]),
    ("kind: depth", "kind: thermal", ["cameras[0]", "kind must be one of rgb, depth"]),
    ("{id: cam1,", "{id: cam0,", ["cameras[1]", "duplicate camera id cam0"]),
    ("{id: cam1,", "{id: cam01,", ["cameras[1]", "camera ids are cam<N>"]),
    ("{id: gate_exit_1,", "{id: gate_entry_1,", ["gates[1]", "duplicate gate id gate_entry_1"]),
    ("{id: gate_exit_1,", "{id: gate_exit_0,", ["gates[1]", "got 'gate_exit_0'"]),
    ("{id: G2,", "{id: G1,", ["gondolas[1]", "duplicate gondola id G1"]),
    ("{id: G2,", "{id: G0,", ["gondolas[1]", "needs an id like G1"]),
    ("{id: uwb_2,", "{id: uwb_1,", ["uwb_anchors[1]", "duplicate UWB anchor id uwb_1"]),
    ("{id: uwb_2,", "{id: anchor2,", ["uwb_anchors[1]", "UWB anchor ids are uwb_<n>"]),
    ("{id: cart_1}", "{id: cart_0}", ["carts[0]", "cart ids are cart_<n>"]),
    ("{id: cart_1}", "{id: trolley}", ["carts[0]", "got 'trolley'"]),
    ("{id: snack_deal,", "{id: Snack Deal,", ["deal_zones[0]", "deal zone ids"]),
    ("[[1, 1], [5, 1], [5, 2], [1, 2]]", "[[1, 1], [5, 1]]", ["deal_zones[0]", "at least 3 [x, y] points"]),
    ("[[1, 1], [5, 1], [5, 2], [1, 2]]", "[[1, 1], [2, 2], [3, 3]]", ["deal_zones[0]", "no area"]),
    ("[[1, 1], [5, 1], [5, 2], [1, 2]]", "[[1, 1], [50, 1], [5, 2]]", ["deal_zones[0]", "outside the floor"]),
    ("plates_per_shelf: [2, 4]", "plates_per_shelf: [2]", ["gondolas[0]", "one integer per shelf: 2 shelves"]),
    ("plates_per_shelf: [2, 4]", "plates_per_shelf: [2, 0]", ["gondolas[0]", "plates_per_shelf >= 1"]),
    ("plates_per_shelf: [2, 4]", "plates_per_shelf: 2.5", ["gondolas[0]", "plates_per_shelf >= 1"]),
    ("grams: 0, price: 2.0, plates: []", "grams: 0, price: 2.0, plates: [G2S1P1]", ["product C", "grams must be > 0"]),
    ("grams_sd: 3.0", "grams_sd: 0", ["product B", "'grams_sd' must be > 0"]),
    ("floor: {length_m: 10.0, width_m: 8.0}", "floor: {length_m: 10.0}", ["floor", "missing 'width_m'"]),
    ("length_m: 2.0, depth_m: 0.5, shelf_heights_m: [0.3, 0.8]", "length_m: 2.0, depth_m: -1, shelf_heights_m: [0.3]",
     ["gondolas[0]", "'depth_m' must be > 0"]),
])
def test_one_clear_error_naming_the_entry(old, new, needles):
    assert old in BASE
    with pytest.raises(LayoutError) as info:
        parse(BASE.replace(old, new, 1))
    message = str(info.value)
    assert message.startswith("t.yaml: ") and "\n" not in message, message
    for needle in needles:
        assert needle in message, message


def test_a_floorless_layout_skips_the_floor_checks():
    s = parse(BASE.replace("floor: {length_m: 10.0, width_m: 8.0}\n", "")
              .replace("{id: gate_exit_1, x: 9.0", "{id: gate_exit_1, x: 30.0"))
    assert s.floor is None and s.floor_size[0] >= 30.0


# --- URDF, RViz, /tf_static, markers --------------------------------------------------------------

def test_committed_urdf_and_rviz_are_current(store):
    assert (store.root / f"{store.name}.urdf").read_text() == store_urdf(store), "run: storefuse urdf"
    assert (REPO / "launch" / f"{store.name}.rviz").read_text() == rviz_config(store), "run: storefuse urdf"


def test_urdf_parses_with_a_link_per_device(store):
    import yourdfpy

    robot = yourdfpy.URDF.load(str(store.root / f"{store.name}.urdf"), build_scene_graph=False, load_meshes=False)
    links = {link.name for link in robot.robot.links}
    wanted = ({f"{p}_link" for p in store.plates} | {f"{s}_link" for s in store.shelves}
              | {f"{g}_link" for g in store.gondolas} | {f"{g}_link" for g in store.gates}
              | {f"{a}_link" for a in store.uwb_anchors}
              | {f"{c}_{suffix}" for c in store.cameras for suffix in ("link", "optical_frame")})
    assert wanted <= links and links - wanted == {"map"}
    assert all(j.type == "fixed" for j in robot.robot.joints)
    assert len(robot.robot.joints) == len(links) - 1


def test_urdf_frames_are_where_the_layout_says():
    import yourdfpy

    store = load_store("aifi")
    robot = yourdfpy.URDF.load(str(store.root / "aifi.urdf"), load_meshes=False)
    for pid in ("G1S1P1", "G2S5P4", "G5S6P12", "G1S4P14"):
        p = store.plates[pid]
        assert np.allclose(robot.get_transform(f"{pid}_link", "map")[:3, 3], (p.x, p.y, p.z), atol=1e-5)
    for cam in store.cameras.values():
        t = robot.get_transform(f"{cam.id}_optical_frame", "map")
        assert np.allclose(t[:3, 3], cam.pose[:3], atol=1e-5)
        assert np.allclose(t[:3, :3], cam.rotation(), atol=1e-5)
        assert t[2, 2] < -0.5                      # ceiling cameras look down
        link = robot.get_transform(f"{cam.id}_link", "map")
        assert np.allclose(link[:3, 0], t[:3, 2], atol=1e-5)    # REP-103: link x = optical z


def test_rviz_config_reads_the_latched_topics():
    cfg = yaml.safe_load(rviz_config(load_store("minimart"), namespace="shop"))
    manager = cfg["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"] == "map"
    by_class = {d["Class"]: d for d in manager["Displays"]}
    model = by_class["rviz_default_plugins/RobotModel"]
    assert model["Description Source"] == "Topic" and model["Description Topic"]["Value"] == "/robot_description"
    assert model["Description Topic"]["Durability Policy"] == "Transient Local"
    assert by_class["rviz_default_plugins/MarkerArray"]["Topic"]["Value"] == "/shop/markers"
    assert "rviz_default_plugins/TF" in by_class


def fake_factory(msgtype, /, **fields):
    return SimpleNamespace(_type=msgtype, **fields)


def test_tf_static_has_every_fixed_transform():
    store = load_store("minimart")
    msg = tf_static(fake_factory, store)
    assert msg._type == "tf2_msgs/msg/TFMessage"
    children = {t.child_frame_id: t for t in msg.transforms}
    assert len(children) == len(msg.transforms) == len(fixed_joints(store))
    assert {f"{p}_link" for p in store.plates} <= set(children)
    t = children["G3S2P4_link"]
    p = store.plates["G3S2P4"]
    assert t.header.frame_id == "map" and (t.transform.translation.x, t.transform.translation.y) == (p.x, p.y)
    q = t.transform.rotation
    assert math.isclose(q.x ** 2 + q.y ** 2 + q.z ** 2 + q.w ** 2, 1.0)
    assert children["cam0_optical_frame"].header.frame_id == "cam0_link"


def test_markers_show_plates_by_product_frusta_gates_and_deals():
    store = parse(BASE)
    markers = marker_array(fake_factory, store).markers
    assert markers[0].action == 3                              # DELETEALL first: no stale marks
    by_ns = {}
    for m in markers[1:]:
        by_ns.setdefault(m.ns, []).append(m)
    assert len(by_ns["plates"]) == len(store.plates)
    colour = {m.header.frame_id: (m.color.r, m.color.g, m.color.b) for m in by_ns["plates"]}
    assert colour["G1S2P1_link"] == colour["G1S2P2_link"] != colour["G1S1P1_link"]   # same product, same colour
    assert colour["G1S1P2_link"] != colour["G1S1P1_link"]                               # empty plate: grey
    frusta = {m.header.frame_id: m for m in by_ns["camera_frusta"]}
    assert set(frusta) == {"cam0_optical_frame", "cam1_optical_frame"}
    assert len(frusta["cam0_optical_frame"].points) == 16
    assert max(p.z for p in frusta["cam0_optical_frame"].points) == pytest.approx(3.0)   # cut at the floor
    assert len(by_ns["gate_zones"]) == 2 and len(by_ns["deal_zones"]) == 1
    assert "Two for one" in by_ns["deal_labels"][0].text
    assert len(by_ns["uwb_anchors"][0].points) == 2
    assert "Apple pack" in next(m.text for m in by_ns["plate_labels"] if m.header.frame_id == "G1S1P1_link")
    ids = [(m.ns, m.id) for m in markers[1:]]
    assert len(ids) == len(set(ids))
