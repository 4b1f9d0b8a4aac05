"""Simulation end to end: scenario -> world -> serial frames -> drivers -> bag -> replay -> receipts."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from storefuse_core.bag import read_bag
from storefuse_core.calibration import load_calibration
from storefuse_core.errors import StorefuseError
from storefuse_core.evaluation import score
from storefuse_core.replay import replay_bag
from storefuse_core.scale import ScaleBoard
from storefuse_core.simulation.devices import devices
from storefuse_core.simulation.offline import run_offline
from storefuse_core.simulation.scenario import load_scenario, parse_scenario
from storefuse_core.simulation.world import T0_NS, World, ns


def lines_of(visit):
    return {ln["sku"]: ln["qty"] for ln in visit["lines"]}


def plates_of(event):
    """The plate(s) a true pick/put touched (one id, or a list when a unit straddles two plates)."""
    plates = event.get("plates", event.get("plate"))
    return [plates] if isinstance(plates, str) else list(plates or [])


@pytest.fixture(scope="module")
def two_shoppers(repo_root):
    return load_scenario(repo_root / "scenarios" / "minimart_two_shoppers.yaml")


@pytest.fixture(scope="module")
def calibration(two_shoppers):
    return load_calibration(two_shoppers.store.root / "calibration.yaml")


@pytest.fixture(scope="module")
def offline_run(two_shoppers, tmp_path_factory):
    out = tmp_path_factory.mktemp("two_shoppers")
    gt = run_offline(two_shoppers, out)
    return out, gt


def test_world_ground_truth(two_shoppers, calibration):
    gt = World(two_shoppers, calibration).ground_truth()
    assert gt["store"] == "minimart" and gt["seed"] == 7 and gt["t0_ns"] == T0_NS
    visits = {v["visit_id"]: v for v in gt["visits"]}
    assert list(visits) == ["alice", "bob"]                       # ordered by exit
    assert lines_of(visits["alice"]) == {"MM-0001": 1, "MM-0006": 1, "MM-0018": 1}
    assert lines_of(visits["bob"]) == {"MM-0028": 1, "MM-0009": 1, "MM-0029": 1}
    assert visits["alice"]["entry_ns"] == ns(2.0) and visits["bob"]["entry_ns"] == ns(42.0)
    assert visits["alice"]["entry_ns"] < visits["alice"]["exit_ns"] < visits["bob"]["entry_ns"]
    kinds = [(e["shopper"], e["kind"], e["sku"]) for e in gt["events"]]
    assert kinds.count(("alice", "pick", "MM-0001")) == 2
    assert kinds.count(("alice", "put", "MM-0001")) == 1
    assert len([k for k in kinds if k[0] == "bob"]) == 3
    assert [e["t_ns"] for e in gt["events"]] == sorted(e["t_ns"] for e in gt["events"])
    shelf_events = [e for e in gt["events"] if e["kind"] in ("pick", "put")]
    assert all(plates_of(e) and set(plates_of(e)) <= set(two_shoppers.store.plates) for e in shelf_events)
    put = next(e for e in shelf_events if e["kind"] == "put")
    first_pick = next(e for e in shelf_events if e["kind"] == "pick")
    assert plates_of(put) == plates_of(first_pick)                # put back where it came from
    assert set(gt["trajectories"]) == {"alice", "bob"}
    assert gt["duration_s"] > (visits["bob"]["exit_ns"] - T0_NS) / 1e9


def test_world_is_deterministic(two_shoppers, calibration):
    a = World(two_shoppers, calibration).ground_truth()
    b = World(two_shoppers, calibration).ground_truth()
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_offline_run_writes_bag_and_ground_truth(offline_run):
    out, gt = offline_run
    assert (out / "bag" / "metadata.yaml").is_file()
    assert list((out / "bag").glob("*.mcap"))
    assert json.loads((out / "ground_truth.json").read_text()) == gt


def test_replay_gives_the_true_receipts(offline_run):
    out, gt = offline_run
    result = replay_bag(out / "bag")
    finals = result.finals_json()
    metrics = score(gt, finals)
    assert metrics["visits"] == 2
    assert metrics["exact_receipts"] == metrics["visits"]
    assert metrics["line_f1"] == 1.0 and metrics["unmatched_receipts"] == 0
    assert all(r["status"] == "FINAL" and r["status_reason"] == "exit" for r in finals)
    assert [r["final_stamp_ns"] for r in finals] == [v["exit_ns"] for v in gt["visits"]]
    assert len(result.shelf_events) == 8                         # 7 picks + 1 put, nothing spurious


def test_replaying_twice_gives_identical_json(offline_run):
    out, _ = offline_run
    first = json.dumps(replay_bag(out / "bag").finals_json(), sort_keys=True)
    second = json.dumps(replay_bag(out / "bag").finals_json(), sort_keys=True)
    assert first == second


def test_serial_garbage_still_gives_exact_receipts(repo_root, tmp_path):
    text = (repo_root / "scenarios" / "minimart_two_shoppers.yaml").read_text()
    text += "faults:\n  - {kind: serial_garbage, device: scale_G1, rate: 0.05}\n"
    scenario = parse_scenario(text, "garbage.yaml")
    gt = run_offline(scenario, tmp_path / "run")
    metrics = score(gt, replay_bag(tmp_path / "run" / "bag").finals_json())
    assert metrics["exact_receipts"] == metrics["visits"] == 2


def test_serial_garbage_is_counted_by_the_driver(repo_root):
    text = (repo_root / "scenarios" / "minimart_two_shoppers.yaml").read_text()
    text += "faults:\n  - {kind: serial_garbage, device: scale_G1, rate: 0.05}\n"
    scenario = parse_scenario(text, "garbage.yaml")
    store = scenario.store
    calibration = load_calibration(store.root / "calibration.yaml")
    sims = devices(World(scenario, calibration))
    frames = sims["scale_G1"].frames_until(T0_NS + 20 * 1_000_000_000)
    clean = sims["scale_G2"].frames_until(T0_NS + 20 * 1_000_000_000)
    board = ScaleBoard("scale_G1", store.board_plates("scale_G1"), calibration)
    for _, frame in frames:
        board.feed(frame)
    assert len(frames) == pytest.approx(20 * 60, abs=2)
    assert 0.02 * len(frames) < board.stats.bad_frames < 0.09 * len(frames)
    assert board.stats.frames + board.stats.bad_frames == len(frames)
    assert board.stats.seq_gaps > 0
    other = ScaleBoard("scale_G2", store.board_plates("scale_G2"), calibration)
    for _, frame in clean:
        other.feed(frame)
    assert other.stats.bad_frames == 0 and other.stats.seq_gaps == 0


def test_simulated_plates_read_back_their_initial_load(two_shoppers, calibration):
    world = World(two_shoppers, calibration)
    sim = devices(world)["scale_G3"]
    board = ScaleBoard("scale_G3", sim.plates, calibration, block_samples=60)
    block = None
    for _, frame in sim.frames_until(T0_NS + 1_100_000_000):
        block = board.feed(frame) or block
    expected = np.array([world.initial_load[p] for p in sim.plates])
    np.testing.assert_allclose(block.grams.mean(axis=0), expected, atol=3.0)


@pytest.mark.parametrize("fraction", [0.5, 0.95])
def test_truncated_bag_raises_a_clear_storefuse_error(offline_run, tmp_path, fraction):
    out, _ = offline_run
    bag = tmp_path / "bag"
    shutil.copytree(out / "bag", bag)
    mcap = next(bag.glob("*.mcap"))
    size = os.path.getsize(mcap)
    with open(mcap, "r+b") as f:
        f.truncate(int(size * fraction))
    with pytest.raises(StorefuseError) as info:
        replay_bag(bag)
    assert str(bag) in str(info.value) and "cannot read bag" in str(info.value)


def test_folder_without_metadata_is_not_a_bag(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(StorefuseError, match="not a rosbag2 folder"):
        list(read_bag(tmp_path / "empty"))


def test_a_hand_over_to_another_visit_happens_side_by_side(repo_root, calibration):
    """The giver walks to the receiver (who is simulated first) and keeps beside them while
    handing over: cameras can see it, and the ground truth moves the item to the receiver."""
    scenario = load_scenario(repo_root / "scenarios" / "minimart_groups.yaml")
    gt = World(scenario, calibration).ground_truth()
    hand = next(e for e in gt["events"] if e["kind"] == "hand_over" and e["to"] == "cat")
    trajs = {k: np.array(v, dtype=float) for k, v in gt["trajectories"].items()}

    def at(who, t_ns):
        tr = trajs[who]
        return np.array([np.interp(t_ns, tr[:, 0], tr[:, 1]), np.interp(t_ns, tr[:, 0], tr[:, 2])])
    for dt in (-1.2e9, -0.6e9, 0.0):
        assert np.linalg.norm(at(hand["shopper"], hand["t_ns"] + dt) - at("cat", hand["t_ns"] + dt)) < 0.6
    cat = next(v for v in gt["visits"] if v["visit_id"] == "cat")
    assert hand["sku"] in {ln["sku"] for ln in cat["lines"]}
