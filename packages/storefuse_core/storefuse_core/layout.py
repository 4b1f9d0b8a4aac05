"""The store as the layout file describes it: the source of truth for every device and product.

Loading validates everything up front so a bad layout fails with one clear message naming the
entry, instead of a KeyError deep inside a node an hour later.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from storefuse_core.errors import LayoutError

PLATE_RE = re.compile(r"^G(\d+)S(\d+)P(\d+)$")


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    grams: float
    grams_sd: float
    price: float
    plates: tuple[str, ...]


@dataclass(frozen=True)
class Plate:
    id: str            # G<g>S<s>P<p>
    shelf_id: str      # G<g>S<s>
    gondola_id: str    # G<g>
    x: float
    y: float
    z: float
    width_m: float


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


@dataclass(frozen=True)
class Camera:
    id: str
    kind: str
    pose: tuple[float, float, float, float, float, float]   # x y z roll pitch yaw (rad)
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    rate_hz: float


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

    def board_plates(self, board_id: str) -> tuple[str, ...]:
        """Plate order of a scale board's frames and PlateWeights arrays: shelf by shelf."""
        gid = board_id.removeprefix("scale_")
        if gid not in self.gondolas:
            raise LayoutError(f"store {self.name!r}: no scale board {board_id!r} (no gondola {gid!r})")
        return tuple(p for s in self.gondolas[gid].shelf_ids for p in self.shelves[s].plate_ids)

    @property
    def boards(self) -> tuple[str, ...]:
        return tuple(g.board_id for g in self.gondolas.values())

    def product(self, key: str) -> Product:
        """A product by sku or by its exact planogram name."""
        if key in self.products:
            return self.products[key]
        if key in self._by_name:
            return self.products[self._by_name[key]]
        raise KeyError(f"store {self.name!r} has no product with sku or name {key!r}")

    def token_secret(self) -> bytes:
        return os.environ.get(self.token_secret_env, f"storefuse-dev-secret-{self.name}").encode()


