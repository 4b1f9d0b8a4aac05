"""The `grocery` store: a large (40 x 25 m, ~10,800 sq ft) generated supermarket for scale tests.

Deterministic (a fixed seed, no clock): the same code always writes the same layout, so the
committed urdf_store/grocery/ can be checked against a fresh generation. The planogram is plausible
rather than real: fictional brands, net contents plus packaging for unit weights, and on one shelf
in four a look-alike pair (same product line and size, another flavour) whose unit weights differ by
only a few grams on neighbouring plates — the case weight alone cannot separate.
"""
from __future__ import annotations

import math
import random
from pathlib import Path

from storefuse_core.frames import look_at_rpy
from storefuse_core.layout import dump_layout, parse_store

SEED = 20261125
FLOOR = (40.0, 25.0)
SHELF_HEIGHTS = [0.15, 0.55, 0.95, 1.35, 1.75]
PLATES_PER_SHELF = [3, 4, 4, 5, 5]            # wide plates at the bottom for heavy packs
GONDOLA_LENGTH_M, GONDOLA_DEPTH_M = 4.0, 0.6
RUN_X = [5.0, 9.0, 13.0, 17.0, 23.0, 27.0, 31.0, 35.0]       # two runs of 4 with a cross aisle at x=20
# (y, yaw_deg, categories of the 8 gondolas): three back-to-back pairs of aisles, then the back wall.
LINES = [
    (5.7, 0, ["beverages"] * 4 + ["snacks"] * 4), (6.3, 180, ["candy"] * 4 + ["breakfast"] * 4),
    (10.2, 0, ["pasta"] * 4 + ["canned"] * 4), (10.8, 180, ["baking"] * 4 + ["coffee_tea"] * 4),
    (14.7, 0, ["household"] * 4 + ["personal_care"] * 4), (15.3, 180, ["pet"] * 4 + ["beverages"] * 4),
    (24.0, 0, ["dairy"] * 8),
]
BRANDS = ["Sunvale", "Northfield", "Golden Acre", "Bluebird", "Maple Ridge", "Harvest Moon", "Riverbend",
          "Crestview", "Pure Valley", "Brightday", "Green Hollow", "Silver Birch", "Copper Kettle", "Meadowlark",
          "Red Barn", "Seabreeze", "Highland", "Little Fern", "Cedar Point", "Stonebridge"]
