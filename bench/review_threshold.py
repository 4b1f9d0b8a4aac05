"""Choose the review threshold on the standard suite: the smallest receipt confidence below which a
visit goes to a human, such that unreviewed receipts are >= 99.5 % exactly right (issue 6).

    . scripts/env.sh && python bench/review_threshold.py [--seeds 3] [--target 0.995]

Runs every scenario of the suite offline (simulate -> replay -> score), collects each visit's final
receipt confidence and whether it was exactly right, and sweeps the threshold over the observed
confidences. Writes out/bench/review_threshold.json: the per-scenario figures at the chosen
threshold and the whole sweep. The default in storefuse_core.receipt.REVIEW_THRESHOLD and
config/storefuse.yaml (`review_threshold`) should be the value chosen here.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUITE = ["minimart_two_shoppers", "minimart_groups", "minimart_misplaced", "minimart_smart_carts",
         "aifi_basics", "aifi_busy_shelf", "aifi_lookalikes", "fault_camera_dropout", "fault_gate_duplicate_read",
         "fault_plate_dead", "fault_plate_drift", "fault_sensor_clock_skew", "fault_serial_garbage", "minimart_day"]


def visits_of(scenario: Path, seeds: int, tmp: Path, runs: list | None = None) -> list[dict]:
    from storefuse_core.evaluation import match
    from storefuse_core.replay import replay_bag
    from storefuse_core.simulation.offline import run_offline
    from storefuse_core.simulation.scenario import load_scenario
    base = load_scenario(scenario)
    out = []
    n = 1 if scenario.stem == "minimart_day" else seeds      # 60 visits a seed already
    for i in range(n):
        seed = base.seed + i
        gt = run_offline(load_scenario(scenario, seed), tmp / f"{scenario.stem}-{seed}")
        finals = replay_bag(tmp / f"{scenario.stem}-{seed}" / "bag").finals_json()
        if runs is not None:
            runs.append((gt, finals))
        pairs, _ = match(gt, finals)
        for visit, r in pairs:
            truth = {ln["sku"]: ln["qty"] for ln in visit["lines"]}
            got = {} if r is None else {ln["sku"]: ln["qty"] for ln in r["lines"] if ln["qty"] > 0}
            out.append({"scenario": scenario.stem, "seed": seed, "visit": visit["visit_id"],
                        "confidence": 0.0 if r is None else r["confidence"], "exact": truth == got})
    return out


def sweep(visits: list[dict], target: float) -> tuple[float, list[dict]]:
    rows = []
    for t in sorted({0.0} | {v["confidence"] for v in visits} | {1.0 + 1e-9}):
        kept = [v for v in visits if v["confidence"] >= t]
        acc = sum(v["exact"] for v in kept) / len(kept) if kept else 1.0
        rows.append({"threshold": t, "reviews_per_1000": 1000.0 * (len(visits) - len(kept)) / len(visits),
                     "unreviewed_exact": acc, "unreviewed": len(kept)})
    ok = [r for r in rows if r["unreviewed_exact"] >= target]
    return min(ok, key=lambda r: (r["reviews_per_1000"], r["threshold"]))["threshold"], rows


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--target", type=float, default=0.995)
    args = ap.parse_args()
    from storefuse_core.evaluation import pool
    visits, runs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name in SUITE:
            got = visits_of(ROOT / "scenarios" / f"{name}.yaml", args.seeds, Path(tmp), runs)
            visits += got
            print(f"{name}: {len(got)} visits, {sum(v['exact'] for v in got)} exact", file=sys.stderr)
    chosen, rows = sweep(visits, args.target)
    per = {}
    for v in visits:
        s = per.setdefault(v["scenario"], {"visits": 0, "exact": 0, "reviewed": 0, "wrong_unreviewed": 0})
        s["visits"] += 1
        s["exact"] += v["exact"]
        s["reviewed"] += v["confidence"] < chosen
        s["wrong_unreviewed"] += v["confidence"] >= chosen and not v["exact"]
    at = next(r for r in rows if r["threshold"] == chosen)
    doc = {"target": args.target, "seeds": args.seeds, "visits": len(visits),
           "exact": sum(v["exact"] for v in visits), "threshold": chosen,
           "reviews_per_1000": round(at["reviews_per_1000"], 1), "unreviewed_exact": round(at["unreviewed_exact"], 4),
           "per_scenario": per, "sweep": rows, "visits_detail": visits,
           # what `storefuse eval` reports for the same runs, at the configured review threshold
           "at_configured_threshold": pool(runs)}
    path = ROOT / "out" / "bench" / "review_threshold.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1))
    print(json.dumps({k: doc[k] for k in ("visits", "exact", "threshold", "reviews_per_1000", "unreviewed_exact")}))
    print(json.dumps({k: v for k, v in doc["at_configured_threshold"].items() if v is not None}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
