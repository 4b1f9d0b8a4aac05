"""Recorder throughput at grocery-peak rates, and what MCAP zstd compression costs and saves.

Part 1 (live): the recorder node runs as its own process; `storefuse_tools.loadgen`, another
process, publishes the grocery store's live traffic (56 scale boards x 10 PlateWeights blocks/s of
21 plates x 6 samples, their watermarks, 50 cameras x 10 Hz PersonDetections of 4 people, gate and
shelf events, receipts) for --seconds. Reported: messages/s and MB/s recorded, the recorder's CPU
(fraction of one core, from /proc, publishing start until it is idle again), and dropped messages
counted two ways: per stream from the sequence numbers the generator puts in every header stamp
(what the bag lacks), and the recorder's own count (gaps in DDS publication sequence numbers).

Part 2 (bags): existing simulator bags rewritten with and without zstd chunk compression: size on
disk, CPU to write, time to read back (raw, and raw + decode).

    . scripts/env.sh && ROS_DOMAIN_ID=75 python bench/recorder_throughput.py [--seconds 30]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BAGS = [ROOT / "out/bench/bags/minimart_day/bag", ROOT / "out/bench/bags/grocery_peak_150/bag"]


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def recorder_exe() -> Path:
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        exe = Path(prefix) / "lib" / "storefuse_nodes" / "recorder"
        if prefix and exe.is_file():
            return exe
    sys.exit("recorder node not found: . scripts/env.sh first")


def live_run(seconds: float, compression: str, split_mb: float, env: dict, work: Path, scale: float = 1.0) -> dict:
    from storefuse_core.bag import bag_files, custom_data
    from storefuse_tools.loadgen import count_bag
    tag = f"{compression}-x{scale:g}"
    bag, counts = work / f"bag-{tag}", work / f"published-{tag}.json"
    log = open(work / f"recorder-{tag}.log", "w")
    rec = subprocess.Popen([str(recorder_exe()), "--ros-args", "-p", f"out:={bag}", "-p", "store:=grocery",
                            "-p", f"compression:={compression}", "-p", f"split_mb:={split_mb}"],
                           env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    gen = subprocess.Popen([sys.executable, "-m", "storefuse_tools.loadgen", "--store", "grocery",
                            "--seconds", str(seconds), "--scale", str(scale), "--json", str(counts)],
                           env=env, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        for line in gen.stdout:              # the generator has matched the recorder on every topic
            if line.startswith("publishing"):
                break
        cpu0, t0 = proc_cpu_s(rec.pid), time.monotonic()
        gen_result = json.loads(gen.stdout.read().strip().splitlines()[-1])
        if gen.wait() != 0:
            raise RuntimeError("load generator failed")
        # the recorder is done when it stops using CPU (everything acknowledged has been taken)
        prev = proc_cpu_s(rec.pid)
        while True:
            time.sleep(1.0)
            cur = proc_cpu_s(rec.pid)
            if cur - prev < 0.02:
                break
            prev = cur
        cpu1, t1 = cur, time.monotonic() - 1.0
        os.killpg(rec.pid, signal.SIGINT)
        rec.wait(timeout=60)
    finally:
        for p in (gen, rec):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
        log.close()
    published = json.loads(counts.read_text())
    per_stream = count_bag(bag, published)
    summary = json.loads(custom_data(bag)["storefuse.recorder"])
    files = bag_files(bag)
    sent = sum(v["sent"] for v in per_stream.values())
    window = published["seconds"]
    groups: dict[str, dict] = {}
    for name, v in per_stream.items():
        topic = published["streams"][name]["topic"]
        g = groups.setdefault(topic.split("/")[2], {"sent": 0, "missing": 0})
        g["sent"] += v["sent"]
        g["missing"] += v["missing"]
    return {
        "compression": compression, "rate_scale": scale, "split_mb": split_mb, "publish_s": window,
        "published": sent, "recorded": summary["messages"],
        "missing_by_sequence": sum(v["missing"] for v in per_stream.values()),
        "duplicates": sum(v["duplicates"] for v in per_stream.values()),
        "recorder_dropped": summary["dropped"], "recorder_summary": {k: v for k, v in summary.items() if k != "topics"},
        "by_group": groups,
        "msgs_per_s": round(summary["messages"] / window, 1),
        "payload_mb_per_s": round(summary["bytes"] / 1e6 / window, 3),
        "recorder_cpu_s": round(cpu1 - cpu0, 2), "recorder_cpu_window_s": round(t1 - t0, 2),
        "recorder_core_fraction": round((cpu1 - cpu0) / window, 3),
        "bag_files": len(files), "bag_mb": round(sum(f.stat().st_size for f in files) / 1e6, 2),
        "generator_max_late_s": gen_result["max_late_s"], "unacked_topics": gen_result["unacked_topics"],
    }


def compression_study(src: Path, work: Path) -> dict:
    """The same messages written uncompressed and zstd-compressed: size, write CPU, read time."""
    from rosbags.highlevel import AnyReader

    from storefuse_core.bag import BagWriter, bag_files, custom_data, make_typestore, read_bag
    typestore = make_typestore()
    with AnyReader([src], default_typestore=typestore) as reader:
        topics = [(c.topic, c.msgtype, c.ext.offered_qos_profiles) for c in reader.connections]
    messages = [(m.topic, m.log_ns, m.raw) for m in read_bag(src, decode=False)]
    out = {"bag": str(src.relative_to(ROOT)), "messages": len(messages),
           "payload_mb": round(sum(len(r) for _, _, r in messages) / 1e6, 1)}
    for comp in ("", "zstd"):
        dst = work / f"{src.parent.name}-{comp or 'none'}"
        cpu = time.process_time()
        with BagWriter(dst, custom_data(src), typestore, compression=comp) as bag:
            for topic, msgtype, qos in topics:
                bag.add_topic(topic, msgtype, qos)
            for topic, log_ns, raw in messages:
                bag.write_raw(topic, log_ns, raw)
        write_cpu = time.process_time() - cpu
        size = sum(f.stat().st_size for f in bag_files(dst))
        cpu = time.process_time()
        n = sum(1 for _ in read_bag(dst, decode=False))
        read_raw = time.process_time() - cpu
        cpu = time.process_time()
        sum(1 for _ in read_bag(dst))
        read_decode = time.process_time() - cpu
        assert n == len(messages)
        out[comp or "none"] = {"mb": round(size / 1e6, 1), "write_cpu_s": round(write_cpu, 2),
                               "read_raw_cpu_s": round(read_raw, 2), "read_decode_cpu_s": round(read_decode, 2)}
        for f in bag_files(dst):
            f.unlink()
    out["ratio"] = round(out["none"]["mb"] / out["zstd"]["mb"], 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--compression", nargs="*", default=["zstd", "none"])
    ap.add_argument("--scales", nargs="*", type=float, default=[2.0, 4.0],
                    help="also run zstd at these multiples of the grocery-peak rates (headroom)")
    ap.add_argument("--split-mb", type=float, default=0.0)
    ap.add_argument("--bags", nargs="*", type=Path, default=[b for b in BAGS if b.is_dir()])
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "bench" / "recorder_throughput.json")
    args = ap.parse_args()
    from storefuse_tools.paths import ros_env
    env = ros_env(int(os.environ.get("ROS_DOMAIN_ID", "75")))
    results = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "load_before": os.getloadavg()}, "live": [], "bags": []}
    with tempfile.TemporaryDirectory(prefix="sfrec-") as tmp:
        work = Path(tmp)
        env["ROS_LOG_DIR"] = str(work / "roslog")
        runs = [(comp, 1.0) for comp in args.compression] + [("zstd", x) for x in args.scales]
        for comp, scale in runs:
            r = live_run(args.seconds, comp, args.split_mb, env, work, scale)
            print(json.dumps({k: v for k, v in r.items() if k != "recorder_summary"}), flush=True)
            results["live"].append(r)
        for bag in args.bags:
            r = compression_study(bag.resolve(), work)
            print(json.dumps(r), flush=True)
            results["bags"].append(r)
    results["machine"]["load_after"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
