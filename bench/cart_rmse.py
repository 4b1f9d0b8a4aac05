"""Smart-cart localisation accuracy: the core EKF (storefuse_core.cart) over the cart topics of a
simulated bag, against the simulator's true cart pose (World.cart_pose). Writes JSON
(out/bench/cart_rmse.json) and prints a Markdown table for docs/benchmarks.md.

    . scripts/env.sh && python bench/cart_rmse.py [--scenario F] [--seeds N]

Variants: the EKF as shipped (Mahalanobis gate + UWB quality), without outlier rejection, without the
quality weighting, per-round multilateration alone (no filter), and wheel odometry alone (aligned to
the true pose at its first sample: its drift).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from storefuse_core.bag import read_bag
from storefuse_core.calibration import load_calibration
from storefuse_core.cart import (
    CartParams,
    cart_of,
    compose,
    inverse,
    localize_messages,
    multilaterate,
    odom_pose,
    store_anchors,
    wrap,
)
from storefuse_core.convert import stamp_ns
from storefuse_core.simulation.offline import run_offline
from storefuse_core.simulation.scenario import load_scenario
from storefuse_core.simulation.world import T0_NS, World

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = "scenarios/minimart_smart_carts.yaml"
MULTIPATH_M = 0.25        # a range this much longer than the truth is a multipath outlier (noise sd 0.08)
VARIANTS = {
    "ekf": CartParams(),
    "ekf_no_rejection": CartParams(gate_chi2=0.0),
    "ekf_no_quality": CartParams(use_quality=False),
}


def simulate(scenario, seed: int):
    sc = dataclasses.replace(scenario, seed=seed)
    out = Path(tempfile.mkdtemp(prefix="sfcart-"))
    try:
        run_offline(sc, out)
        msgs = [m for m in read_bag(out / "bag") if cart_of(m.topic)]
    finally:
        shutil.rmtree(out, ignore_errors=True)
    world = World(sc, load_calibration(sc.store.root / "calibration.yaml"))
    return sc.store, world, msgs


def truth(world: World, cart: str, t_ns: int):
    return world.cart_pose(cart, (t_ns - T0_NS) / 1e9)


def errors_of(world, poses: dict, uwb_only: bool = True) -> tuple[list[float], list[float]]:
    pos, yaw = [], []
    for cart, ps in poses.items():
        for p in ps:
            if uwb_only and p.source != "uwb":
                continue
            tr = truth(world, cart, p.stamp_ns)
            if tr is None:
                continue
            pos.append(math.hypot(p.x - tr[0], p.y - tr[1]))
            if p.yaw_known:
                yaw.append(abs(wrap(p.yaw - tr[2])))
    return pos, yaw


def with_truth(world, msgs, kind: str):
    """(cart, stamp, true pose, message) for each `kind` (uwb, odom) message whose cart has a true pose."""
    for m in msgs:
        cart, leaf = cart_of(m.topic)
        if leaf != kind:
            continue
        t = stamp_ns(m.msg.header.stamp)
        tr = truth(world, cart, t)
        if tr is not None:
            yield cart, t, tr, m


def multipath(world, anchors, msgs) -> dict[tuple[str, int, str], bool]:
    """(cart, stamp, anchor) -> is this range a multipath outlier (from the true pose)?"""
    out = {}
    for cart, t, tr, m in with_truth(world, msgs, "uwb"):
        for a, r in zip(m.msg.anchor_ids, m.msg.ranges_m):
            ax, ay, az = anchors[a]
            d = math.sqrt((ax - tr[0]) ** 2 + (ay - tr[1]) ** 2 + (az - 1.0) ** 2)
            out[(cart, t, a)] = float(r) - d > MULTIPATH_M
    return out


def run_variant(world, anchors, msgs, params: CartParams, outliers) -> dict:
    t0 = time.perf_counter()
    poses, stats = localize_messages(msgs, anchors, params)
    wall = time.perf_counter() - t0
    pos, yaw = errors_of(world, poses)
    pos_all, _ = errors_of(world, poses, uwb_only=False)
    flagged = {(c, p.stamp_ns, a) for c, ps in poses.items() for p in ps if p.source == "uwb" for a in p.rejected_ids}
    true_out = {k for k, v in outliers.items() if v}
    return {"pos": pos, "pos_all": pos_all, "yaw": yaw, "wall_s": wall,
            "ranges": sum(s.ranges for s in stats.values()),
            "rejected": sum(s.ranges_rejected for s in stats.values()),
            "reinits": sum(s.reinits for s in stats.values()),
            "outliers": len(true_out), "outliers_rejected": len(true_out & flagged),
            "inliers_rejected": len(flagged - true_out)}


def run_multilateration(world, anchors, msgs) -> dict:
    pos = []
    for _, _, tr, m in with_truth(world, msgs, "uwb"):
        fix = multilaterate(np.array([anchors[a] for a in m.msg.anchor_ids]), list(m.msg.ranges_m))
        if fix is not None:
            pos.append(math.hypot(fix.x - tr[0], fix.y - tr[1]))
    return {"pos": pos}


def run_odometry_only(world, msgs) -> dict:
    """Dead reckoning, aligned to the truth at each cart's first odometry sample."""
    pos, finals, paths = [], [], []
    align, last, path = {}, {}, {}
    for cart, _, tr, m in with_truth(world, msgs, "odom"):
        o = odom_pose(m.msg)
        if cart not in align:
            align[cart], path[cart] = compose(tr, inverse(o)), 0.0
        est = compose(align[cart], o)
        if cart in last:
            path[cart] += math.hypot(tr[0] - last[cart][1][0], tr[1] - last[cart][1][1])
        last[cart] = (est, tr)
        pos.append(math.hypot(est[0] - tr[0], est[1] - tr[1]))
    for cart, (est, tr) in last.items():
        finals.append(math.hypot(est[0] - tr[0], est[1] - tr[1]))
        paths.append(path[cart])
    return {"pos": pos, "final_m": finals, "path_m": paths}