def _num(entry: dict, key: str, where: str, default: float | None = None) -> float:
    if key not in entry:
        if default is None:
            raise LayoutError(f"{where}: missing '{key}'")
        return default
    value = entry[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LayoutError(f"{where}: '{key}' must be a number, got {value!r}")
    return float(value)


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
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise LayoutError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise LayoutError(f"{path}: a layout is a mapping with store, gondolas, gates, products")
    for key in ("store", "gondolas", "gates", "products"):
        if key not in doc:
            raise LayoutError(f"{path}: missing top-level '{key}'")
    gondolas, shelves, plates = _gondolas(doc["gondolas"], path)
    products, plate_products = _products(doc["products"], plates, path)
    gates = _gates(doc["gates"], path)
    cameras = _cameras(doc.get("cameras") or [], path)
    store = Store(
        name=str(doc["store"]), title=str(doc.get("name", doc["store"])),
        currency=str(doc.get("currency", "USD")), root=path.parent,
        token_secret_env=str(doc.get("token_secret_env", "STOREFUSE_TOKEN_SECRET")),
        gondolas=gondolas, shelves=shelves, plates=plates, products=products, gates=gates,
        cameras=cameras, source_text=text, plate_products=plate_products,
        _by_name={p.name: p.sku for p in products.values()},
    )
    return store


def _gondolas(entries, path):
    if not isinstance(entries, list) or not entries:
        raise LayoutError(f"{path}: 'gondolas' must be a non-empty list")
    gondolas, shelves, plates = {}, {}, {}
    footprints = []
    for i, g in enumerate(entries):
        where = f"{path}: gondolas[{i}]"
        if not isinstance(g, dict) or not re.fullmatch(r"G\d+", str(g.get("id", ""))):
            raise LayoutError(f"{where}: needs an id like G1")
        gid = str(g["id"])
        if gid in gondolas:
            raise LayoutError(f"{where}: duplicate gondola id {gid}")
        x, y = _num(g, "x", where), _num(g, "y", where)
        yaw = math.radians(_num(g, "yaw_deg", where, 0.0))
        length, depth = _num(g, "length_m", where), _num(g, "depth_m", where)
        heights = g.get("shelf_heights_m")
        n_plates = int(_num(g, "plates_per_shelf", where))
        if not isinstance(heights, list) or not heights or n_plates < 1 or not all(
                isinstance(h, (int, float)) and not isinstance(h, bool) for h in heights):
            raise LayoutError(f"{where}: needs shelf_heights_m (list of numbers) and plates_per_shelf >= 1")
        box = _footprint(x, y, yaw, length, depth)
        for other_id, other in footprints:
            if _overlap(box, other):
                raise LayoutError(f"{where}: gondola {gid} overlaps gondola {other_id}")
        footprints.append((gid, box))
        shelf_ids = []
        c, s = math.cos(yaw), math.sin(yaw)
        for si, h in enumerate(heights, start=1):
            sid = f"{gid}S{si}"
            pids = []
            for pi in range(1, n_plates + 1):
                along = -length / 2 + (pi - 0.5) * length / n_plates
                pid = f"{sid}P{pi}"
                plates[pid] = Plate(pid, sid, gid, x + c * along, y + s * along, float(h), length / n_plates)
                pids.append(pid)
            shelves[sid] = Shelf(sid, gid, float(h), tuple(pids))
            shelf_ids.append(sid)
        gondolas[gid] = Gondola(gid, x, y, yaw, length, depth, tuple(shelf_ids))
    return gondolas, shelves, plates


def _footprint(x, y, yaw, length, depth):
    c, s = math.cos(yaw), math.sin(yaw)
    pts = [(x + c * a - s * b, y + s * a + c * b) for a in (-length / 2, length / 2) for b in (-depth / 2, depth / 2)]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return min(xs), min(ys), max(xs), max(ys)


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


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
        where = f"{path}: product {sku} ({name})"
        if sku in products:
            raise LayoutError(f"{where}: duplicate sku")
        if name in names:
            raise LayoutError(f"{where}: duplicate name")
        grams = _num(p, "grams", where)
        if grams <= 0:
            raise LayoutError(f"{where}: grams must be > 0")
        on = p.get("plates") or []
        if not isinstance(on, list):
            raise LayoutError(f"{where}: 'plates' must be a list of plate ids, got {on!r}")
        for pid in on:
            if pid not in plates:
                raise LayoutError(f"{where}: unknown plate {pid!r} (plates are named G<g>S<s>P<p>)")
        if len({plates[pid].shelf_id for pid in on}) > 1:
            raise LayoutError(f"{where}: plates {on} are on more than one shelf")
        products[sku] = Product(sku, name, grams, _num(p, "grams_sd", where, max(1.0, 0.01 * grams)),
                                _num(p, "price", where), tuple(on))
        names.add(name)
        for pid in on:
            plate_products.setdefault(pid, []).append(sku)
    return products, {k: tuple(v) for k, v in plate_products.items()}


def _gates(entries, path):
    gates = {}
    for i, g in enumerate(entries or []):
        where = f"{path}: gates[{i}]"
        gid = str(g.get("id", "")) if isinstance(g, dict) else ""
        if not re.fullmatch(r"gate_(entry|exit)_\d+", gid):
            raise LayoutError(f"{where}: gate ids are gate_entry_<n> or gate_exit_<n>, got {gid!r}")
        direction = gid.split("_")[1]
        if g.get("direction", direction) != direction:
            raise LayoutError(f"{where}: {gid} has direction {g.get('direction')!r}")
        gates[gid] = Gate(gid, direction, _num(g, "x", where), _num(g, "y", where))
    if not any(g.direction == "entry" for g in gates.values()):
        raise LayoutError(f"{path}: a store needs at least one entry gate")
    if not any(g.direction == "exit" for g in gates.values()):
        raise LayoutError(f"{path}: a store needs at least one exit gate")
    return gates


def _cameras(entries, path):
    cameras = {}
    for i, c in enumerate(entries):
        where = f"{path}: cameras[{i}]"
        cid = str(c.get("id", "")) if isinstance(c, dict) else ""
        if not re.fullmatch(r"cam\d+", cid):
            raise LayoutError(f"{where}: camera ids are cam<N>, got {cid!r}")
        for key in ("fx", "fy", "cx", "cy", "width", "height"):
            if key not in c:
                raise LayoutError(f"{where}: camera {cid} has no intrinsics '{key}'")
        pose = tuple(_num(c, k, where, 0.0) for k in ("x", "y", "z")) + tuple(
            math.radians(_num(c, k, where, 0.0)) for k in ("roll_deg", "pitch_deg", "yaw_deg"))
        cameras[cid] = Camera(cid, str(c.get("kind", "rgb")), pose, int(_num(c, "width", where)),
                              int(_num(c, "height", where)),
                              _num(c, "fx", where), _num(c, "fy", where), _num(c, "cx", where),
                              _num(c, "cy", where), _num(c, "rate_hz", where, 10.0))
    return cameras
