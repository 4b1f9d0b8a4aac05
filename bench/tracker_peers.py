"""Shopper tracker vs norfair and motpy (issue 6): the same simulated detection streams, ms per time
step and IDF1/MOTA, in one run. Writes out/bench/tracker_peers.json.

    . scripts/env.sh && python bench/tracker_peers.py [--window-s 30] [--scenes 10 50 100] [--profile]

Steps: (1) make out/bench/venv-peers (norfair 2.3 needs numpy < 2; pins in
bench/requirements-peers.txt) unless it is current; (2) simulate the grocery store with random
shoppers at an arrival rate that keeps ~10, ~50, ~100 inside, pick the window whose head count is
closest to that, and draw every camera's detections (the simulator's detection model, 50 cameras at
10 Hz) into out/bench/tracker_streams.npz, once (kept until the parameters change or --regen);
(3) run norfair and motpy on it in the peer venv (bench/_peers_run.py) and storefuse's
ShopperTracker here; (4) score every tracker with storefuse_core.evaluation.tracking_metrics
(motmetrics, 1 m match radius, the function `storefuse eval` uses) against the true trajectories.

The trackers run one after the other, never side by side. A time step is 100 ms of all cameras;
its time covers the tracker's update call(s) and reading its tracks out, not building the input
objects. The first --warmup-s seconds are tracked but neither timed nor scored (every tracker starts
cold with the whole crowd in view).

storefuse runs four ways: `native` (one on_detections call per camera frame, as the pipeline feeds
it, no gate events: a pure tracker), `merged` (the peers' merged input, one call per step),
`native+gates` (entry scans of shoppers who enter during the run are fed too, and a bound track
is scored by the shopper identity the gate gave it, which re-identification carries over), and,
with --baseline FILE, `native-baseline`: the ShopperTracker of another track.py (e.g. the version
before a speed-up) on the same input, reported with the check that its tracks equal `native`'s.
Only storefuse: --only-storefuse (skips the peer venv and the peers).
"""
from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import os
import platform
import pstats
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "out" / "bench"
VENV = OUT / "venv-peers"
REQS = ROOT / "bench" / "requirements-peers.txt"
STREAMS = OUT / "tracker_streams.npz"
SEED = 8
# arrivals per minute and shoppers: a grocery visit lasts ~2 min, so the head count settles near
# 2 x the rate; the count only has to outlast the window
SCENES = {10: (5.0, 40), 50: (25.0, 120), 100: (50.0, 220)}
MERGE_RADIUS_M = 0.75
PEER_MODES = ("merged", "raw")
STOREFUSE_MODES = ("native", "merged", "native+gates")


# ---- peer venv -----------------------------------------------------------------------------------
def ensure_peer_venv() -> Path:
    """Create or refresh the peer venv; the requirements' hash says whether it is current."""
    py = VENV / "bin" / "python"
    stamp = VENV / ".requirements.sha256"
    want = hashlib.sha256(REQS.read_bytes()).hexdigest()
    if py.exists() and stamp.exists() and stamp.read_text().strip() == want:
        return py
    print(f"creating {VENV.relative_to(ROOT)} from {REQS.relative_to(ROOT)}", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "-r", str(REQS)], check=True)
    subprocess.run([str(py), "-c", "import norfair, motpy"], check=True)
    stamp.write_text(want + "\n")
    return py


# ---- detection streams ---------------------------------------------------------------------------
def _window(world, target: int, window_s: float, warmup_s: float) -> tuple[float, list[int]]:
    """Start of the run (warm-up + window) whose mean head count is closest to target."""
    trajs = list(world.timeline.trajectories.values())
    spans = np.array([[tr[0][0], tr[-1][0]] for tr in trajs])
    grid = np.arange(0.0, world.timeline.end_s, 1.0)
    inside = ((spans[:, :1] <= grid) & (grid <= spans[:, 1:])).sum(axis=0)
    length = int(window_s + warmup_s)
    best = min(range(0, max(1, len(grid) - length)),
               key=lambda s: abs(float(inside[s:s + length].mean()) - target))
    return float(best), [int(v) for v in inside[best + int(warmup_s):best + length]]


