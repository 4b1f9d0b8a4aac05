"""The store as the layout file describes it: the source of truth for every device and product.

Loading validates everything up front so a bad layout fails with one clear message naming the
entry, instead of a KeyError deep inside a node an hour later. The schema is documented in
urdf_store/README.md; names follow the DESIGN.md contract (G<g>S<s>P<p>, cam<N>, gate_entry_<n>, ...).
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from storefuse_core.errors import LayoutError
from storefuse_core.frames import rpy_matrix

N = r"[1-9]\d*"                                    # 1-based index, no leading zeros
PLATE_RE = re.compile(rf"^G({N})S({N})P({N})$")
GONDOLA_RE = re.compile(rf"G{N}")
CAMERA_RE = re.compile(r"cam(0|[1-9]\d*)")
GATE_RE = re.compile(rf"gate_(entry|exit)_{N}")
CART_RE = re.compile(rf"cart_{N}")
UWB_RE = re.compile(rf"uwb_{N}")
ZONE_RE = re.compile(r"[a-z][a-z0-9_]*")
CAMERA_KINDS = ("rgb", "depth")
EPS = 1e-6                                         # metres: touching footprints do not overlap
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)   # libyaml: the grocery layout loads 6x faster


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    grams: float          # unit weight; 0 only for a catalogue entry on no plate (weight unknown)
    grams_sd: float
    price: float
    plates: tuple[str, ...]
    category: str = ""


@dataclass(frozen=True)
class Plate:
    id: str            # G<g>S<s>P<p>
    shelf_id: str      # G<g>S<s>
    gondola_id: str    # G<g>
    x: float
    y: float
    z: float
    width_m: float
    depth_m: float = 0.5
    yaw: float = 0.0   # the gondola's


@dataclass(frozen=True)
class Shelf:
    id: str
    gondola_id: str
    height_m: float
    plate_ids: tuple[str, ...]


@dataclass(frozen=True)
class Gondola:
    id: str
    x: float
    y: float
    yaw: float
    length_m: float
    depth_m: float
    shelf_ids: tuple[str, ...]

    @property
    def board_id(self) -> str:
        return f"scale_{self.id}"


@dataclass(frozen=True)
class Gate:
    id: str
    direction: str     # entry | exit
    x: float
    y: float
    width_m: float = 1.0
    yaw: float = 0.0


@dataclass(frozen=True)
class Camera:
    id: str
    kind: str          # rgb | depth
    pose: tuple[float, float, float, float, float, float]   # optical frame in map: x y z roll pitch yaw (rad)
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    rate_hz: float
    range_m: float = 6.0
    # image regions (polygons of (u, v) full-frame pixels) where a blob's feet are not on this store's
    # floor: glass walls and doors onto other rooms, screens
    ignore: tuple[tuple[tuple[float, float], ...], ...] = ()

    def rotation(self) -> np.ndarray:
        """Optical frame axes in map (columns: image right, image down, view axis)."""
        return rpy_matrix(*self.pose[3:])


@dataclass(frozen=True)
class UwbAnchor:
    id: str            # uwb_<n>
    x: float
    y: float
    z: float


@dataclass(frozen=True)
class DealZone:
    id: str
    polygon: tuple[tuple[float, float], ...]
    skus: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class Cart:
    id: str            # cart_<n>


@dataclass
class Store:
    name: str
    title: str
    currency: str
    root: Path
    token_secret_env: str
    gondolas: dict[str, Gondola]
    shelves: dict[str, Shelf]
    plates: dict[str, Plate]
    products: dict[str, Product]
    gates: dict[str, Gate]
    cameras: dict[str, Camera]
    source_text: str = ""
    plate_products: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _by_name: dict[str, str] = field(default_factory=dict)
    floor: tuple[float, float] | None = None          # (length_m along x, width_m along y) if given
    uwb_anchors: dict[str, UwbAnchor] = field(default_factory=dict)
    deal_zones: dict[str, DealZone] = field(default_factory=dict)
    carts: dict[str, Cart] = field(default_factory=dict)
    _by_loose_name: dict[str, str] = field(default_factory=dict)
    _gondola_skus: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False, repr=False)

    def gondola_skus(self, gondola_id: str) -> tuple[str, ...]:
        """The products stocked anywhere on a gondola, sorted: what a put-back there may be, and what a
        camera host tells a hand's item among."""
        skus = self._gondola_skus.get(gondola_id)
        if skus is None:
            skus = self._gondola_skus[gondola_id] = tuple(sorted(
                {sku for s in self.gondolas[gondola_id].shelf_ids for pid in self.shelves[s].plate_ids
                 for sku in self.plate_products.get(pid, ())}))
        return skus

    def board_plates(self, board_id: str) -> tuple[str, ...]:
        """Plate order of a scale board's frames and PlateWeights arrays: shelf by shelf."""
        gid = board_id.removeprefix("scale_")
        if gid not in self.gondolas:
            raise LayoutError(f"store {self.name!r}: no scale board {board_id!r} (no gondola {gid!r})")
        return tuple(p for s in self.gondolas[gid].shelf_ids for p in self.shelves[s].plate_ids)

    @property
    def boards(self) -> tuple[str, ...]:
        return tuple(g.board_id for g in self.gondolas.values())

    @property
    def floor_size(self) -> tuple[float, float]:
        """The floor's extent: the layout's `floor`, else a margin around every gondola and gate."""
        if self.floor:
            return self.floor
        xs = [g.x for g in self.gondolas.values()] + [g.x for g in self.gates.values()]
        ys = [g.y for g in self.gondolas.values()] + [g.y for g in self.gates.values()]
        return max(xs) + 3.0, max(ys) + 3.0

    def product(self, key: str) -> Product:
        """A product by sku or by its exact planogram name (or, failing that, the name with its
        whitespace normalised: catalogue names such as AiFi's carry stray spaces and newlines)."""
        if key in self.products:
            return self.products[key]
        if key in self._by_name:
            return self.products[self._by_name[key]]
        loose = self._by_loose_name.get(_loose(key))
        if loose:
            return self.products[loose]
        raise KeyError(f"store {self.name!r} has no product with sku or name {key!r}")

    def token_secret(self) -> bytes:
        return os.environ.get(self.token_secret_env, f"storefuse-dev-secret-{self.name}").encode()


