"""How well the look-alike tie-breaker's product classifier tells products apart from a camera crop.

    . scripts/env.sh && python bench/product_views.py [--store minimart --store aifi] [--views 2] [--seed 0]

For every product on a plate, test views (seeded apart from the training renders) in every bin of
package size (pixels along its longer side: 8-12, 12-20, 20-40) x finger occlusion (0-0.2, 0.2-0.4,
0.4-0.6), under random light, tint, blur and noise. Each view is classified among three candidate
sets: its brand family (same first word, >= 2 products on plates), its weight look-alikes (products
on the same gondola whose unit grams differ by < 3 %), and its whole gondola. Reports top-1 accuracy
per bin, expected calibration error (ECE, 10 equal-width confidence bins), mean max-probability, and
ms per render, per classify (trained) and the cost of first training. Writes out/bench/product_views.json.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PIXEL_BINS = ((8.0, 12.0), (12.0, 20.0), (20.0, 40.0))
OCCLUSION_BINS = ((0.0, 0.2), (0.2, 0.4), (0.4, 0.6))


def gondola_skus(store) -> dict[str, list[str]]:
    out = {}
    for gid, g in store.gondolas.items():
        skus = []
        for sh in g.shelf_ids:
            for pl in store.shelves[sh].plate_ids:
                skus += store.plate_products.get(pl, ())
        out[gid] = list(dict.fromkeys(skus))
    return out


def weight_lookalikes(store, gondolas) -> dict[str, list[str]]:
    """sku -> itself plus every product on one of its gondolas within 3 % of its unit grams."""
    out: dict[str, set[str]] = defaultdict(set)
    for skus in gondolas.values():
        for a in skus:
            for b in skus:
                ga, gb = store.products[a].grams, store.products[b].grams
                if a != b and ga > 0 and gb > 0 and abs(ga - gb) / max(ga, gb) < 0.03:
                    out[a].update((a, b))
    return {k: sorted(v) for k, v in out.items()}


def ece(conf: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    if len(conf) == 0:
        return float("nan")
    idx = np.minimum((conf * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.sum() / len(conf) * abs(float(conf[m].mean()) - float(correct[m].mean()))
    return total


def summarise(rows: list[dict]) -> dict:
    if not rows:
        return {"views": 0}
    conf = np.array([r["conf"] for r in rows])
    ok = np.array([r["ok"] for r in rows], dtype=float)
    return {"views": len(rows), "accuracy": round(float(ok.mean()), 3), "ece": round(ece(conf, ok), 3),
            "mean_max_p": round(float(conf.mean()), 3),
            "chance": round(float(np.mean([1.0 / r["k"] for r in rows])), 3),
            "mean_truth_p": round(float(np.mean([r["p_truth"] for r in rows])), 3)}


def run_store(name: str, views: int, seed: int, per_product: int) -> dict:
    from storefuse_core.layout import load_store
    from storefuse_core.vision import stable_hash
    from storefuse_core.vision.package import family_of, look_of, render_view
    from storefuse_core.vision.product_classifier import ProductClassifier
    store = load_store(name)
    gondolas = gondola_skus(store)
    on_plates = list(dict.fromkeys(s for skus in gondolas.values() for s in skus))
    fams: dict[str, list[str]] = defaultdict(list)
    for s in on_plates:
        fams[family_of(store.products[s])].append(s)
    family = {s: v for v in fams.values() if len(v) >= 2 for s in v}
    weights = weight_lookalikes(store, gondolas)
    gondola_of = {s: gid for gid, skus in gondolas.items() for s in skus}
    clf = ProductClassifier(store, seed=seed, views_per_product=per_product)
    t0 = time.perf_counter()
    clf._shared                          # noqa: B018  (the one-off shared model, timed on its own)
    t_shared = time.perf_counter() - t0
    t0 = time.perf_counter()
    clf.train(on_plates)
    t_train = time.perf_counter() - t0
    rows: dict[str, list[dict]] = defaultdict(list)
    t_render = t_classify = 0.0
    n_render = n_classify = 0
    for sku in on_plates:
        look = look_of(store.products[sku])
        rng = np.random.default_rng([seed + 1000, stable_hash("bench-product-view", sku)])
        sets = {"gondola": gondolas[gondola_of[sku]]}
        if sku in family:
            sets["family"] = family[sku]
        if sku in weights:
            sets["weight"] = weights[sku]
        for pb in PIXEL_BINS:
            for ob in OCCLUSION_BINS:
                for _ in range(views):
                    px = float(math.exp(rng.uniform(math.log(pb[0]), math.log(pb[1]))))
                    occ = float(rng.uniform(*ob))
                    kw = {"gain": float(rng.uniform(0.6, 1.3)), "tint": tuple(rng.uniform(0.9, 1.1, 3)),
                          "blur_px": float(rng.uniform(0, 3)) if rng.random() < 0.5 else 0.0,
                          "noise_sd": float(rng.uniform(1, 4))}
                    t = time.perf_counter()
                    img = render_view(look, rng, px, occlusion=occ, **kw)
                    t_render += time.perf_counter() - t
                    n_render += 1
                    for kind, cands in sets.items():
                        t = time.perf_counter()
                        p = clf.classify(img, cands)
                        t_classify += time.perf_counter() - t
                        n_classify += 1
                        best = max(p, key=p.get)
                        rows[kind].append({"pb": pb, "ob": ob, "ok": best == sku, "conf": p[best],
                                           "p_truth": p[sku], "k": len(cands)})
    # first-call cost for 100 skus on a fresh classifier (the shared model is already built)
    fresh = ProductClassifier(store, seed=seed + 1, views_per_product=per_product)
    fresh._shared                        # noqa: B018
    hundred = on_plates[:100]
    img = render_view(look_of(store.products[hundred[0]]), np.random.default_rng(0), 20.0)
    t0 = time.perf_counter()
    fresh.classify(img, hundred)
    t_first100 = time.perf_counter() - t0
    out = {"store": name, "products_on_plates": len(on_plates),
           "families": sorted({f for s, f in ((s, family_of(store.products[s])) for s in family)}),
           "weight_lookalike_products": len(weights),
           "ms_per_render": round(1000 * t_render / max(1, n_render), 3),
           "ms_per_classify": round(1000 * t_classify / max(1, n_classify), 3),
           "s_shared_model": round(t_shared, 2), "s_train_all_on_plates": round(t_train, 2),
           "s_first_classify_100_skus": round(t_first100, 2), "first_classify_skus": len(hundred),
           "sets": {}}
    for kind, rs in rows.items():
        entry = {"all": summarise(rs), "pixels": {}, "occlusion": {}, "pixels_x_occlusion": {}}
        for pb in PIXEL_BINS:
            entry["pixels"][f"{pb[0]:g}-{pb[1]:g}"] = summarise([r for r in rs if r["pb"] == pb])
            for ob in OCCLUSION_BINS:
                entry["pixels_x_occlusion"][f"{pb[0]:g}-{pb[1]:g}/{ob[0]:g}-{ob[1]:g}"] = summarise(
                    [r for r in rs if r["pb"] == pb and r["ob"] == ob])
        for ob in OCCLUSION_BINS:
            entry["occlusion"][f"{ob[0]:g}-{ob[1]:g}"] = summarise([r for r in rs if r["ob"] == ob])
        out["sets"][kind] = entry
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", action="append", default=[])
    ap.add_argument("--views", type=int, default=2, help="views per product per pixel x occlusion bin")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--views-per-product", type=int, default=32, help="training renders per product")
    args = ap.parse_args()
    stores = args.store or ["minimart", "aifi"]
    results = [run_store(s, args.views, args.seed, args.views_per_product) for s in stores]
    out = {"views_per_bin": args.views, "seed": args.seed, "views_per_product": args.views_per_product,
           "stores": results}
    path = ROOT / "out" / "bench" / "product_views.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    for r in results:
        print(f"{r['store']}: {r['products_on_plates']} products on plates; {r['ms_per_render']} ms/render, "
              f"{r['ms_per_classify']} ms/classify; shared model {r['s_shared_model']} s, first classify over "
              f"{r['first_classify_skus']} skus {r['s_first_classify_100_skus']} s", file=sys.stderr)
        print(f"  {'set':8s} {'views':>6s} {'chance':>6s} {'8-12px':>7s} {'12-20px':>7s} {'20-40px':>7s} "
              f"{'occ<.2':>7s} {'occ>.4':>7s} {'all':>6s} {'ECE':>6s}", file=sys.stderr)
        for kind, e in r["sets"].items():
            px = [e["pixels"][k]["accuracy"] for k in ("8-12", "12-20", "20-40")]
            oc = [e["occlusion"][k]["accuracy"] for k in ("0-0.2", "0.4-0.6")]
            print(f"  {kind:8s} {e['all']['views']:6d} {e['all']['chance']:6.3f} " + " ".join(f"{a:7.3f}" for a in px)
                  + " " + " ".join(f"{a:7.3f}" for a in oc) + f" {e['all']['accuracy']:6.3f} {e['all']['ece']:6.3f}",
                  file=sys.stderr)
    print(json.dumps({r["store"]: {k: e["all"] for k, e in r["sets"].items()} for r in results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