def _merge(xs, ys, var, score, cams, apps):
    """Cross-camera merge for trackers that take one detection per person: strongest first, a
    detection joins the nearest cluster within MERGE_RADIUS_M that has none from its camera;
    position inverse-variance weighted."""
    order = np.argsort(-score, kind="stable")
    clusters: list[dict] = []
    for i in order:
        best, best_d = None, MERGE_RADIUS_M
        for c in clusters:
            if cams[i] in c["cams"]:
                continue
            d = float(np.hypot(c["x"] - xs[i], c["y"] - ys[i]))
            if d <= best_d:
                best, best_d = c, d
        if best is None:
            clusters.append({"w": 1 / var[i], "x": xs[i], "y": ys[i], "s": score[i], "cams": {cams[i]},
                             "a": apps[i].astype(np.float64)})
            continue
        w = 1 / var[i]
        best["x"] = (best["x"] * best["w"] + xs[i] * w) / (best["w"] + w)
        best["y"] = (best["y"] * best["w"] + ys[i] * w) / (best["w"] + w)
        best["w"] += w
        best["s"] = max(best["s"], score[i])
        best["a"] = best["a"] + apps[i]
        best["cams"].add(cams[i])
    return [(c["x"], c["y"], 1 / c["w"], c["s"], (c["a"] / max(1e-12, c["a"].sum())).astype(np.float32))
            for c in clusters]


def make_streams(scenes: list[int], window_s: float, warmup_s: float) -> dict:
    from storefuse_core.calibration import load_calibration
    from storefuse_core.simulation.scenario import parse_scenario
    from storefuse_core.simulation.world import T0_NS, World, ns
    from storefuse_core.vision.camera import cameras_of
    from storefuse_core.vision.detection_model import DetectionModel, load_params

    arrays: dict[str, np.ndarray] = {"scenes": np.array(scenes)}
    meta: dict = {"seed": SEED, "window_s": window_s, "warmup_s": warmup_s, "merge_radius_m": MERGE_RADIUS_M,
                  "scenes": {}}
    for n in scenes:
        rate, count = SCENES[n]
        t0 = time.perf_counter()
        text = (f"store: grocery\nseed: {SEED}\nshoppers:\n  - random: {{count: {count}, arrivals_per_min: {rate}, "
                f"picks: [2, 8], put_back_prob: 0.1, start_s: 2.0}}\n")
        sc = parse_scenario(text, f"<tracker_peers n={n}>")
        world = World(sc, load_calibration(sc.store.root / "calibration.yaml"))
        start_s, inside = _window(world, n, window_s, warmup_s)
        cams = cameras_of(world.store)
        cam_ids = list(cams)
        model = DetectionModel(load_params(sensors=sc.sensors_given), seed=sc.seed, store=world.store)
        period_ns = int(1e9 / sc.sensors["camera_rate_hz"])
        k0 = int(round(start_s * 1e9 / period_ns))
        n_steps = int(round((window_s + warmup_s) * 1e9 / period_ns))
        stamps = [T0_NS + (k0 + k) * period_ns for k in range(n_steps)]
        raw: dict[str, list] = {k: [] for k in ("step", "cam", "x", "y", "var", "score", "truth", "app")}
        merged: dict[str, list] = {k: [] for k in ("step", "x", "y", "var", "score", "app")}
        truth_ids: dict[str, int] = {}
        for k, stamp in enumerate(stamps):
            people = world.people_at((stamp - T0_NS) / 1e9)
            step_rows = []
            for ci, cid in enumerate(cam_ids):
                for d in model.detect(cams[cid], people, stamp):
                    row = (k, ci, d.x, d.y, d.cov[0], d.score,
                           truth_ids.setdefault(d.truth_id, len(truth_ids)) if d.truth_id else -1, d.appearance)
                    step_rows.append(row)
                    for key, v in zip(raw, row):
                        raw[key].append(v)
            if step_rows:
                cols = list(zip(*step_rows))
                for x, y, var, s, a in _merge(np.array(cols[2]), np.array(cols[3]), np.array(cols[4]),
                                              np.array(cols[5]), cols[1], cols[7]):
                    for key, v in zip(merged, (k, x, y, var, s, a)):
                        merged[key].append(v)
        p = f"n{n}_"
        arrays[p + "stamps"] = np.array(stamps, dtype=np.int64)
        for key, vals in raw.items():
            arrays[p + "r_" + key] = np.array(vals, dtype=np.float32 if key == "app" else None)
        for key, vals in merged.items():
            arrays[p + "m_" + key] = np.array(vals, dtype=np.float32 if key == "app" else None)
        t_end = stamps[-1]
        gt = world.ground_truth()
        trajs = {sid: tr for sid, tr in gt["trajectories"].items() if tr[0][0] <= t_end and tr[-1][0] >= stamps[0]}
        seen = {}
        gates = []
        for r in sorted(world.timeline.reads, key=lambda r: r.t_s):
            t_ns = ns(r.t_s)
            if r.action == "ENTRY" and r.token not in seen and stamps[0] - 5e9 <= t_ns <= t_end:
                seen[r.token] = t_ns
                gates.append({"stamp_ns": t_ns, "gate_id": r.gate_id, "session_id": f"visit-{r.token}",
                              "party": r.party, "staff": r.staff})
        meta["scenes"][str(n)] = {
            "arrivals_per_min": rate, "shoppers_in_scenario": count, "start_s": start_s,
            "inside_mean": round(float(np.mean(inside)), 1), "inside_min": min(inside), "inside_max": max(inside),
            "steps": n_steps, "cameras": len(cam_ids), "camera_ids": cam_ids,
            "raw_detections": len(raw["x"]), "merged_detections": len(merged["x"]),
            "false_detections": int(sum(1 for t in raw["truth"] if t < 0)),
            "gate_entries": gates, "trajectories": trajs, "gen_s": round(time.perf_counter() - t0, 1)}
        print(f"scene n={n}: start {start_s:.0f} s, inside {np.mean(inside):.1f} ({min(inside)}-{max(inside)}), "
              f"{len(raw['x'])} raw / {len(merged['x'])} merged detections, {time.perf_counter() - t0:.0f} s",
              flush=True)
    return {"arrays": arrays, "meta": meta}