def _loose(name: str) -> str:
    return " ".join(str(name).split())


def _num(entry: dict, key: str, where: str, default: float | None = None) -> float:
    if key not in entry:
        if default is None:
            raise LayoutError(f"{where}: missing '{key}'")
        return default
    value = entry[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LayoutError(f"{where}: '{key}' must be a number, got {value!r}")
    return float(value)


def _positive(entry: dict, key: str, where: str, default: float | None = None) -> float:
    value = _num(entry, key, where, default)
    if value <= 0:
        raise LayoutError(f"{where}: '{key}' must be > 0, got {value:g}")
    return value


def _id(entry, pattern: re.Pattern, what: str, where: str, seen) -> str:
    ident = str(entry.get("id", "")) if isinstance(entry, dict) else ""
    if not pattern.fullmatch(ident):
        raise LayoutError(f"{where}: {what} ids are {_SPELLING[what]}, got {ident!r}")
    if ident in seen:
        raise LayoutError(f"{where}: duplicate {what} id {ident}")
    return ident


_SPELLING = {"camera": "cam<N>", "gate": "gate_entry_<n> or gate_exit_<n>", "cart": "cart_<n> (n from 1)",
             "UWB anchor": "uwb_<n> (n from 1)", "deal zone": "lower-case words joined by '_'"}


def store_dir(store: str, search: list[Path] | None = None) -> Path:
    """Find urdf_store/<store>/ in the checkout, the installed bringup share, or STOREFUSE_STORES."""
    candidates = list(search or [])
    if os.environ.get("STOREFUSE_STORES"):
        candidates += [Path(p) for p in os.environ["STOREFUSE_STORES"].split(os.pathsep)]
    here = Path(__file__).resolve()
    candidates += [parent / "urdf_store" for parent in here.parents]
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix:
            candidates.append(Path(prefix) / "share" / "storefuse_bringup" / "urdf_store")
    for base in candidates:
        if (base / store / "layout.yaml").is_file():
            return base / store
    raise LayoutError(f"store {store!r} not found (looked for {store}/layout.yaml under "
                      f"{', '.join(str(c) for c in candidates[:4])}, ...)")


def load_store(name_or_path: str | Path) -> Store:
    """Load and validate a layout: a store name (urdf_store/<name>/layout.yaml) or a file path."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = store_dir(str(name_or_path)) / "layout.yaml"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LayoutError(f"{path}: cannot read layout ({exc.strerror})") from exc
    return parse_store(text, path)


def parse_store(text: str, path: Path) -> Store:
    try:
        doc = yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        raise LayoutError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise LayoutError(f"{path}: a layout is a mapping with store, gondolas, gates, products")
    for key in ("store", "gondolas", "gates", "products"):
        if key not in doc:
            raise LayoutError(f"{path}: missing top-level '{key}'")
    floor = _floor(doc.get("floor"), path)
    gondolas, shelves, plates = _gondolas(doc["gondolas"], path, floor)
    products, plate_products = _products(doc["products"], plates, path)
    gates = _gates(doc["gates"], path, floor)
    cameras = _cameras(doc.get("cameras") or [], path, floor)
    anchors = _anchors(doc.get("uwb_anchors") or [], path, floor)
    zones = _deal_zones(doc.get("deal_zones") or [], products, path, floor)
    carts = _carts(doc.get("carts") or [], path)
    loose: dict[str, str | None] = {}
    for p in products.values():
        key = _loose(p.name)
        loose[key] = p.sku if key not in loose else None           # ambiguous: exact names only
    return Store(
        name=str(doc["store"]), title=str(doc.get("name", doc["store"])),
        currency=str(doc.get("currency", "USD")), root=path.parent,
        token_secret_env=str(doc.get("token_secret_env", "STOREFUSE_TOKEN_SECRET")),
        gondolas=gondolas, shelves=shelves, plates=plates, products=products, gates=gates,
        cameras=cameras, source_text=text, plate_products=plate_products,
        _by_name={p.name: p.sku for p in products.values()}, floor=floor, uwb_anchors=anchors,
        deal_zones=zones, carts=carts, _by_loose_name={k: v for k, v in loose.items() if v},
    )


def _floor(entry, path):
    if entry is None:
        return None
    where = f"{path}: floor"
    if not isinstance(entry, dict):
        raise LayoutError(f"{where}: needs length_m and width_m")
    return _positive(entry, "length_m", where), _positive(entry, "width_m", where)


def _inside(floor, x: float, y: float, what: str, where: str) -> None:
    if floor and not (-EPS <= x <= floor[0] + EPS and -EPS <= y <= floor[1] + EPS):
        raise LayoutError(f"{where}: {what} at ({x:g}, {y:g}) is outside the floor "
                          f"(0..{floor[0]:g} x 0..{floor[1]:g} m)")


def _gondolas(entries, path, floor):
    if not isinstance(entries, list) or not entries:
        raise LayoutError(f"{path}: 'gondolas' must be a non-empty list")
    gondolas, shelves, plates = {}, {}, {}
    footprints = []
    for i, g in enumerate(entries):
        where = f"{path}: gondolas[{i}]"
        if not isinstance(g, dict) or not GONDOLA_RE.fullmatch(str(g.get("id", ""))):
            raise LayoutError(f"{where}: needs an id like G1 (G<g>, g from 1)")
        gid = str(g["id"])
        if gid in gondolas:
            raise LayoutError(f"{where}: duplicate gondola id {gid}")
        x, y = _num(g, "x", where), _num(g, "y", where)
        yaw = math.radians(_num(g, "yaw_deg", where, 0.0))
        length, depth = _positive(g, "length_m", where), _positive(g, "depth_m", where)
        heights = g.get("shelf_heights_m")
        if not isinstance(heights, list) or not heights or not all(
                isinstance(h, (int, float)) and not isinstance(h, bool) and h >= 0 for h in heights):
            raise LayoutError(f"{where}: needs shelf_heights_m (list of numbers >= 0)")
        counts = _plate_counts(g, len(heights), where)
        box = _footprint(x, y, yaw, length, depth)
        for other_id, other in footprints:
            if _overlap(box, other):
                raise LayoutError(f"{where}: gondola {gid} overlaps gondola {other_id}")
        for corner in ((box[0], box[1]), (box[2], box[3])):
            _inside(floor, *corner, f"gondola {gid}'s footprint", where)
        footprints.append((gid, box))
        shelf_ids = []
        c, s = math.cos(yaw), math.sin(yaw)
        for si, (h, n_plates) in enumerate(zip(heights, counts), start=1):
            sid = f"{gid}S{si}"
            pids = []
            for pi in range(1, n_plates + 1):
                along = -length / 2 + (pi - 0.5) * length / n_plates
                pid = f"{sid}P{pi}"
                plates[pid] = Plate(pid, sid, gid, x + c * along, y + s * along, float(h), length / n_plates,
                                    depth, yaw)
                pids.append(pid)
            shelves[sid] = Shelf(sid, gid, float(h), tuple(pids))
            shelf_ids.append(sid)
        gondolas[gid] = Gondola(gid, x, y, yaw, length, depth, tuple(shelf_ids))
    return gondolas, shelves, plates


def _plate_counts(g: dict, n_shelves: int, where: str) -> list[int]:
    """plates_per_shelf: one count for every shelf, or a list with one count per shelf."""
    raw = g.get("plates_per_shelf")
    values = raw if isinstance(raw, list) else [raw] * n_shelves
    if len(values) != n_shelves or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
        raise LayoutError(f"{where}: needs plates_per_shelf >= 1 (an integer, or a list of one integer per "
                          f"shelf: {n_shelves} shelves), got {raw!r}")
    return list(values)


def _footprint(x, y, yaw, length, depth):
    c, s = math.cos(yaw), math.sin(yaw)
    pts = [(x + c * a - s * b, y + s * a + c * b) for a in (-length / 2, length / 2) for b in (-depth / 2, depth / 2)]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return min(xs), min(ys), max(xs), max(ys)


def _overlap(a, b) -> bool:
    return a[0] < b[2] - EPS and b[0] < a[2] - EPS and a[1] < b[3] - EPS and b[1] < a[3] - EPS


def _products(entries, plates, path):
    if not isinstance(entries, list) or not entries:
        raise LayoutError(f"{path}: 'products' must be a non-empty list")
    products: dict[str, Product] = {}
    names: set[str] = set()
    plate_products: dict[str, list[str]] = {}
    for i, p in enumerate(entries):
        where = f"{path}: products[{i}]"
        if not isinstance(p, dict) or not p.get("sku") or not p.get("name"):
            raise LayoutError(f"{where}: every product needs a sku and a name")
        sku, name = str(p["sku"]), str(p["name"])
        where = f"{path}: product {sku} ({_loose(name)})"
        if sku in products:
            raise LayoutError(f"{where}: duplicate sku")
        if name in names:
            raise LayoutError(f"{where}: duplicate name")
        on = p.get("plates") or []
        if not isinstance(on, list):
            raise LayoutError(f"{where}: 'plates' must be a list of plate ids, got {on!r}")
        grams = _num(p, "grams", where)
        if grams <= 0 and not (grams == 0 and not on):
            raise LayoutError(f"{where}: grams must be > 0 (0 = unknown, only for a product on no plate)")
        for pid in on:
            if pid not in plates:
                raise LayoutError(f"{where}: unknown plate {pid!r} (plates are named G<g>S<s>P<p>)")
        if len(set(on)) != len(on):
            raise LayoutError(f"{where}: plate listed twice in {on}")
        if len({plates[pid].shelf_id for pid in on}) > 1:
            raise LayoutError(f"{where}: plates {on} are on more than one shelf")
        grams_sd = _positive(p, "grams_sd", where, max(1.0, 0.01 * grams))
        price = _num(p, "price", where)
        if price < 0:
            raise LayoutError(f"{where}: price must be >= 0")
        products[sku] = Product(sku, name, grams, grams_sd, price, tuple(on), str(p.get("category", "")))
        names.add(name)
        for pid in on:
            plate_products.setdefault(pid, []).append(sku)
    return products, {k: tuple(v) for k, v in plate_products.items()}


def _gates(entries, path, floor):
    gates = {}
    if not isinstance(entries, list):
        raise LayoutError(f"{path}: 'gates' must be a list")
    for i, g in enumerate(entries):
        where = f"{path}: gates[{i}]"
        gid = _id(g, GATE_RE, "gate", where, gates)
        direction = gid.split("_")[1]
        if g.get("direction", direction) != direction:
            raise LayoutError(f"{where}: {gid} has direction {g.get('direction')!r}")
        x, y = _num(g, "x", where), _num(g, "y", where)
        _inside(floor, x, y, f"gate {gid}", where)
        gates[gid] = Gate(gid, direction, x, y, _positive(g, "width_m", where, 1.0),
                          math.radians(_num(g, "yaw_deg", where, 0.0)))
    if not any(g.direction == "entry" for g in gates.values()):
        raise LayoutError(f"{path}: a store needs at least one entry gate")
    if not any(g.direction == "exit" for g in gates.values()):
        raise LayoutError(f"{path}: a store needs at least one exit gate")
    return gates


def _cameras(entries, path, floor):
    cameras = {}
    if not isinstance(entries, list):
        raise LayoutError(f"{path}: 'cameras' must be a list")
    for i, c in enumerate(entries):
        where = f"{path}: cameras[{i}]"
        cid = _id(c, CAMERA_RE, "camera", where, cameras)
        for key in ("fx", "fy", "cx", "cy", "width", "height"):
            if key not in c:
                raise LayoutError(f"{where}: camera {cid} has no intrinsics '{key}'")
        kind = str(c.get("kind", "rgb"))
        if kind not in CAMERA_KINDS:
            raise LayoutError(f"{where}: camera {cid} kind must be one of {', '.join(CAMERA_KINDS)}, got {kind!r}")
        pose = tuple(_num(c, k, where, 0.0) for k in ("x", "y", "z")) + tuple(
            math.radians(_num(c, k, where, 0.0)) for k in ("roll_deg", "pitch_deg", "yaw_deg"))
        _inside(floor, pose[0], pose[1], f"camera {cid}", where)
        width, height = _positive(c, "width", where), _positive(c, "height", where)
        cameras[cid] = Camera(cid, kind, pose, int(width), int(height),
                              _positive(c, "fx", where), _positive(c, "fy", where), _num(c, "cx", where),
                              _num(c, "cy", where), _positive(c, "rate_hz", where, 10.0),
                              _positive(c, "range_m", where, 6.0), _ignore_regions(c.get("ignore"), where, cid))
    return cameras


def _ignore_regions(value, where, cid):
    """A camera's `ignore`: a list of polygons, each a list of at least 3 [u, v] pixel points."""
    if value is None:
        return ()
    bad = LayoutError(f"{where}: camera {cid} 'ignore' must be a list of polygons, each a list of at "
                      "least 3 [u, v] pixel points")
    if not isinstance(value, list):
        raise bad
    polys = []
    for poly in value:
        if not isinstance(poly, list) or len(poly) < 3:
            raise bad
        pts = []
        for pt in poly:
            if not (isinstance(pt, list) and len(pt) == 2 and all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in pt)):
                raise bad
            pts.append((float(pt[0]), float(pt[1])))
        polys.append(tuple(pts))
    return tuple(polys)


