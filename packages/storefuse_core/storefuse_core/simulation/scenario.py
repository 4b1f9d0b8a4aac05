"""Scenario files (DESIGN.md contract): who enters when, what they do, how good the sensors are.

Validated on load: an unknown product, action or key fails with one message naming the shopper
and the step, before anything starts.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from storefuse_core.errors import ScenarioError
from storefuse_core.layout import Store, load_store

ACTIONS = {"pick", "put_back", "hand_over", "dwell", "exit"}
SENSOR_DEFAULTS = {
    "plate_rate_hz": 60.0, "plate_noise_g": 0.7, "plate_drift_g_per_h": 5.0, "camera_rate_hz": 10.0,
    "detection_miss_rate": 0.1, "detection_false_per_frame": 0.05, "detection_pos_sd_m": 0.15,
    "gate_duplicate_prob": 0.05, "dead_empty_plate_fraction": 0.5,
    # share of picks and put-backs a camera sees in the hand well enough to classify the product
    "product_view_rate": 0.8,
}
FAULT_KINDS = {"camera_dropout", "serial_garbage", "plate_dead", "plate_drift", "gate_duplicate_read",
               "sensor_clock_skew", "kill_node"}


@dataclass
class Action:
    kind: str
    sku: str = ""
    qty: int = 1
    plate: str = ""
    to: str = ""
    seconds: float = 0.0


@dataclass
class Shopper:
    id: str
    enter_s: float
    script: list[Action]
    group: str = ""
    cart: str = ""
    staff: bool = False


@dataclass
class Scenario:
    store: Store
    seed: int
    shoppers: list[Shopper]
    sensors: dict[str, float]
    faults: list[dict]
    source: str = ""
    sensors_given: dict[str, float] = field(default_factory=dict)   # only what the file set
    text: str = ""


def load_scenario(path: str | Path, seed: int | None = None) -> Scenario:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read scenario ({exc.strerror})") from exc
    return parse_scenario(text, str(path), seed)


def parse_scenario(text: str, where: str = "<scenario>", seed: int | None = None) -> Scenario:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{where}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict) or "store" not in doc:
        raise ScenarioError(f"{where}: a scenario is a mapping with at least 'store' and 'shoppers'")
    store = load_store(str(doc["store"]))
    seed = _to(int, doc.get("seed", 0), "seed", where) if seed is None else seed
    sensors = dict(SENSOR_DEFAULTS)
    if not isinstance(doc.get("sensors") or {}, dict):
        raise ScenarioError(f"{where}: sensors must be a mapping of setting: number")
    for key, value in (doc.get("sensors") or {}).items():
        if key not in SENSOR_DEFAULTS:
            raise ScenarioError(f"{where}: sensors.{key} is not a known sensor setting "
                                f"(known: {', '.join(sorted(SENSOR_DEFAULTS))})")
        try:
            sensors[key] = float(value)
        except (TypeError, ValueError):
            raise ScenarioError(f"{where}: sensors.{key} must be a number, got {value!r}") from None
    faults = []
    for i, fault in enumerate(doc.get("faults") or []):
        if not isinstance(fault, dict) or fault.get("kind") not in FAULT_KINDS:
            raise ScenarioError(f"{where}: faults[{i}] needs kind one of {sorted(FAULT_KINDS)}")
        if fault["kind"] in ("plate_dead", "plate_drift") and fault.get("plate") not in store.plates:
            raise ScenarioError(f"{where}: faults[{i}] names unknown plate {fault.get('plate')!r}")
        faults.append(dict(fault))
    rng = np.random.default_rng(seed)
    shoppers: list[Shopper] = []
    for i, entry in enumerate(doc.get("shoppers") or []):
        if isinstance(entry, dict) and "random" in entry:
            shoppers += _random_shoppers(store, entry["random"] or {}, rng, len(shoppers), where)
        else:
            shoppers.append(_shopper(store, entry, f"{where}: shoppers[{i}]"))
    if not shoppers:
        raise ScenarioError(f"{where}: no shoppers")
    ids = [s.id for s in shoppers]
    if len(set(ids)) != len(ids):
        raise ScenarioError(f"{where}: duplicate shopper ids")
    for s in shoppers:
        for a in s.script:
            if a.kind == "hand_over" and a.to not in ids:
                raise ScenarioError(f"{where}: shopper {s.id} hands over to unknown shopper {a.to!r}")
    shoppers = sorted(shoppers, key=lambda s: (s.enter_s, s.id))
    given = {k: sensors[k] for k in (doc.get("sensors") or {})}
    return Scenario(store, seed, shoppers, sensors, faults, source=where, text=text, sensors_given=given)


def _shopper(store: Store, entry, where: str) -> Shopper:
    if not isinstance(entry, dict) or "id" not in entry or "script" not in entry:
        raise ScenarioError(f"{where}: a shopper needs id and script")
    where = f"{where} ({entry['id']})"
    try:
        enter = float(entry.get("enter_s", 0.0))
    except (TypeError, ValueError):
        raise ScenarioError(f"{where}: enter_s must be a number") from None
    if not isinstance(entry["script"] or [], list):
        raise ScenarioError(f"{where}: script must be a list of actions")
    script = []
    for j, step in enumerate(entry["script"] or []):
        if not isinstance(step, dict) or len(step) != 1:
            raise ScenarioError(f"{where}: script[{j}] must be one action, e.g. pick: {{name: ...}}")
        kind, args = next(iter(step.items()))
        if kind not in ACTIONS:
            raise ScenarioError(f"{where}: script[{j}]: unknown action {kind!r} (known: {sorted(ACTIONS)})")
        script.append(_action(store, kind, args or {}, f"{where}: script[{j}] {kind}"))
    if not script or script[-1].kind != "exit":
        script.append(Action("exit"))
    cart = str(entry.get("cart", "") or "")
    if cart and (not re.fullmatch(r"cart_[1-9]\d*", cart) or (store.carts and cart not in store.carts)):
        raise ScenarioError(f"{where}: unknown cart {cart!r} (the store's carts: {sorted(store.carts) or 'cart_<n>'})")
    return Shopper(str(entry["id"]), enter, script, str(entry.get("group", "") or ""),
                   str(entry.get("cart", "") or ""), bool(entry.get("staff", False)))


def _to(cast, value, what: str, where: str):
    """A number from the file, or one ScenarioError naming the entry (never a bare ValueError)."""
    try:
        return cast(value)
    except (TypeError, ValueError):
        raise ScenarioError(f"{where}: {what} must be a number, got {value!r}") from None


def _action(store: Store, kind: str, args: dict, where: str) -> Action:
    if not isinstance(args, dict):
        raise ScenarioError(f"{where}: arguments must be a mapping, e.g. {kind}: {{name: ...}}; got {args!r}")
    if kind == "dwell":
        return Action(kind, seconds=_to(float, args.get("s", 1.0), "s", where))
    if kind == "exit":
        return Action(kind)
    key = args.get("sku") or args.get("name")
    if not key:
        raise ScenarioError(f"{where}: needs sku: or name:")
    try:
        product = store.product(str(key))
    except KeyError:
        raise ScenarioError(f"{where}: unknown product {key!r} in store {store.name!r}") from None
    qty = _to(int, args.get("qty", 1), "qty", where)
    if qty < 1:
        raise ScenarioError(f"{where}: qty must be >= 1")
    plate = str(args.get("plate", ""))
    if plate and plate not in store.plates:
        raise ScenarioError(f"{where}: unknown plate {plate!r}")
    if kind == "pick" and not product.plates:
        raise ScenarioError(f"{where}: product {product.name!r} is not on any plate")
    return Action(kind, product.sku, qty, plate, str(args.get("to", "")))


def _random_shoppers(store: Store, spec: dict, rng, offset: int, where: str) -> list[Shopper]:
    where = f"{where}: random"
    count = _to(int, spec.get("count", 1), "count", where)
    rate = _to(float, spec.get("arrivals_per_min", 2.0), "arrivals_per_min", where) / 60.0
    lo, hi = (spec.get("picks") or [1, 4])[:2]
    put_prob = _to(float, spec.get("put_back_prob", 0.1), "put_back_prob", where)
    placed = sorted(sku for sku, p in store.products.items() if p.plates)
    if not placed:
        raise ScenarioError(f"{where}: store has no placed products for random shoppers")
    out, t = [], float(spec.get("start_s", 2.0))
    for i in range(count):
        t += float(rng.exponential(1.0 / rate)) if i else 0.0
        script = []
        for _ in range(int(rng.integers(int(lo), int(hi) + 1))):
            sku = placed[int(rng.integers(len(placed)))]
            script.append(Action("pick", sku, 1))
            if rng.random() < put_prob:
                script.append(Action("put_back", sku, 1))
        script.append(Action("exit"))
        out.append(Shopper(f"random_{offset + i + 1:03d}", round(t, 3), script))
    return out