def load_or_make_streams(scenes, window_s, warmup_s, regen: bool):
    meta_path = STREAMS.with_suffix(".json")
    key = {"scenes": scenes, "window_s": window_s, "warmup_s": warmup_s, "seed": SEED, "merge": MERGE_RADIUS_M,
           "spec": {str(k): list(v) for k, v in SCENES.items()}}   # lists: the key is compared after a JSON round trip
    if not regen and STREAMS.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("key") == key:
            return STREAMS, meta
    made = make_streams(scenes, window_s, warmup_s)
    made["meta"]["key"] = key
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez(STREAMS, **made["arrays"])
    meta_path.write_text(json.dumps(made["meta"]))
    return STREAMS, made["meta"]


# ---- storefuse -----------------------------------------------------------------------------------
class _Det:
    """What ShopperTracker reads of a PersonDetection."""
    __slots__ = ("x", "y", "cov", "score", "appearance")

    def __init__(self, x, y, var, score, appearance):
        self.x, self.y, self.score, self.appearance = float(x), float(y), float(score), appearance
        self.cov = (float(var), 0.0, 0.0, 0.0, float(var), 0.0, 0.0, 0.0, 0.0025)


def storefuse_inputs(d: dict, n: int, mode: str, n_cams: int):
    """Per step: [(camera index, [detections])], every camera's frame (empty ones too) for native."""
    p = f"n{n}_"
    q = p + ("m_" if mode == "merged" else "r_")
    step = d[q + "step"]
    bounds = np.searchsorted(step, np.arange(len(d[p + "stamps"]) + 1))
    out = []
    for k in range(len(d[p + "stamps"])):
        rows = range(bounds[k], bounds[k + 1])
        dets = [(int(d[q + "cam"][i]) if mode != "merged" else 0,
                 _Det(d[q + "x"][i], d[q + "y"][i], d[q + "var"][i], d[q + "score"][i], d[q + "app"][i]))
                for i in rows]
        if mode == "merged":
            out.append([(0, [o for _, o in dets])])
        else:
            per = [[] for _ in range(n_cams)]
            for c, o in dets:
                per[c].append(o)
            out.append(list(enumerate(per)))
    return out


