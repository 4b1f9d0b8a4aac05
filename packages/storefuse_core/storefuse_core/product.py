"""Which products (and how many) explain a settled weight change on a shelf.

Likelihood of |delta| under n units of each product placed on the shelf, weighted by how much of
the change happened on that product's own plates; an 'unexplained' hypothesis keeps the
probabilities honest when nothing fits (an unknown item, a hand left on the shelf).
"""
from __future__ import annotations

import math

from storefuse_core.events import Candidate
from storefuse_core.layout import Store

UNEXPLAINED_DENSITY = 1e-4      # per gram: a flat density over a few kilograms


def candidates(store: Store, shelf_id: str, plate_deltas: dict[str, float], delta: float,
               noise_sd: float, max_qty: int = 6, top: int = 5) -> list[Candidate]:
    shelf = store.shelves[shelf_id]
    skus = sorted({sku for pid in shelf.plate_ids for sku in store.plate_products.get(pid, ())})
    magnitude = abs(delta)
    total_abs = sum(abs(v) for v in plate_deltas.values()) or 1.0
    scored: list[tuple[float, str, int]] = []
    for sku in skus:
        product = store.products[sku]
        on_plates = sum(abs(plate_deltas.get(pid, 0.0)) for pid in product.plates) / total_abs
        place_prior = 0.05 + 0.95 * on_plates
        for qty in range(1, max_qty + 1):
            sd = math.sqrt(noise_sd ** 2 + qty * product.grams_sd ** 2)
            z = (magnitude - qty * product.grams) / sd
            if z * z > 200:
                continue
            density = math.exp(-0.5 * z * z) / (sd * math.sqrt(2 * math.pi))
            scored.append((density * place_prior * 0.5 ** (qty - 1), sku, qty))
    norm = sum(s for s, _, _ in scored) + UNEXPLAINED_DENSITY
    scored.sort(key=lambda item: (-item[0], item[1], item[2]))
    return [Candidate(sku, store.products[sku].name, qty, store.products[sku].grams, s / norm)
            for s, sku, qty in scored[:top]]
