"""The live player: a recorded bag played into a fresh receipt node (its own process, use_sim_time)
gives the receipts of the live run and of the offline replay; /clock, pause and step, kept QoS."""
from __future__ import annotations

import fcntl
import itertools
import json
import os
import pty
import select
import signal
import subprocess
import termios
import time

import pytest

from storefuse_core import topics
from storefuse_core.bag import read_bag
from storefuse_core.evaluation import score
from storefuse_core.playback import bag_info, save_layout
from storefuse_core.replay import replay_bag

from sftest import ROOT, diagnostics_of, node_exe

pytestmark = pytest.mark.system
BAG = ROOT / "bags" / "minimart_two_shoppers"
LINGER_S = 3.0
_domains = itertools.count()

# Three shoppers inside at once, each at a different gondola (they scan in 4 s apart, so the gate
# camera tells them apart: unambiguous); the live run records this bag.
CONCURRENT = """
store: minimart
seed: 11
shoppers:
  - id: alice
    enter_s: 2.0
    script:
      - pick: {name: "Coca-Cola Classic 12 fl oz Can", qty: 2}
      - pick: {name: "Doritos Nacho Cheese 2.75 oz"}
      - exit: {}
  - id: bob
    enter_s: 6.0
    script:
      - pick: {name: "Gatorade Cool Blue 28 fl oz"}
      - pick: {name: "Sabra Classic Hummus 10 oz"}
      - exit: {}
  - id: carol
    enter_s: 10.0
    script:
      - pick: {name: "Cheerios Cereal 8.9 oz"}
      - pick: {name: "Advil Ibuprofen 24 ct"}
      - exit: {}
"""


@pytest.fixture
def domain_id() -> int:
    """The caller's ROS_DOMAIN_ID when set (sessions running side by side), else one of our own."""
    given = os.environ.get("ROS_DOMAIN_ID")
    return int(given) if given else 100 + (os.getpid() * 7 + next(_domains)) % 100


def by_final_stamp(finals: dict) -> list[dict]:
    return sorted(finals.values(), key=lambda r: (r["final_stamp_ns"], r["session_id"]))


class Listener:
    """Final receipts and /clock as the test client receives them."""

    def __init__(self, client):
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from rosgraph_msgs.msg import Clock

        from storefuse_core.convert import receipt_from_msg
        from storefuse_interfaces.msg import Receipt
        from storefuse_nodes.common import EVENTS_QOS
        self.finals: dict[str, dict] = {}
        self.final_messages = 0
        self.clocks: list[int] = []

        def on_final(msg):
            self.final_messages += 1
            self.finals[msg.session_id] = receipt_from_msg(msg).as_json()
        self.final_sub = client.node.create_subscription(Receipt, topics.RECEIPTS_FINAL, on_final, EVENTS_QOS)
        client.node.create_subscription(
            Clock, "/clock", lambda m: self.clocks.append(m.clock.sec * 1_000_000_000 + m.clock.nanosec),
            QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE))


def start_receipt_node(bag, processes, tmp_path):
    """A receipt node as on store hardware, but on sim time, with a fresh ledger and the layout the
    bag was recorded with (as the offline replay uses)."""
    layout = save_layout(bag, tmp_path / "layout.yaml")
    return processes.start([node_exe("storefuse_nodes", "receipt"), "--ros-args", "-r", "__ns:=/store",
                            "-p", f"store:={layout}", "-p", f"ledger:={tmp_path / 'ledger.sqlite'}",
                            "-p", "use_sim_time:=true"], tmp_path / "receipt.log")


def play_into_fresh_receipt_node(bag, player_cmd, processes, client, tmp_path, expected: int):
    """Receipt node (fresh ledger, sim time) up, then the player; returns what the client heard."""
    heard = Listener(client)
    diag = diagnostics_of(client, "storefuse/receipt")
    start_receipt_node(bag, processes, tmp_path)
    client.wait_for(lambda: heard.final_sub.get_publisher_count() > 0, 60, "the receipt node's final receipts")
    player = processes.start(player_cmd, tmp_path / "player.log")
    client.wait_for(lambda: player.poll() is not None and len(heard.finals) >= expected, 180,
                    f"{expected} final receipts and the player's end")
    assert player.returncode == 0, (tmp_path / "player.log").read_text()
    return heard, diag


def played_span(bag) -> tuple[int, int]:
    """Bag start and the log time of the last message the player plays (receipts are not played)."""
    last = max(m.log_ns for m in read_bag(bag, decode=False) if not m.topic.startswith("/store/receipts/"))
    return bag_info(bag).start_ns, last


def test_committed_bag_played_live_gives_the_offline_and_recorded_receipts(processes, ros_client, tmp_path):
    offline = replay_bag(BAG)
    want = offline.finals_json()
    cmd = [node_exe("storefuse_nodes", "player"), "--ros-args", "-p", f"bag:={BAG}", "-p", "rate:=4.0",
           "-p", "wait_for:=[receipt]", "-p", f"linger_s:={LINGER_S}"]
    heard, diag = play_into_fresh_receipt_node(BAG, cmd, processes, ros_client, tmp_path, len(want))
    got = by_final_stamp(heard.finals)
    assert got == want
    assert heard.final_messages == len(want)          # the recorded receipts were not played back too
    assert got == [r.as_json() for r in offline.recorded_finals]          # ... and the live run's own
    gt = json.loads((ROOT / "bags" / "minimart_two_shoppers.ground_truth.json").read_text())
    metrics = score(gt, got)
    assert metrics["exact_receipts"] == metrics["visits"] == 2
    # Inputs were released by the sources' watermarks, none by the bounded wait: the node had bag
    # time before its first input.
    assert diag.get("released_by_timeout") == "0", diag
    # /clock: bag time, never backwards in a pass, from the bag's start to the end of the linger
    start, last = played_span(BAG)
    assert heard.clocks == sorted(heard.clocks)
    assert heard.clocks[0] >= start and heard.clocks[-1] == last + int(LINGER_S * 1e9)
    assert len(set(heard.clocks)) > 100                                   # 26 s at 4x, 100 Hz


@pytest.fixture(scope="module")
def concurrent_live_run(tmp_path_factory):
    from storefuse_tools.live import run_live
    folder = tmp_path_factory.mktemp("concurrent")
    scenario = folder / "three_concurrent_shoppers.yaml"
    scenario.write_text(CONCURRENT)
    given = os.environ.get("ROS_DOMAIN_ID")
    domain = int(given) if given else 210 + os.getpid() % 20
    result = run_live(scenario, folder / "run", rate=3.0, domain_id=domain, timeout_s=240)
    assert not result.timed_out, (folder / "run" / "launch.log").read_text()[-3000:]
    return result


def test_concurrent_shoppers_live_run_live_playback_and_offline_replay_agree(concurrent_live_run, processes,
                                                                             ros_client, tmp_path):
    live = concurrent_live_run
    visits = live.ground_truth["visits"]
    inside_together = max(sum(v["entry_ns"] <= t < v["exit_ns"] for v in visits) for t in
                          [v["entry_ns"] for v in visits])
    assert len(visits) == 3 and inside_together == 3                     # really concurrent
    offline = replay_bag(live.bag).finals_json()
    cmd = ["storefuse", "play", str(live.bag), "--rate", "4", "--wait-for", "receipt", "--linger", str(LINGER_S)]
    heard, _ = play_into_fresh_receipt_node(live.bag, cmd, processes, ros_client, tmp_path, len(live.finals))
    played = by_final_stamp(heard.finals)
    assert played == live.finals == offline
    assert heard.final_messages == len(played)
    # ... and equal to the ground truth: every visit's receipt has exactly what that shopper took
    truth = {v["exit_ns"]: sorted((ln["sku"], ln["qty"]) for ln in v["lines"]) for v in visits}
    got = {r["final_stamp_ns"]: sorted((ln["sku"], ln["qty"]) for ln in r["lines"] if ln["qty"] > 0) for r in played}
    assert sorted(truth.values()) == sorted(got.values())
    for stamp, lines in got.items():
        exit_ns = min(truth, key=lambda t: abs(t - stamp))
        assert abs(exit_ns - stamp) < 1_000_000_000 and truth[exit_ns] == lines
    # every unit in the ground truth is billed exactly once across the receipts
    billed: dict[str, int] = {}
    for r in played:
        for ln in r["lines"]:
            billed[ln["sku"]] = billed.get(ln["sku"], 0) + ln["qty"]
    taken: dict[str, int] = {}
    for v in visits:
        for ln in v["lines"]:
            taken[ln["sku"]] = taken.get(ln["sku"], 0) + ln["qty"]
    assert billed == taken and len(taken) == 6