def baseline_tracker(path: str):
    """ShopperTracker of another track.py, loaded under its own module name."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("track_baseline", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod.ShopperTracker


def run_storefuse(d: dict, meta: dict, n: int, mode: str, warmup_steps: int, profile_steps: int = 0,
                  baseline: str | None = None):
    from storefuse_core.events import ENTRY, GateEvent
    from storefuse_core.layout import load_store
    from storefuse_core.track import ShopperTracker
    if mode == "native-baseline":
        ShopperTracker = baseline_tracker(baseline)  # noqa: N806
    scene = meta["scenes"][str(n)]
    stamps = [int(s) for s in d[f"n{n}_stamps"]]
    inputs = storefuse_inputs(d, n, "merged" if mode == "merged" else "native", scene["cameras"])
    gates = [GateEvent(g["stamp_ns"], g["gate_id"], ENTRY, g["session_id"], "", g["party"], g["staff"])
             for g in scene["gate_entries"]] if mode == "native+gates" else []
    tracker = ShopperTracker(load_store("grocery"))
    frames, ms = [], []
    prof = cProfile.Profile() if profile_steps else None
    gi = 0
    for k, (stamp, cams) in enumerate(zip(stamps, inputs)):
        while gi < len(gates) and gates[gi].stamp_ns <= stamp:
            tracker.on_gate(gates[gi])
            gi += 1
        timed = k >= warmup_steps
        profiled = prof is not None and timed and k < warmup_steps + profile_steps
        if profiled:
            prof.enable()
        t0 = time.perf_counter()
        for _, dets in cams:
            tracker.on_detections(stamp, dets)
        if mode == "native+gates":
            snap = [(getattr(t, "identity", "") or t.session_id or t.track_id, float(t.x[0]), float(t.x[1]))
                    for t in tracker.confirmed()]
        else:
            snap = [(t.track_id, float(t.x[0]), float(t.x[1])) for t in tracker.confirmed()]
        dt = (time.perf_counter() - t0) * 1e3
        if profiled:
            prof.disable()
        if timed:
            ms.append(dt)
            frames.append((stamp, snap))
    extra = {"reidentified": tracker.reidentified,
             "sessions_bound": len({t.session_id for t in tracker.tracks + getattr(tracker, "retired", [])
                                    if t.session_id})} if gates else {}
    return frames, ms, prof, extra


# ---- scoring -------------------------------------------------------------------------------------
def summarise(name: str, mode: str, n: int, frames, ms, meta: dict, calls_per_step: int) -> dict:
    from storefuse_core.evaluation import tracking_metrics
    scene = meta["scenes"][str(n)]
    gt = {"trajectories": scene["trajectories"]}
    m = tracking_metrics(gt, frames)
    m |= error_counts(gt, frames)
    ms_arr = np.array(ms)
    ids = {t[0] for _, snap in frames for t in snap}
    return {"tracker": name, "input": mode, "scene": n, "inside_mean": scene["inside_mean"],
            "steps": len(ms), "ms_per_step_median": round(float(np.median(ms_arr)), 3),
            "ms_per_step_p95": round(float(np.percentile(ms_arr, 95)), 3),
            "ms_per_step_mean": round(float(ms_arr.mean()), 3), "calls_per_step": calls_per_step,
            "idf1": m["idf1"], "mota": m["mota"], "id_switches": m["num_switches"],
            "false_positives": m["num_false_positives"], "misses": m["num_misses"], "track_ids": len(ids),
            "mean_tracks_reported": round(float(np.mean([len(s) for _, s in frames])), 1)}


def error_counts(gt: dict, frames, max_dist_m: float = 1.0) -> dict:
    """Switches, false positives and misses: what IDF1 and MOTA are made of (same matching as
    tracking_metrics, which returns only the two ratios)."""
    import motmetrics as mm
    acc = mm.MOTAccumulator(auto_id=True)
    trajs = {k: np.array(v, dtype=float) for k, v in gt["trajectories"].items()}
    numbers: dict[str, int] = {}
    for stamp, tracks in frames:
        ids, pts = [], []
        for sid, tr in trajs.items():
            if tr[0, 0] <= stamp <= tr[-1, 0]:
                ids.append(numbers.setdefault("gt:" + sid, len(numbers) + 1))
                pts.append([np.interp(stamp, tr[:, 0], tr[:, 1]), np.interp(stamp, tr[:, 0], tr[:, 2])])
        hyp = [numbers.setdefault("track:" + t[0], len(numbers) + 1) for t in tracks]
        acc.update(ids, hyp, mm.distances.norm2squared_matrix(np.array(pts).reshape(-1, 2),
                                                              np.array([t[1:] for t in tracks]).reshape(-1, 2),
                                                              max_d2=max_dist_m ** 2))
    keys = ["num_switches", "num_false_positives", "num_misses"]
    row = mm.metrics.create().compute(acc, metrics=keys, name="run")
    return {k: int(row[k].iloc[0]) for k in keys}


def peer_frames(res: dict, key: str, stamps: list[int], warmup_steps: int):
    step, ids, xs, ys = res[key + "step"], res[key + "id"], res[key + "x"], res[key + "y"]
    bounds = np.searchsorted(step, np.arange(len(stamps) + 1))
    frames = []
    for k in range(warmup_steps, len(stamps)):
        r = range(bounds[k], bounds[k + 1])
        frames.append((stamps[k], [(str(int(ids[i])), float(xs[i]), float(ys[i])) for i in r]))
    return frames, list(res[key + "ms"][warmup_steps:])


def same_frames(a, b) -> bool:
    """Same stamps, same track ids, positions equal to 1e-9 m."""
    if a is None or len(a) != len(b):
        return False
    for (sa, ta), (sb, tb) in zip(a, b):
        if sa != sb or [t[0] for t in ta] != [t[0] for t in tb]:
            return False
        if ta and not np.allclose([t[1:] for t in ta], [t[1:] for t in tb], rtol=0, atol=1e-9):
            return False
    return True


def profile_text(prof: cProfile.Profile, n_lines: int = 25) -> tuple[str, list[dict]]:
    buf = io.StringIO()
    st = pstats.Stats(prof, stream=buf).sort_stats("tottime")
    st.print_stats(n_lines)
    total = sum(v[2] for v in st.stats.values())
    top = sorted(st.stats.items(), key=lambda kv: -kv[1][2])[:n_lines]
    rows = [{"function": f"{Path(f).name}:{line}({fn})", "calls": nc, "tottime_s": round(tt, 3),
             "cumtime_s": round(ct, 3), "share_of_total": round(tt / total, 3)}
            for (f, line, fn), (cc, nc, tt, ct, _) in top]
    return buf.getvalue(), rows


def git_state() -> dict:
    def out(*args):
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""
    track = ROOT / "packages" / "storefuse_core" / "storefuse_core" / "track.py"
    return {"commit": out("rev-parse", "HEAD"), "track_py_modified": bool(out("status", "--porcelain", str(track))),
            "track_py_sha256": hashlib.sha256(track.read_bytes()).hexdigest()[:16]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenes", nargs="*", type=int, default=[10, 50, 100], choices=sorted(SCENES))
    ap.add_argument("--window-s", type=float, default=30.0)
    ap.add_argument("--warmup-s", type=float, default=5.0)
    ap.add_argument("--regen", action="store_true", help="redraw the detection streams")
    ap.add_argument("--profile", action="store_true", help="cProfile storefuse (native) on the largest scene")
    ap.add_argument("--profile-steps", type=int, default=100, help="... over this many steps after the warm-up")
    ap.add_argument("--baseline", help="also time this track.py's ShopperTracker (mode native-baseline)")
    ap.add_argument("--only-storefuse", action="store_true", help="skip the peers (and their venv)")
    ap.add_argument("--out", default=str(OUT / "tracker_peers.json"))
    args = ap.parse_args()
    wall0 = time.perf_counter()
    streams, meta = load_or_make_streams(sorted(args.scenes), args.window_s, args.warmup_s, args.regen)
    d = dict(np.load(streams))
    warmup_steps = int(round(args.warmup_s * 10))
    res: dict = {}
    if not args.only_storefuse:
        peer_py = ensure_peer_venv()
        peer_out = OUT / "tracker_peers_tracks.npz"
        subprocess.run([str(peer_py), str(ROOT / "bench" / "_peers_run.py"), str(streams), str(peer_out)],
                       check=True)
        res = dict(np.load(peer_out))
    modes = STOREFUSE_MODES + (("native-baseline",) if args.baseline else ())
    results, profile_rows = [], []
    for n in sorted(args.scenes):
        stamps = [int(s) for s in d[f"n{n}_stamps"]]
        n_cams = meta["scenes"][str(n)]["cameras"]
        native = None
        for mode in modes:
            prof_this = args.profile and n == max(args.scenes) and mode == "native"
            frames, ms, _, extra = run_storefuse(d, meta, n, mode, warmup_steps, baseline=args.baseline)
            r = summarise("storefuse", mode, n, frames, ms, meta, 1 if mode == "merged" else n_cams) | extra
            if mode == "native":
                native = frames
            elif mode == "native-baseline":
                r["same_tracks_as_native"] = same_frames(native, frames)
            print(json.dumps(r), flush=True)
            results.append(r)
            if prof_this:
                _, _, prof, _ = run_storefuse(d, meta, n, mode, warmup_steps, profile_steps=args.profile_steps)
                text, profile_rows = profile_text(prof)
                (OUT / "tracker_peers_profile.txt").write_text(text)
        for mode in PEER_MODES if res else ():
            for name in ("norfair", "motpy"):
                frames, ms = peer_frames(res, f"{name}_{mode}_n{n}_", stamps, warmup_steps)
                r = summarise(name, mode, n, frames, ms, meta, 1)
                print(json.dumps(r), flush=True)
                results.append(r)
    scenes = {k: {kk: vv for kk, vv in v.items() if kk not in ("trajectories", "gate_entries", "camera_ids")}
              | {"gate_entries": len(v["gate_entries"]), "people": len(v["trajectories"])}
              for k, v in meta["scenes"].items()}
    load1, load5, _ = os.getloadavg()
    doc = {"command": "python bench/tracker_peers.py " + " ".join(sys.argv[1:]),
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                       "loadavg_1m_at_end": round(load1, 2), "loadavg_5m_at_end": round(load5, 2),
                       "note": "measured while other work shared the 2 cores"},
           "versions": {"peer_numpy": str(res.get("numpy", "")), "numpy": np.__version__, "norfair": "2.3.0",
                        "motpy": "0.0.10"},
           "git": git_state(), "baseline": args.baseline and {
               "path": args.baseline, "sha256": hashlib.sha256(Path(args.baseline).read_bytes()).hexdigest()[:16]},
           "window_s": args.window_s, "warmup_s": args.warmup_s, "seed": SEED,
           "merge_radius_m": MERGE_RADIUS_M, "scenes": scenes, "results": results,
           "storefuse_profile_top": profile_rows, "wall_s": round(time.perf_counter() - wall0, 1)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=1))
    print(f"wrote {args.out}")
    print("| scene | tracker (input) | ms/step median | p95 | IDF1 | MOTA | id switches | false pos. | misses | ids |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| ~{r['scene']} | {r['tracker']} ({r['input']}) | {r['ms_per_step_median']:.1f} | "
              f"{r['ms_per_step_p95']:.1f} | {r['idf1']:.3f} | {r['mota']:.3f} | {r['id_switches']} | "
              f"{r['false_positives']} | {r['misses']} | {r['track_ids']} |")


if __name__ == "__main__":
    main()
