"""Shared fixtures for the storefuse_core unit tests (plain pytest, no ROS graph)."""
from __future__ import annotations

from pathlib import Path

import pytest

from storefuse_core.layout import Store, load_store, parse_store

REPO = Path(__file__).resolve().parents[3]

# A one-gondola store small enough to reason about by hand: shelf G1S1 holds A (100 g, P1) and
# B (200 g, P2); shelf G1S2 holds C (55 g) and D (45 g), both distinct from A and B.
TINY_LAYOUT = """
store: tiny
currency: EUR
gondolas:
  - {id: G1, x: 2.0, y: 2.0, length_m: 1.0, depth_m: 0.5, shelf_heights_m: [0.3, 0.8], plates_per_shelf: 2}
gates:
  - {id: gate_entry_1, x: 0.5, y: 0.5}
  - {id: gate_exit_1, x: 1.5, y: 0.5}
products:
  - {sku: A, name: Apple pack, grams: 100.0, grams_sd: 1.0, price: 1.00, plates: [G1S1P1]}
  - {sku: B, name: Bottle, grams: 200.0, grams_sd: 1.0, price: 3.00, plates: [G1S1P2]}
  - {sku: C, name: Candy bar, grams: 55.0, grams_sd: 1.0, price: 1.50, plates: [G1S2P1]}
  - {sku: D, name: Dark chocolate, grams: 45.0, grams_sd: 0.9, price: 2.00, plates: [G1S2P2]}
"""


@pytest.fixture(scope="session")
def minimart() -> Store:
    return load_store("minimart")


@pytest.fixture(scope="session")
def tiny() -> Store:
    return parse_store(TINY_LAYOUT, Path("tiny.yaml"))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO
