"""Live player throughput at an infinite rate: messages/s and MB/s that the player reads from the bag
and publishes (raw CDR; first to last message) to a subscriber in another process, and how many that
subscriber (rclpy, raw, reliable keep-last 1000) received. Then, per rate factor, whether a fresh
receipt node fed by the player publishes the offline replay's receipts (the first bag). Also the
read floor: the playback schedule alone, no DDS. Writes JSON (out/bench/player_throughput.json).

    . scripts/env.sh && python bench/player_throughput.py [BAG ...] [--sim SCENARIO] [--receipt-rates 4,16,48]

Default bag: bags/minimart_two_shoppers. --sim generates a `storefuse sim` bag of SCENARIO first
(scenarios/minimart_day.yaml: about 70 s) and measures it too.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def subscriber(topic_types: list[str]) -> None:
    """Child process: count raw messages and bytes on every topic until SIGINT, then print JSON."""
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

    from storefuse_nodes.msgtypes import message_class
    rclpy.init()
    node = rclpy.create_node("player_bench_sink")
    seen = {"messages": 0, "bytes": 0, "first": None, "last": None}

    def on(data: bytes) -> None:
        now = time.monotonic()
        seen["first"] = seen["first"] or now
        seen["last"] = now
        seen["messages"] += 1
        seen["bytes"] += len(data)
    qos = QoSProfile(depth=1000, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)
    for spec in topic_types:
        topic, msgtype = spec.split("=", 1)
        node.create_subscription(message_class(msgtype), topic, on, qos, raw=True)
    print("ready", flush=True)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    span = (seen["last"] - seen["first"]) if seen["first"] else 0.0
    print(json.dumps({"messages": seen["messages"], "bytes": seen["bytes"], "span_s": round(span, 3)}), flush=True)


def read_floor(bag: Path) -> dict:
    from storefuse_core.playback import open_playback
    pb, _ = open_playback(bag, rate=math.inf)
    pb.schedule.peek()                      # open the bag first, as the player does while it waits
    pb.start()
    start = time.perf_counter()
    n = size = 0
    while not pb.finished:
        for item in pb.due():
            n += 1
            size += len(item.raw)
    wall = time.perf_counter() - start
    return {"messages": n, "mb": round(size / 1e6, 2), "wall_s": round(wall, 3), "msgs_per_s": round(n / wall),
            "mb_per_s": round(size / 1e6 / wall, 1)}


def live(bag: Path, domain: int) -> dict:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from storefuse_core.playback import open_playback
    from storefuse_nodes.player import PlayerNode
    from storefuse_tools.paths import ros_env
    env = ros_env(domain)
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE",
                                            "FASTDDS_DEFAULT_PROFILES_FILE") if k in env})
    _, played = open_playback(bag)
    specs = [f"{t.name}={t.msgtype}" for t in played]
    sink = subprocess.Popen([sys.executable, __file__, "--subscriber", *specs], env=env, stdout=subprocess.PIPE,
                            text=True, start_new_session=True)
    assert sink.stdout.readline().strip() == "ready"
    rclpy.init(args=["player_bench", "--ros-args", "-p", f"bag:={bag}", "-p", "rate:=inf", "-p", "delay_s:=0.5",
                     "-p", "linger_s:=0.0", "-p", "wait_for:=[" + ",".join(t.name for t in played) + "]"])
    node = PlayerNode()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    cpu0 = time.process_time()
    try:
        code = node.play(executor)
        cpu = time.process_time() - cpu0
        published, size, wall, failed = node.playback.published, node.bytes, node.wall_s, node.failed
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        os.killpg(sink.pid, signal.SIGINT)
        out, _ = sink.communicate(timeout=30)
    got = json.loads(out.strip().splitlines()[-1])
    assert code == 0
    return {"published": published, "mb": round(size / 1e6, 2), "wall_s": round(wall, 3),
            "msgs_per_s": round(published / wall), "mb_per_s": round(size / 1e6 / wall, 1),
            "player_cpu_s": round(cpu, 2), "publish_failed": sum(failed.values()), "received": got["messages"],
            "received_span_s": got["span_s"]}


def receipt_replay(bag: Path, rate: float, domain: int) -> dict:
    """A fresh receipt node (own process, sim time, the bag's layout) fed by the player at `rate`:
    does it publish the offline replay's final receipts? Past some rate it falls behind and drops."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from storefuse_core import topics
    from storefuse_core.convert import receipt_from_msg
    from storefuse_core.playback import save_layout
    from storefuse_core.replay import replay_bag
    from storefuse_interfaces.msg import Receipt
    from storefuse_nodes.common import EVENTS_QOS
    from storefuse_tools.paths import ros_env
    want = replay_bag(bag).finals_json()
    env = ros_env(domain)
    tmp = Path(tempfile.mkdtemp(prefix="sfplay-receipt-"))
    lib = ROOT / "ros2_ws" / "install" / "storefuse_nodes" / "lib" / "storefuse_nodes"
    finals: dict[str, dict] = {}
    rclpy.init()
    node = rclpy.create_node("player_bench_receipts")
    sub = node.create_subscription(Receipt, topics.RECEIPTS_FINAL,
                                   lambda m: finals.__setitem__(m.session_id, receipt_from_msg(m).as_json()),
                                   EVENTS_QOS)
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    log = open(tmp / "log.txt", "w")
    receipt = subprocess.Popen([str(lib / "receipt"), "--ros-args", "-r", "__ns:=/store", "-p", "use_sim_time:=true",
                                "-p", f"store:={save_layout(bag, tmp / 'layout.yaml')}",
                                "-p", f"ledger:={tmp / 'ledger.sqlite'}"], env=env, stdout=log, stderr=log,
                               start_new_session=True)
    try:
        while sub.get_publisher_count() == 0:
            ex.spin_once(timeout_sec=0.05)
        start = time.monotonic()
        player = subprocess.Popen([str(lib / "player"), "--ros-args", "-p", f"bag:={bag}", "-p", f"rate:={rate}",
                                   "-p", "wait_for:=[receipt]"], env=env, stdout=log, stderr=log,
                                  start_new_session=True)
        ended = None
        while True:
            if ended is None and player.poll() is not None:
                ended = time.monotonic()                     # the last final may still be on its way
            if ended is not None and (len(finals) >= len(want) or time.monotonic() - ended > 5.0):
                break
            ex.spin_once(timeout_sec=0.05)
        wall = ended - start
    finally:
        os.killpg(receipt.pid, signal.SIGINT)
        receipt.wait(timeout=30)
        log.close()
        node.destroy_node()
        rclpy.try_shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    got = sorted(finals.values(), key=lambda r: (r["final_stamp_ns"], r["session_id"]))
    return {"rate": rate, "wall_s": round(wall, 1), "finals": len(got), "expected": len(want), "identical": got == want}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("bags", nargs="*", default=[str(ROOT / "bags" / "minimart_two_shoppers")])
    ap.add_argument("--sim", help="also generate a `storefuse sim` bag of this scenario and measure it")
    ap.add_argument("--domain", type=int, default=int(os.environ.get("ROS_DOMAIN_ID") or 77))
    ap.add_argument("--out", default=str(ROOT / "out" / "bench" / "player_throughput.json"))
    ap.add_argument("--receipt-rates", default="4,16,48",
                    help="rates at which to feed a fresh receipt node from the first bag ('' to skip)")
    ap.add_argument("--subscriber", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.subscriber is not None:
        subscriber(args.subscriber)
        return
    bags = [Path(b) for b in args.bags]
    tmp = None
    if args.sim:
        from storefuse_core.simulation.offline import run_offline
        from storefuse_core.simulation.scenario import load_scenario
        tmp = Path(tempfile.mkdtemp(prefix="sfplay-"))
        run_offline(load_scenario(args.sim), tmp / "sim")
        bags.append(tmp / "sim" / "bag")
    results = []
    try:
        for bag in bags:
            r = {"bag": str(bag if args.sim is None or bag.parent.parent != tmp else Path(args.sim).name + " (sim)"),
                 "bag_mb": round(sum(f.stat().st_size for f in bag.iterdir()) / 1e6, 1),
                 "read_floor": read_floor(bag), "live": live(bag, args.domain)}
            print(json.dumps(r), flush=True)
            results.append(r)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    receipts = []
    for rate in [float(r) for r in args.receipt_rates.split(",") if r.strip()]:
        receipts.append(receipt_replay(bags[0], rate, args.domain))
        print(json.dumps(receipts[-1]), flush=True)
    doc = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}, "results": results,
           "receipt_replay": {"bag": str(bags[0]), "runs": receipts}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