def test_paused_player_steps_one_message_per_call_and_keeps_latched_topics_latched(processes, ros_client, tmp_path):
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from std_msgs.msg import String
    from std_srvs.srv import SetBool, Trigger

    from storefuse_interfaces.msg import GateEvent
    from storefuse_nodes.common import DURABLE_EVENTS_QOS
    recorded = [m for m in read_bag(BAG, [topics.SHELF_CONFIG, topics.GATE_EVENTS])]
    configs = [m for m in recorded if m.topic == topics.SHELF_CONFIG]
    gates = [m for m in recorded if m.topic == topics.GATE_EVENTS]
    assert len(configs) == 3 and len(gates) == 4 and recorded[:3] == configs
    node = ros_client.node
    heard = Listener(ros_client)
    events = []
    node.create_subscription(GateEvent, topics.GATE_EVENTS, events.append, DURABLE_EVENTS_QOS)
    player = processes.start([node_exe("storefuse_nodes", "player"), "--ros-args", "-p", f"bag:={BAG}",
                              "-p", "paused:=true", "-p", "linger_s:=0.0", "-p", "rate:=10.0", "-p", "delay_s:=0.0",
                              "-p", f"topics:=[{topics.SHELF_CONFIG},{topics.GATE_EVENTS}]"], tmp_path / "player.log")
    step, set_paused = node.create_client(Trigger, "/player/step"), node.create_client(SetBool, "/player/set_paused")

    def call(cli, request):
        ros_client.wait_for(cli.service_is_ready, 60, f"service {cli.srv_name}")
        future = cli.call_async(request)
        ros_client.wait_for(future.done, 30, f"reply from {cli.srv_name}")
        return future.result()

    for _ in range(3):
        reply = call(step, Trigger.Request())
        assert reply.success and reply.message.startswith(topics.SHELF_CONFIG), reply.message
    # A subscriber that joins after the three configs were published still gets all three.
    late = []
    latched = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    node.create_subscription(String, topics.SHELF_CONFIG, late.append, latched)
    ros_client.wait_for(lambda: len(late) == 3, 30, "the latched shelf configs")
    assert sorted(m.data for m in late) == sorted(m.msg.data for m in configs)
    assert events == []                                                   # paused: nothing else went out
    reply = call(step, Trigger.Request())
    assert reply.success and reply.message.startswith(topics.GATE_EVENTS)
    ros_client.wait_for(lambda: len(events) == 1 and heard.clocks and heard.clocks[-1] == gates[0].log_ns, 30,
                        "one gate event, /clock at its log time")
    assert events[0].session_id == gates[0].msg.session_id
    assert events[0].header.stamp.sec == gates[0].msg.header.stamp.sec
    assert call(set_paused, SetBool.Request(data=False)).success
    ros_client.wait_for(lambda: player.poll() is not None, 60, "the player to finish")
    assert player.returncode == 0
    assert [e.session_id for e in events] == [m.msg.session_id for m in gates]
    assert heard.clocks[-1] == gates[-1].log_ns


