"""Run a scenario on the live graph: every node its own process over DDS, as on store hardware.

Starts sim.launch.yaml through the launch runner, listens for final receipts from this process,
stops the graph once every visit of the ground truth has its final receipt (or on timeout), and
leaves the recorded bag, ledger and logs in the run folder.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from storefuse_tools.launch_runner import LaunchRunner, load_launch
from storefuse_tools.paths import bringup_share, ros_env


@dataclass
class LiveResult:
    finals: list[dict]
    ground_truth: dict
    run_dir: Path
    bag: Path | None
    sim_status: dict = field(default_factory=dict)
    exited: dict = field(default_factory=dict)
    timed_out: bool = False
    restarts: list = field(default_factory=list)
    diagnostics: dict = field(default_factory=dict)     # status name -> its latest key/values


def run_live(scenario: Path, run_dir: Path, rate: float = 1.0, record: bool = True,
             domain_id: int | None = None, timeout_s: float | None = None, echo=None) -> LiveResult:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from std_msgs.msg import String

    from storefuse_core import topics
    from storefuse_core.convert import receipt_from_msg
    from storefuse_core.simulation.scenario import load_scenario
    from storefuse_interfaces.msg import Receipt
    from storefuse_nodes.common import EVENTS_QOS

    scenario = Path(scenario).resolve()
    loaded = load_scenario(scenario)
    kills = sorted((float(f.get("at_s", 0.0)), str(f.get("node", "receipt")))
                   for f in loaded.faults if f["kind"] == "kill_node")
    run_dir = Path(run_dir).resolve()
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    domain = domain_id if domain_id is not None else int(os.environ.get("ROS_DOMAIN_ID", 42))
    env = ros_env(domain)
    env.setdefault("ROS_LOG_DIR", str(run_dir / "log"))
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE",
                                            "FASTDDS_DEFAULT_PROFILES_FILE") if k in env})
    specs = load_launch(bringup_share() / "launch" / "sim.launch.yaml",
                        {"scenario": str(scenario), "run_dir": str(run_dir), "rate": str(rate),
                         "record": "true" if record else "false",
                         "carts": "true" if any(s.cart for s in loaded.shoppers) else "false"})   # localizers
    log = open(run_dir / "launch.log", "w", buffering=1)

    def sink(line: str) -> None:
        log.write(line + "\n")
        if echo:
            echo(line)

    finals: dict[str, dict] = {}
    status: dict = {}
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("storefuse_live_client", context=context)
    node.create_subscription(Receipt, topics.RECEIPTS_FINAL,
                             lambda m: finals.__setitem__(m.session_id, receipt_from_msg(m).as_json()), EVENTS_QOS)
    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    node.create_subscription(String, topics.SIM_STATUS, lambda m: status.update(json.loads(m.data)), latched)
    diagnostics: dict[str, dict] = {}

    def on_diagnostics(msg) -> None:
        for st in msg.status:
            level = st.level[0] if isinstance(st.level, (bytes, bytearray)) else int(st.level)    # a byte
            diagnostics[st.name] = {kv.key: kv.value for kv in st.values} | {"_level": level}

    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 50)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    runner = LaunchRunner(sink=sink)
    result = LiveResult([], {}, run_dir, run_dir / "bag" if record else None)
    started_at = None
    try:
        runner.start(specs, env=env)
        gt_path = run_dir / "ground_truth.json"
        deadline = time.monotonic() + (timeout_s or 120.0)
        while time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
            if not result.ground_truth and gt_path.is_file() and status:
                result.ground_truth = json.loads(gt_path.read_text())
                if timeout_s is None:
                    deadline = time.monotonic() + 60.0 + result.ground_truth["duration_s"] / rate
            if status.get("state") == "running" and started_at is None:
                started_at = time.monotonic()
            while kills and started_at is not None and (time.monotonic() - started_at) * rate >= kills[0][0]:
                at_s, name = kills.pop(0)          # fault kill_node: crash it, then start it again
                code = runner.kill(name)
                sink(f"[storefuse] fault kill_node: killed {name} at {at_s:.1f} s (exit {code}); restarting")
                runner.restart(name)
                result.restarts.append(name)
            if len(runner.alive()) < len(specs):
                break                              # a node died: stop and report its exit code
            if status.get("state") == "done" and result.ground_truth and \
                    len(finals) >= len(result.ground_truth["visits"]):
                break
        else:
            result.timed_out = True
    finally:
        result.exited = runner.stop()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
        log.close()
    result.sim_status = dict(status)
    result.diagnostics = dict(diagnostics)
    if not result.ground_truth and gt_path.is_file():
        result.ground_truth = json.loads(gt_path.read_text())
    result.finals = sorted(finals.values(), key=lambda r: (r["final_stamp_ns"], r["session_id"]))
    return result