def _anchors(entries, path, floor):
    anchors = {}
    if not isinstance(entries, list):
        raise LayoutError(f"{path}: 'uwb_anchors' must be a list")
    for i, a in enumerate(entries):
        where = f"{path}: uwb_anchors[{i}]"
        aid = _id(a, UWB_RE, "UWB anchor", where, anchors)
        x, y, z = _num(a, "x", where), _num(a, "y", where), _num(a, "z", where)
        _inside(floor, x, y, f"UWB anchor {aid}", where)
        anchors[aid] = UwbAnchor(aid, x, y, z)
    return anchors


def _deal_zones(entries, products, path, floor):
    zones = {}
    if not isinstance(entries, list):
        raise LayoutError(f"{path}: 'deal_zones' must be a list")
    for i, z in enumerate(entries):
        where = f"{path}: deal_zones[{i}]"
        zid = _id(z, ZONE_RE, "deal zone", where, zones)
        poly = z.get("polygon")
        if not isinstance(poly, list) or len(poly) < 3 or not all(
                isinstance(pt, list) and len(pt) == 2 and all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in pt) for pt in poly):
            raise LayoutError(f"{where}: deal zone {zid} needs a polygon of at least 3 [x, y] points")
        pts = tuple((float(px), float(py)) for px, py in poly)
        area = 0.5 * sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1]))
        if abs(area) < 1e-6:
            raise LayoutError(f"{where}: deal zone {zid} polygon has no area")
        for px, py in pts:
            _inside(floor, px, py, f"deal zone {zid} corner", where)
        skus = z.get("skus") or []
        if not isinstance(skus, list) or not skus:
            raise LayoutError(f"{where}: deal zone {zid} needs a non-empty list of skus")
        for sku in skus:
            if str(sku) not in products:
                raise LayoutError(f"{where}: deal zone {zid} names unknown sku {sku!r}")
        zones[zid] = DealZone(zid, pts, tuple(str(s) for s in skus), str(z.get("description", "")))
    return zones