def summary(errs: list[float]) -> dict:
    e = np.asarray(errs, dtype=float)
    if not len(e):
        return {"n": 0}
    return {"n": int(len(e)), "rmse_m": round(float(np.sqrt(np.mean(e ** 2))), 4),
            "p50_m": round(float(np.percentile(e, 50)), 4), "p95_m": round(float(np.percentile(e, 95)), 4),
            "max_m": round(float(e.max()), 4)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default=SCENARIO)
    ap.add_argument("--seeds", type=int, default=10, help="pool this many runs: seed, seed+1, ...")
    ap.add_argument("--out", default=str(ROOT / "out" / "bench" / "cart_rmse.json"))
    args = ap.parse_args()
    scenario = load_scenario(ROOT / args.scenario)
    pooled: dict[str, dict[str, list]] = {}
    per_seed = []
    for seed in range(scenario.seed, scenario.seed + args.seeds):
        store, world, msgs = simulate(scenario, seed)
        anchors = store_anchors(store)
        outliers = multipath(world, anchors, msgs)
        runs = {k: run_variant(world, anchors, msgs, p, outliers) for k, p in VARIANTS.items()}
        runs["multilateration"] = run_multilateration(world, anchors, msgs)
        runs["odometry_only"] = run_odometry_only(world, msgs)
        row = {"seed": seed}
        for name, r in runs.items():
            acc = pooled.setdefault(name, {})
            for k, v in r.items():
                acc.setdefault(k, [])
                acc[k] += v if isinstance(v, list) else [v]
            row[name] = summary(r["pos"])["rmse_m"]
        per_seed.append(row)
        print(json.dumps(row), flush=True)
    results = {}
    for name, acc in pooled.items():
        r = {"uwb_rounds": summary(acc["pos"])}
        if "pos_all" in acc:
            r["all_poses"] = summary(acc["pos_all"])
            r["yaw_rmse_rad"] = round(float(np.sqrt(np.mean(np.square(acc["yaw"])))), 4) if acc["yaw"] else None
            for k in ("ranges", "rejected", "reinits", "outliers", "outliers_rejected", "inliers_rejected"):
                r[k] = int(sum(acc[k]))
            r["outlier_recall"] = round(r["outliers_rejected"] / max(1, r["outliers"]), 4)
            r["rejection_precision"] = round(r["outliers_rejected"] / max(1, r["rejected"]), 4)
            r["wall_s"] = round(float(sum(acc["wall_s"])), 2)
        if "final_m" in acc:
            r["final_drift_m"] = summary(acc["final_m"])
            r["drift_per_m"] = round(float(np.sum(acc["final_m"]) / max(1e-9, np.sum(acc["path_m"]))), 4)
        results[name] = r
    doc = {"scenario": args.scenario, "seeds": [scenario.seed, scenario.seed + args.seeds - 1],
           "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
           "results": results, "per_seed_rmse_m": per_seed}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=1))
    print(table(results))


def table(results: dict) -> str:
    lines = ["| estimator | position RMSE (m) | p95 (m) | max (m) | yaw RMSE (rad) | ranges rejected | "
             "multipath rejected | good ranges rejected | restarts |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        u = r["uwb_rounds"]
        yaw = r.get("yaw_rmse_rad")
        if "ranges" in r:
            rej = f"{r['rejected']}/{r['ranges']}"
            mp = f"{r['outliers_rejected']}/{r['outliers']}"
            good = str(r["inliers_rejected"])
            restarts = str(r["reinits"])
        else:
            rej = mp = good = restarts = "–"
        lines.append(f"| {name} | {u['rmse_m']:.3f} | {u['p95_m']:.3f} | {u['max_m']:.2f} | "
                     f"{'–' if yaw is None else f'{yaw:.3f}'} | {rej} | {mp} | {good} | {restarts} |")
    od = results.get("odometry_only")
    if od:
        lines.append("")
        lines.append(f"Odometry alone: final drift {od['final_drift_m']['rmse_m']:.2f} m RMS "
                     f"(max {od['final_drift_m']['max_m']:.2f} m), {100 * od['drift_per_m']:.1f} % of the path.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
