"""Which products (and how many) explain a settled weight change on a shelf.

For each product on the shelf and each quantity, the change seen on the product's own plates and
their immediate neighbours (an item may lean onto the next plate) should be qty x unit weight, and
the rest of the shelf should not have changed. The spread allowed covers the plates' noise, the
product's unit-to-unit spread and a 1.5 % scale error (real plates are a few percent off); a flat
'unexplained' hypothesis keeps probabilities honest when nothing fits (an unknown item, a hand).
"""
from __future__ import annotations

import math

from storefuse_core.events import Candidate
from storefuse_core.layout import Store

UNEXPLAINED_DENSITY = 2e-4      # per gram: a flat density over a few kilograms
SCALE_ERROR = 0.015             # relative: calibration error of a real load cell
# Where the weight changed is strong evidence of what it was, but not proof: a taken item leaves
# its own plates (it may sit elsewhere only if someone misplaced it), while a returned item lands
# wherever the shopper puts it (any plate of the shelf, at the floor's prior): look-alikes returned
# onto each other's plates stay in doubt, for the cameras to settle (product_views.py).
PLACE_FLOOR_PICK = 0.05
PLACE_FLOOR_PUT = 0.15
PLACE_OTHER_SHELF_PUT = 0.05   # a product of another shelf of the gondola, put back onto this one
PUT_TOP = 12


def _density(x: float, sd: float) -> float:
    z = x / sd
    return math.exp(-0.5 * z * z) / (sd * math.sqrt(2 * math.pi)) if z * z < 400 else 0.0


def candidates(store: Store, shelf_id: str, plate_deltas: dict[str, float], delta: float, noise_sd: float,
               max_qty: int = 6, top: int = 5, plate_sd: dict[str, float] | None = None,
               strays: dict[str, set[str]] | None = None) -> list[Candidate]:
    """`strays`: plate -> products put back there that belong elsewhere (fusion knows them, the
    scale does not): on that plate they are as likely as its own products."""
    shelf = store.shelves[shelf_id]
    order = list(shelf.plate_ids)
    strays = {p: v for p, v in (strays or {}).items() if p in order}
    skus = {sku for pid in order for sku in store.plate_products.get(pid, ())}
    skus |= {sku for v in strays.values() for sku in v}
    if delta > 0:       # a put-back may be anything from the gondola, put onto the wrong shelf
        skus |= set(store.gondola_skus(shelf.gondola_id))
    skus = sorted(skus)
    total_abs = sum(abs(v) for v in plate_deltas.values()) or 1.0
    per_plate_sd = plate_sd or {pid: noise_sd / math.sqrt(max(1, len(order))) for pid in order}
    sign = -1.0 if delta < 0 else 1.0
    floor = PLACE_FLOOR_PICK if delta < 0 else PLACE_FLOOR_PUT
    scored: list[tuple[float, str, int]] = []
    best_rest = 0.0
    for sku in skus:
        product = store.products[sku]
        plates = list(product.plates) + sorted(p for p, v in strays.items() if sku in v and p not in product.plates)
        own = [order.index(p) for p in plates if p in order]
        window = {order[i] for k in own for i in (k - 1, k, k + 1) if 0 <= i < len(order)}
        seen = sum(plate_deltas.get(p, 0.0) for p in window) * sign
        rest = sum(v for p, v in plate_deltas.items() if p not in window)
        sd_seen2 = sum(per_plate_sd.get(p, 0.0) ** 2 for p in window)
        sd_rest = math.sqrt(sum(per_plate_sd.get(p, 0.0) ** 2 for p in order if p not in window)) + 1.0
        place_prior = floor + (1 - floor) * sum(abs(plate_deltas.get(p, 0.0)) for p in plates) / total_abs
        rest_like = _density(rest, sd_rest + 0.02 * abs(delta))
        best_rest = max(best_rest, rest_like * place_prior)
        sd_all2 = sum(per_plate_sd.get(p, 0.0) ** 2 for p in order)
        for qty in range(1, max_qty + 1):
            spread2 = qty * product.grams_sd ** 2 + (SCALE_ERROR * qty * product.grams) ** 2
            sd = math.sqrt(sd_seen2 + spread2) + 0.5
            score = _density(seen - qty * product.grams, sd) * rest_like * place_prior
            if delta > 0:       # ... or put back anywhere else (onto a look-alike's plate)
                sd = math.sqrt(sd_all2 + spread2) + 0.5
                nothing_else = _density(0.0, 1.0 + 0.02 * abs(delta))      # as rest_like, on the whole shelf
                elsewhere = floor if own else PLACE_OTHER_SHELF_PUT
                score = max(score, _density(delta - qty * product.grams, sd) * nothing_else * elsewhere)
            score *= 0.5 ** (qty - 1)
            if score > 0:
                scored.append((score, sku, qty))
    # 'unexplained': something else changed where the change was seen (the best-placed window)
    norm = sum(s for s, _, _ in scored) + UNEXPLAINED_DENSITY * best_rest
    scored.sort(key=lambda item: (-item[0], item[1], item[2]))
    if delta > 0:       # fusion keeps only what the payer holds: list enough for the held one to be there
        top = max(top, PUT_TOP)
    return [Candidate(sku, store.products[sku].name, qty, store.products[sku].grams, s / norm)
            for s, sku, qty in scored[:top]]
