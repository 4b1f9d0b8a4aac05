"""Product views in a hand and the look-alike tie-breaker's classifier (issue 6)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from storefuse_core.layout import load_store
from storefuse_core.vision.package import VIEW_SIZE, family_of, look_of, render_view
from storefuse_core.vision.product_classifier import ProductClassifier


@pytest.fixture(scope="module")
def aifi():
    return load_store("aifi")


@pytest.fixture(scope="module")
def paqui(aifi):
    skus = [s for s, p in aifi.products.items() if family_of(p) == "paqui" and p.plates]
    assert len(skus) == 3
    return skus


@pytest.fixture(scope="module")
def classifier(aifi):
    return ProductClassifier(aifi, seed=0)


def _clear(look, rng):
    return render_view(look, rng, float(rng.uniform(30, 40)), gain=float(rng.uniform(0.8, 1.2)), occlusion=0.0)


def test_family_shares_base_and_shape_but_differs_in_accent(aifi, paqui):
    looks = [look_of(aifi.products[s]) for s in paqui]
    for a in looks[1:]:
        assert (a.base_bgr, a.logo_bgr, a.aspect, a.layout, a.band_pos, a.family) == \
               (looks[0].base_bgr, looks[0].logo_bgr, looks[0].aspect, looks[0].layout, looks[0].band_pos, "paqui")
    accents = {(lk.accent_bgr, lk.mark, lk.mark_bgr) for lk in looks}
    assert len(accents) == 3
    haribo = next(p for p in aifi.products.values() if family_of(p) == "haribo")
    assert family_of(haribo) == "haribo"   # "Haribo, Gold-bears, ..." and "Haribo Starmix" are one brand
    assert look_of(haribo).base_bgr != looks[0].base_bgr
    assert look_of(aifi.products[paqui[0]]) == looks[0]    # deterministic


def test_render_shape_dtype_and_determinism(aifi, paqui):
    look = look_of(aifi.products[paqui[0]])
    a = render_view(look, np.random.default_rng(7), 20.0, occlusion=0.3, blur_px=2.0)
    b = render_view(look, np.random.default_rng(7), 20.0, occlusion=0.3, blur_px=2.0)
    c = render_view(look, np.random.default_rng(8), 20.0, occlusion=0.3, blur_px=2.0)
    assert a.shape == (VIEW_SIZE, VIEW_SIZE, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert render_view(look, np.random.default_rng(7), 20.0, size=32).shape == (32, 32, 3)


def test_small_package_really_loses_detail(aifi, paqui):
    look = look_of(aifi.products[paqui[0]])
    rng = np.random.default_rng(3)

    def detail(px):
        grey = [cv2.cvtColor(render_view(look, rng, px, noise_sd=0.0), cv2.COLOR_BGR2GRAY) for _ in range(20)]
        return np.mean([np.abs(cv2.Laplacian(g, cv2.CV_32F)).mean() for g in grey])

    assert detail(8.0) < 0.6 * detail(40.0)


def test_clear_views_pick_the_right_flavour_of_paqui(aifi, paqui, classifier):
    rng = np.random.default_rng(11)
    right = 0
    n = 0
    for sku in paqui:
        look = look_of(aifi.products[sku])
        for _ in range(17):
            p = classifier.classify(_clear(look, rng), paqui)
            right += max(p, key=p.get) == sku
            n += 1
    assert right / n >= 0.55, f"{right}/{n} clear views right among the Paqui flavours (chance 1/3)"


def test_probabilities_cover_exactly_the_given_skus(aifi, paqui, classifier):
    gondola = [s for s, p in aifi.products.items() if p.plates and p.plates[0].startswith("G2")]
    img = _clear(look_of(aifi.products[paqui[1]]), np.random.default_rng(5))
    for cands in (paqui, gondola, paqui[:1]):
        p = classifier.classify(img, cands)
        assert list(p) == cands
        assert sum(p.values()) == pytest.approx(1.0, abs=1e-9)
        assert all(v > 0 for v in p.values())      # the floor keeps every candidate alive for fusion
    assert classifier.classify(img, []) == {}


def test_tiny_occluded_views_are_flatter_than_clear_ones(aifi, paqui, classifier):
    rng = np.random.default_rng(21)
    clear, bad = [], []
    for sku in paqui:
        look = look_of(aifi.products[sku])
        for _ in range(10):
            clear.append(max(classifier.classify(_clear(look, rng), paqui).values()))
            img = render_view(look, rng, 8.0, gain=0.6, occlusion=0.55, blur_px=2.0, noise_sd=4.0)
            bad.append(max(classifier.classify(img, paqui).values()))
    assert np.mean(bad) < np.mean(clear) - 0.05


def test_classification_does_not_depend_on_call_order(aifi, paqui):
    gondola = [s for s, p in aifi.products.items() if p.plates and p.plates[0].startswith("G2")][:12]
    img = render_view(look_of(aifi.products[paqui[2]]), np.random.default_rng(9), 16.0, occlusion=0.2)
    first = ProductClassifier(aifi, seed=0, views_per_product=12)
    first.classify(img, list(reversed(gondola)))           # trains in another order first
    second = ProductClassifier(aifi, seed=0, views_per_product=12)
    assert first.classify(img, paqui) == second.classify(img, paqui)
    other = ProductClassifier(aifi, seed=1, views_per_product=12).classify(img, paqui)
    assert other != second.classify(img, paqui)


def test_a_bad_image_is_one_clear_error(aifi, paqui, classifier):
    with pytest.raises(ValueError, match="uint8 BGR"):
        classifier.classify(np.zeros((48, 48), np.uint8), paqui)
    with pytest.raises(KeyError):
        classifier.classify(np.zeros((48, 48, 3), np.uint8), ["NO-SUCH-SKU"])