def _carts(entries, path):
    carts = {}
    if not isinstance(entries, list):
        raise LayoutError(f"{path}: 'carts' must be a list")
    for i, c in enumerate(entries):
        cid = _id(c, CART_RE, "cart", f"{path}: carts[{i}]", carts)
        carts[cid] = Cart(cid)
    return carts


class _LayoutDumper(yaml.SafeDumper):
    """Strings with line breaks or edge spaces (catalogue names) stay on one line, double-quoted."""


_LayoutDumper.add_representer(str, lambda dumper, s: dumper.represent_scalar(
    "tag:yaml.org,2002:str", s, style='"' if (s != s.strip() or "\n" in s) else None))


def dump_layout(doc: dict, header: str) -> str:
    """A generated layout as YAML a person can read: comment header, one flow line per list entry."""
    def flow(value) -> str:
        return yaml.dump(value, Dumper=_LayoutDumper, default_flow_style=True, sort_keys=False,
                         width=1 << 20, allow_unicode=True).strip()
    lines = [f"# {ln}" if ln else "#" for ln in header.strip().splitlines()]
    for key, value in doc.items():
        if isinstance(value, list):
            lines.append(f"{key}:")
            lines += [f"  - {flow(item)}" for item in value]
        elif isinstance(value, dict):
            lines.append(f"{key}: {flow(value)}")
        else:
            lines.append(yaml.safe_dump({key: value}, default_flow_style=False, width=1 << 20,
                                        allow_unicode=True).strip())
    return "\n".join(lines) + "\n"
