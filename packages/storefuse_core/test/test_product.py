"""Which products (and how many) explain a settled weight change on a shelf."""
from __future__ import annotations

from storefuse_core.product import candidates

# tiny store (conftest): shelf G1S1 holds A (100 g) on P1 and B (200 g) on P2


def test_exact_single_unit(tiny):
    cands = candidates(tiny, "G1S1", {"G1S1P1": -100.4, "G1S1P2": 0.3}, -100.1, 1.0)
    assert (cands[0].sku, cands[0].qty) == ("A", 1)
    assert cands[0].probability > 0.99
    assert cands[0].name == "Apple pack" and cands[0].unit_grams == 100.0


def test_two_units_of_the_light_product_versus_one_heavy_unit_is_decided_by_the_plate(tiny):
    on_a = candidates(tiny, "G1S1", {"G1S1P1": -200.0, "G1S1P2": 0.0}, -200.0, 1.0)
    on_b = candidates(tiny, "G1S1", {"G1S1P1": 0.0, "G1S1P2": -200.0}, -200.0, 1.0)
    assert (on_a[0].sku, on_a[0].qty) == ("A", 2)
    assert (on_b[0].sku, on_b[0].qty) == ("B", 1)
    assert on_a[0].probability > 0.8 and on_b[0].probability > 0.8
    assert {(c.sku, c.qty) for c in on_a[:2]} == {("A", 2), ("B", 1)}


def test_with_no_plate_information_one_unit_beats_two(tiny):
    even = candidates(tiny, "G1S1", {"G1S1P1": -100.0, "G1S1P2": -100.0}, -200.0, 1.0)
    assert (even[0].sku, even[0].qty) == ("B", 1)          # 0.5 ** (qty - 1) prefers fewer units
    assert (even[1].sku, even[1].qty) == ("A", 2)
    assert even[0].probability > 2 * even[1].probability


def test_unexplained_delta_gives_a_low_top_probability(tiny):
    # 12 g off a 100 g unit (4.7 sd): low enough that the receipt goes to a human
    cands = candidates(tiny, "G1S1", {"G1S1P1": -112.0}, -112.0, 1.5)
    assert cands == [] or cands[0].probability < 0.2
    far = candidates(tiny, "G1S1", {"G1S1P1": -151.0}, -151.0, 1.0)
    assert far == [] or far[0].probability < 0.01


def test_probabilities_are_sorted_bounded_and_sum_to_at_most_one(tiny):
    cands = candidates(tiny, "G1S1", {"G1S1P1": -300.0}, -300.0, 5.0, max_qty=6, top=10)
    probs = [c.probability for c in cands]
    assert probs == sorted(probs, reverse=True)
    assert all(0.0 <= p <= 1.0 for p in probs)
    assert sum(probs) <= 1.0
    assert (cands[0].sku, cands[0].qty) == ("A", 3)


def test_only_products_of_that_shelf_are_candidates(tiny):
    cands = candidates(tiny, "G1S2", {"G1S2P1": -55.0}, -55.0, 1.0, top=10)
    assert {c.sku for c in cands} <= {"C", "D"}
    assert cands[0].sku == "C"


def test_top_and_max_qty_limit_the_list(tiny):
    assert len(candidates(tiny, "G1S1", {"G1S1P1": -400.0}, -400.0, 50.0, max_qty=6, top=2)) <= 2
    limited = candidates(tiny, "G1S1", {"G1S1P1": -400.0}, -400.0, 1.0, max_qty=3)
    assert all(c.qty <= 3 for c in limited)
    assert not any((c.sku, c.qty) == ("A", 4) for c in limited)


def test_candidates_are_deterministic(minimart):
    args = ("G1S3", {"G1S3P2": -45.5}, -45.5, 1.2)
    assert candidates(minimart, *args) == candidates(minimart, *args)
    top = candidates(minimart, *args)[0]
    assert top.sku == "MM-0010"           # Reese's 46 g on P2 beats KitKat 45 g on P3