# category -> families: (product, variants, sizes [(label, net grams)], packaging grams, price per kg)
CATALOGUE = {
    "beverages": [("Sparkling Water", ["Lemon", "Lime", "Grapefruit", "Berry", "Original"],
                   [("1 L", 1000), ("500 ml", 500)], 40, 1.2),
                  ("Cola", ["Classic", "Zero", "Cherry", "Vanilla"], [("1.5 L", 1560), ("330 ml Can", 345)], 45, 1.4),
                  ("Orange Juice", ["Smooth", "With Pulp", "Calcium"], [("1 L", 1040)], 50, 3.2),
                  ("Iced Tea", ["Peach", "Lemon", "Green"], [("500 ml", 510)], 30, 3.0)],
    "snacks": [("Potato Chips", ["Sea Salt", "Salt & Vinegar", "Sour Cream & Onion", "Barbecue", "Paprika"],
                [("150 g", 150), ("40 g", 40)], 8, 14.0),
               ("Tortilla Chips", ["Original", "Chili", "Lime"], [("200 g", 200)], 9, 12.0),
               ("Crackers", ["Whole Wheat", "Sesame", "Rosemary"], [("250 g", 250)], 20, 10.0),
               ("Pretzels", ["Salted", "Honey Mustard"], [("300 g", 300)], 12, 8.0)],
    "candy": [("Chocolate Bar", ["Milk", "Dark 70%", "Hazelnut", "White", "Almond"], [("100 g", 100)], 6, 22.0),
              ("Gummy Bears", ["Original", "Sour"], [("200 g", 200)], 7, 12.0),
              ("Mints", ["Peppermint", "Spearmint"], [("50 g", 50)], 12, 40.0)],
    "breakfast": [("Cereal", ["Corn Flakes", "Bran Flakes", "Granola", "Muesli", "Honey Rings"],
                   [("500 g", 500), ("375 g", 375)], 45, 8.0),
                  ("Oats", ["Rolled", "Quick", "Steel Cut"], [("1 kg", 1000)], 25, 3.0),
                  ("Peanut Butter", ["Smooth", "Crunchy"], [("340 g Jar", 340)], 190, 11.0),
                  ("Jam", ["Strawberry", "Raspberry", "Apricot", "Blueberry"], [("340 g Jar", 340)], 200, 10.0)],
    "pasta": [("Pasta", ["Penne", "Fusilli", "Spaghetti", "Farfalle", "Rigatoni", "Linguine"],
               [("500 g", 500), ("1 kg", 1000)], 12, 3.5),
              ("Rice", ["Basmati", "Jasmine", "Long Grain", "Arborio"], [("1 kg", 1000), ("2 kg", 2000)], 15, 3.0),
              ("Pasta Sauce", ["Tomato Basil", "Arrabbiata", "Marinara", "Bolognese"], [("400 g Jar", 400)], 250, 7.5)],
    "canned": [("Chopped Tomatoes", ["Plain", "With Garlic", "With Herbs"], [("400 g Can", 400)], 60, 2.5),
               ("Beans", ["Kidney", "Black", "Chickpea", "Cannellini"], [("400 g Can", 400)], 60, 3.0),
               ("Soup", ["Tomato", "Chicken Noodle", "Minestrone", "Lentil"], [("400 g Can", 400)], 62, 5.0),
               ("Tuna", ["In Water", "In Oil", "In Brine"], [("160 g Can", 160)], 28, 16.0)],
    "baking": [("Flour", ["All-Purpose", "Bread", "Whole Wheat", "Self-Raising"], [("1 kg", 1000)], 10, 1.8),
               ("Sugar", ["White", "Brown", "Icing"], [("1 kg", 1000)], 8, 2.0),
               ("Baking Mix", ["Pancake", "Brownie", "Muffin"], [("500 g", 500)], 30, 7.0)],
    "coffee_tea": [("Ground Coffee", ["Medium Roast", "Dark Roast", "Decaf", "Espresso"], [("250 g", 250)], 15, 28.0),
                   ("Tea Bags", ["Black", "Green", "Chamomile", "Peppermint", "Earl Grey"], [("40 ct", 80)], 45, 40.0)],
    "household": [("Laundry Detergent", ["Original", "Sensitive", "Color"], [("2 L", 2060)], 150, 4.0),
                  ("Dish Soap", ["Lemon", "Original", "Lime"], [("750 ml", 780)], 45, 3.5),
                  ("Trash Bags", ["Kitchen", "Large"], [("30 ct", 600)], 20, 8.0)],
    "personal_care": [("Shampoo", ["Daily Care", "Volume", "Anti-Dandruff", "Repair"], [("400 ml", 410)], 45, 12.0),
                      ("Toothpaste", ["Whitening", "Mint", "Sensitive"], [("75 ml", 100)], 22, 30.0),
                      ("Body Wash", ["Ocean", "Lavender", "Citrus"], [("500 ml", 510)], 50, 9.0)],
    "pet": [("Dry Cat Food", ["Chicken", "Salmon", "Turkey"], [("1.5 kg", 1500)], 40, 6.0),
            ("Dog Treats", ["Beef", "Chicken", "Lamb"], [("500 g", 500)], 25, 14.0)],
    "dairy": [("Milk", ["Whole", "2%", "Skim", "Lactose Free"], [("1 L", 1030), ("2 L", 2060)], 35, 1.3),
              ("Yogurt", ["Plain", "Strawberry", "Vanilla", "Blueberry", "Peach"],
               [("150 g Cup", 150), ("500 g Tub", 500)], 10, 5.0),
              ("Cheddar Cheese", ["Mild", "Sharp", "Extra Sharp"], [("200 g", 200)], 8, 14.0),
              ("Butter", ["Salted", "Unsalted"], [("250 g", 250)], 6, 12.0),
              ("Eggs", ["Free Range", "Organic"], [("12 ct", 720)], 55, 5.0)],
}

HEADER = """
Grocery: a large generated supermarket (40 x 25 m, about 10,800 sq ft) for scale tests. GENERATED by
`storefuse generate-grocery` (storefuse_core/grocery.py); regenerate rather than edit. Fictional
brands; unit grams = net contents + packaging. On one shelf in four the first two products are a
look-alike pair: same line and size, another flavour, unit weights a few grams apart.
"""


def generate_layout() -> str:
    """The grocery store's layout.yaml text."""
    rng = random.Random(SEED)
    gondolas, products, used = [], [], set()
    for y, yaw, categories in LINES:
        for x, category in zip(RUN_X, categories):
            gid = len(gondolas) + 1
            gondolas.append({"id": f"G{gid}", "x": x, "y": y, "yaw_deg": yaw, "length_m": GONDOLA_LENGTH_M,
                             "depth_m": GONDOLA_DEPTH_M, "shelf_heights_m": SHELF_HEIGHTS,
                             "plates_per_shelf": PLATES_PER_SHELF})
            for s, n_plates in enumerate(PLATES_PER_SHELF, start=1):
                products += _fill_shelf(rng, f"G{gid}S{s}", n_plates, category, s == 1, used)
    doc = {"store": "grocery", "name": "Grocery supermarket (generated, 40 x 25 m)", "currency": "USD",
           "floor": {"length_m": FLOOR[0], "width_m": FLOOR[1]}, "token_secret_env": "STOREFUSE_TOKEN_SECRET",
           "gondolas": gondolas, "gates": _gates(), "cameras": _cameras(), "uwb_anchors": _anchors(),
           "carts": [{"id": f"cart_{i}"} for i in range(1, 13)], "deal_zones": _deal_zones(products),
           "products": products}
    text = dump_layout(doc, HEADER)
    parse_store(text, Path("grocery/layout.yaml"))          # what we write must load
    return text


def _fill_shelf(rng: random.Random, shelf: str, n_plates: int, category: str, bottom: bool, used: set) -> list:
    """Products left to right over a shelf's plates, each on a run of 1-2 neighbouring plates."""
    families = CATALOGUE[category]
    lookalike = rng.random() < 0.25
    runs, left = [], n_plates
    while left:
        run = 1 if (bottom or left == 1) else rng.choice([1, 1, 2])
        runs.append(run)
        left -= run
    out, plate, first, taken = [], 1, None, set()
    for k, run in enumerate(runs):
        if lookalike and k == 1:          # the look-alike: first's line, size and brand, next flavour
            fam, size, variant_i, brand = first["fam"], first["size"], first["variant"] + 1, first["brand"]
        else:                             # otherwise a line and size not yet on this shelf, if any is left
            combos = [(f, sz) for f in families for sz in (f[2][-1:] if bottom else f[2])]
            fresh = [c for c in combos if (c[0][0], c[1][0]) not in taken] or combos
            # ... and, where possible, clearly heavier or lighter than its left neighbour (accidental
            # look-alikes only where the shelf leaves no choice)
            fresh = [c for c in fresh if not out or abs(c[1][1] + c[0][3] - out[-1]["grams"]) > 15] or fresh
            fam, size = fresh[rng.randrange(len(fresh))]
            variant_i, brand = rng.randrange(len(fam[1])), None
        taken.add((fam[0], size[0]))
        name, brand, variant_i = _unused_name(rng, fam, size[0], variant_i, brand, used)
        used.add(name)
        product, _, _, tare, per_kg = fam
        if lookalike and k == 1:
            grams = round(first["grams"] + rng.choice([-4.0, -3.0, -2.5, 2.0, 3.0, 4.5]), 1)
        else:
            grams = round(size[1] + tare * rng.uniform(0.9, 1.1), 1)
        if k == 0:
            first = {"fam": fam, "size": size, "variant": variant_i, "brand": brand, "grams": grams}
        price = max(0.49, math.floor(per_kg * size[1] / 1000 * 10) / 10 + 0.09)
        out.append({"sku": f"GR-{len(used):05d}", "name": name, "grams": grams,
                    "grams_sd": round(max(0.8, 0.008 * grams), 2), "price": round(price, 2),
                    "plates": [f"{shelf}P{p}" for p in range(plate, plate + run)], "category": category})
        plate += run
    return out


