"""Offline replay speed: real-time factor and messages/s of `storefuse_core.replay.replay_bag` on
simulated bags at the standard sensor rates (plates 60 Hz in 100 ms blocks, detections 10 Hz per
camera), against the floor of reading and decoding the same bag with `rosbags` alone.

Bags come from `storefuse sim SCENARIO --out out/bench/bags/<name>` and are kept there (generating
the grocery peak takes minutes); --regenerate makes them again. Each replay runs in a fresh
process (no warm caches), best of --repeat by wall time.

    . scripts/env.sh && python bench/replay_speed.py [--profile] [NAME ...]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BAGS = ROOT / "out" / "bench" / "bags"
SCENARIOS = {
    "minimart_day": ROOT / "scenarios" / "minimart_day.yaml",
    # a shorter cut of scenarios/grocery_peak.yaml (150 of its 400 shoppers, same arrival rate)
    "grocery_peak_150": ROOT / "bench" / "scenarios" / "grocery_peak_150.yaml",
}

# Run in a child process: one measurement, printed as JSON on the last line.
REPLAY = """
import json, sys, time, cProfile, pstats, io
t0, c0 = time.perf_counter(), time.process_time()
from storefuse_core.replay import replay_bag
profile = cProfile.Profile() if sys.argv[2] == "1" else None
t1, c1 = time.perf_counter(), time.process_time()
if profile: profile.enable()
result = replay_bag(sys.argv[1])
if profile: profile.disable()
t2, c2 = time.perf_counter(), time.process_time()
out = {"import_s": t1 - t0, "wall_s": t2 - t1, "cpu_s": c2 - c1, "plate_and_gate_messages": result.messages,
       "finals": len(result.finals_json()), "shelf_events": len(result.shelf_events),
       "finals_json": result.finals_json()}
if profile:
    s = io.StringIO()
    pstats.Stats(profile, stream=s).sort_stats("tottime").print_stats(25)
    out["profile_tottime"] = s.getvalue()
    s = io.StringIO()
    pstats.Stats(profile, stream=s).sort_stats("cumulative").print_stats(30)
    out["profile_cumulative"] = s.getvalue()
print(json.dumps(out))
"""

FLOOR = """
import json, sys, time
from pathlib import Path
from rosbags.highlevel import AnyReader
from storefuse_core.bag import make_typestore
t0, c0 = time.perf_counter(), time.process_time()
n = 0
with AnyReader([Path(sys.argv[1])], default_typestore=make_typestore()) as reader:
    for conn, _, raw in reader.messages():
        reader.deserialize(raw, conn.msgtype)
        n += 1
print(json.dumps({"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "messages": n}))
"""


def ensure_bag(name: str, regenerate: bool) -> tuple[Path, dict]:
    out = BAGS / name
    if regenerate and out.exists():
        import shutil
        shutil.rmtree(out)
    if not (out / "bag" / "metadata.yaml").is_file():
        t0 = time.perf_counter()
        subprocess.run(["storefuse", "sim", str(SCENARIOS[name]), "--out", str(out)], check=True)
        (out / "generated.json").write_text(json.dumps({"wall_s": round(time.perf_counter() - t0, 1)}))
    return out / "bag", json.loads((out / "ground_truth.json").read_text())


def child(code: str, *args: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bag_facts(bag: Path) -> dict:
    import yaml

    from storefuse_core import topics
    from storefuse_core.bag import bag_files
    meta = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    counts = {t["topic_metadata"]["name"]: t["message_count"] for t in meta["topics_with_message_count"]}
    cams = sum(n for t, n in counts.items() if t.startswith(f"{topics.NS}/cameras/") and t.endswith("/detections"))
    read = {topics.PLATE_WEIGHTS, topics.GATE_EVENTS, topics.GATE_WATERMARK, topics.RECEIPTS_FINAL,
            topics.SHELF_CONFIG}
    return {"messages": meta["message_count"], "camera_messages": cams,
            "replayed_messages": cams + sum(counts.get(t, 0) for t in read),
            "cameras": sum(1 for t in counts if t.endswith("/detections")),
            "plate_blocks": counts.get(topics.PLATE_WEIGHTS, 0),
            "mb": round(sum(f.stat().st_size for f in bag_files(bag)) / 1e6, 1),
            "compression": "zstd" if _zstd(bag_files(bag)[0]) else "none"}


def _zstd(path: Path) -> bool:
    from mcap.reader import make_reader
    with open(path, "rb") as f:
        return any(c.compression == "zstd" for c in make_reader(f).get_summary().chunk_indexes)


def measure(name: str, repeat: int, profile: bool, regenerate: bool) -> dict:
    bag, gt = ensure_bag(name, regenerate)
    facts = bag_facts(bag)
    runs = [child(REPLAY, str(bag), "0") for _ in range(repeat)]
    best = min(runs, key=lambda r: r["wall_s"])
    assert all(r["finals_json"] == best["finals_json"] for r in runs), "replays of one bag must agree"
    floor = min((child(FLOOR, str(bag)) for _ in range(repeat)), key=lambda r: r["wall_s"])
    sim_s = gt["duration_s"]
    inside = peak = 0
    for _, step in sorted([(v["entry_ns"], 1) for v in gt["visits"]] + [(v["exit_ns"], -1) for v in gt["visits"]]):
        inside += step
        peak = max(peak, inside)
    out = {"bag": name, "scenario": str(SCENARIOS[name].relative_to(ROOT)), "simulated_s": sim_s,
           "visits": len(gt["visits"]), "peak_inside": peak, **facts,
           "replay_wall_s": round(best["wall_s"], 2), "replay_cpu_s": round(best["cpu_s"], 2),
           "replay_wall_all_s": [round(r["wall_s"], 2) for r in runs],
           "import_s": round(best["import_s"], 2),
           "rtf_wall": round(sim_s / best["wall_s"], 1), "rtf_cpu": round(sim_s / best["cpu_s"], 1),
           "msgs_per_s_wall": round(facts["replayed_messages"] / best["wall_s"]),
           "floor_wall_s": round(floor["wall_s"], 2), "floor_cpu_s": round(floor["cpu_s"], 2),
           "floor_messages": floor["messages"], "floor_msgs_per_s": round(floor["messages"] / floor["wall_s"]),
           "replay_over_floor_cpu": round(best["cpu_s"] / floor["cpu_s"], 2),
           "finals": best["finals"], "shelf_events": best["shelf_events"]}
    if profile:
        p = child(REPLAY, str(bag), "1")
        out["profile_tottime"], out["profile_cumulative"] = p["profile_tottime"], p["profile_cumulative"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("bags", nargs="*", default=list(SCENARIOS))
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--profile", action="store_true", help="also one cProfile'd replay per bag (top functions)")
    ap.add_argument("--regenerate", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "bench" / "replay_speed.json")
    args = ap.parse_args()
    doc = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_before": os.getloadavg()},
           "results": []}
    for name in args.bags:
        r = measure(name, args.repeat, args.profile, args.regenerate)
        print(json.dumps({k: v for k, v in r.items() if not k.startswith("profile")}), flush=True)
        doc["results"].append(r)
    doc["machine"]["load_after"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