def test_keys_pause_step_and_resume_in_a_terminal(ros_env, tmp_path):
    """`storefuse play` in a terminal (a pseudo-terminal here): s steps, space resumes."""
    master, slave = pty.openpty()

    def own_terminal():                   # as a shell does: a new session whose controlling tty is the pty
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    proc = subprocess.Popen(["storefuse", "play", str(BAG), "--paused", "--topic", topics.GATE_EVENTS,
                             "--rate", "inf", "--linger", "0", "--delay", "0"],
                            stdin=slave, stdout=slave, stderr=slave, env=ros_env, preexec_fn=own_terminal)
    os.close(slave)
    seen = bytearray()

    def expect(text: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while text.encode() not in seen:
            assert time.monotonic() < deadline, f"no {text!r} in {seen.decode(errors='replace')!r}"
            if select.select([master], [], [], 0.1)[0]:
                try:
                    seen.extend(os.read(master, 4096))
                except OSError:                                           # the child closed the terminal
                    break
    try:
        expect("keys: space")
        first = next(m for m in read_bag(BAG, [topics.GATE_EVENTS], decode=False))
        os.write(master, b"s")
        expect(f"step: {topics.GATE_EVENTS} at {(first.log_ns - bag_info(BAG).start_ns) / 1e9:.3f} s")
        os.write(master, b" ")
        expect("playing at")
        expect("played 4 messages")
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)          # its own session: the whole group goes
            proc.wait()
        os.close(master)


def test_loop_with_start_offset_replays_the_tail_and_clock_is_monotonic_within_each_pass(processes, ros_client,
                                                                                         tmp_path):
    from storefuse_interfaces.msg import Watermark
    from storefuse_nodes.common import EVENTS_QOS
    info = bag_info(BAG)
    start = info.start_ns + 22 * 1_000_000_000
    tail = [m.msg.header.stamp for m in read_bag(BAG, [topics.GATE_WATERMARK]) if m.log_ns >= start]
    heard = Listener(ros_client)
    marks = []
    ros_client.node.create_subscription(Watermark, topics.GATE_WATERMARK, marks.append, EVENTS_QOS)
    player = processes.start([node_exe("storefuse_nodes", "player"), "--ros-args", "-p", f"bag:={BAG}",
                              "-p", "rate:=10.0", "-p", "start_s:=22.0", "-p", "loop:=true", "-p", "delay_s:=0.0",
                              "-p", f"topics:=[{topics.GATE_WATERMARK}]"], tmp_path / "player.log")
    passes = lambda: 1 + sum(b < a for a, b in zip(heard.clocks, heard.clocks[1:]))  # noqa: E731
    ros_client.wait_for(lambda: passes() >= 3 and len(marks) > 2 * len(tail), 60, "three passes of the bag's tail")
    assert player.poll() is None                                          # looping: it does not end by itself
    runs, run = [], [heard.clocks[0]]
    for t in heard.clocks[1:]:
        if t < run[-1]:
            runs.append(run)
            run = []
        run.append(t)
    for r in runs[1:]:                                                    # complete passes
        assert r == sorted(r) and start <= r[0] and r[-1] <= info.end_ns
    # the watermarks, split into passes where their stamps go back: every complete pass (not the
    # first, which may start before this subscriber is matched) is exactly the bag's tail
    stamps = [(m.header.stamp.sec, m.header.stamp.nanosec) for m in marks]
    passes_seen, current = [], [stamps[0]]
    for st in stamps[1:]:
        if st < current[-1]:
            passes_seen.append(current)
            current = []
        current.append(st)
    expected = [(m.sec, m.nanosec) for m in tail]
    assert len(tail) > 10 and len(passes_seen) >= 2 and passes_seen[1] == expected
    assert passes_seen[0] == expected[-len(passes_seen[0]):]          # the first pass: a suffix of it
    assert all((m.sec, m.nanosec) >= (tail[0].sec, tail[0].nanosec) for m in (x.header.stamp for x in marks))