def _unused_name(rng, fam, size: str, variant_i: int, brand: str | None, used: set):
    """'<Brand> <Variant> <Product> <Size>', trying the given brand first, then every brand."""
    product, variants = fam[0], fam[1]
    start = rng.randrange(len(BRANDS))
    brands = ([brand] if brand else []) + [BRANDS[(start + i) % len(BRANDS)] for i in range(len(BRANDS))]
    for b in brands:
        for j in range(len(variants)):
            v = (variant_i + j) % len(variants)
            name = f"{b} {variants[v]} {product} {size}"
            if name not in used:
                return name, b, v
    raise RuntimeError(f"grocery: every {product} {size} name is taken")    # 20 brands: cannot happen


def _gates() -> list[dict]:
    return [{"id": "gate_entry_1", "direction": "entry", "x": 2.0, "y": 0.6},
            {"id": "gate_entry_2", "direction": "entry", "x": 3.4, "y": 0.6},
            {"id": "gate_exit_1", "direction": "exit", "x": 36.6, "y": 0.6},
            {"id": "gate_exit_2", "direction": "exit", "x": 38.0, "y": 0.6}]


def _cameras() -> list[dict]:
    """A 10 x 5 ceiling grid looking straight down (4 m apart, 4.5 m up); one in three is a depth camera."""
    cams = []
    for j, y in enumerate([2.5, 7.5, 12.5, 17.5, 22.5]):
        for i, x in enumerate([2.0 + 4.0 * k for k in range(10)]):
            roll, pitch, yaw = look_at_rpy((x, y, 4.5), (x, y, 0.0))
            depth = (i + j) % 3 == 0
            cam = {"id": f"cam{len(cams)}", "kind": "depth" if depth else "rgb", "x": x, "y": y, "z": 4.5,
                   "roll_deg": round(math.degrees(roll), 2) + 0.0, "pitch_deg": round(math.degrees(pitch), 2) + 0.0,
                   "yaw_deg": round(math.degrees(yaw), 2) + 0.0}
            if depth:       # a structured-light/stereo depth camera: 87 x 58 deg, good to ~6 m
                cam.update(width=640, height=480, fx=385.0, fy=385.0, cx=320.0, cy=240.0, rate_hz=15, range_m=6.0)
            else:
                cam.update(width=640, height=480, fx=320.0, fy=320.0, cx=320.0, cy=240.0, rate_hz=10, range_m=8.0)
            cams.append(cam)
    return cams


def _anchors() -> list[dict]:
    """UWB anchors for cart localisation: the corners and wall midpoints, 2.8 m up."""
    L, W = FLOOR
    pts = [(0.3, 0.3), (L / 2, 0.3), (L - 0.3, 0.3), (L - 0.3, W / 2), (L - 0.3, W - 0.3), (L / 2, W - 0.3),
           (0.3, W - 0.3), (0.3, W / 2)]
    return [{"id": f"uwb_{i}", "x": x, "y": y, "z": 2.8} for i, (x, y) in enumerate(pts, start=1)]


def _deal_zones(products: list[dict]) -> list[dict]:
    """Promotions over floor areas: the skus on the gondolas beside each zone."""
    def skus(gondolas, category=None):
        return [p["sku"] for p in products if p["plates"] and p["plates"][0].split("S")[0] in gondolas
                and (category is None or p["category"] == category)][:12]
    return [
        {"id": "front_drinks", "polygon": [[3.0, 3.8], [11.0, 3.8], [11.0, 5.3], [3.0, 5.3]],
         "skus": skus({"G1", "G2"}), "description": "Drinks: 2 for 1 on the front aisle"},
        {"id": "pasta_night", "polygon": [[3.0, 7.0], [19.0, 7.0], [19.0, 9.7], [3.0, 9.7]],
         "skus": skus({"G17", "G18", "G19", "G20"}), "description": "Pasta night: pasta and sauce 20% off"},
        {"id": "dairy_week", "polygon": [[3.0, 21.5], [37.0, 21.5], [37.0, 23.5], [3.0, 23.5]],
         "skus": skus({"G49", "G50", "G51", "G52"}), "description": "Dairy week: yogurt and cheese"},
        {"id": "pet_corner", "polygon": [[3.0, 15.8], [19.0, 15.8], [19.0, 17.5], [3.0, 17.5]],
         "skus": skus({"G41", "G42"}), "description": "Pet food multibuy"},
    ]
