"""The bags under bags/ replay offline to the receipts recorded live, and to the ground truth."""
from __future__ import annotations

import json
import subprocess

import pytest

from storefuse_core.bag import read_bag
from storefuse_core.evaluation import score
from storefuse_core.replay import replay_bag

from sftest import ROOT

BAGS = sorted(p for p in (ROOT / "bags").iterdir() if (p / "metadata.yaml").is_file())


def test_there_is_a_committed_bag():
    assert BAGS, "bags/ must hold at least one rosbag2 folder (make bags)"


@pytest.mark.parametrize("bag", BAGS, ids=[b.name for b in BAGS])
def test_offline_replay_equals_the_live_receipts_in_the_bag(bag):
    result = replay_bag(bag)
    recorded = [r.as_json() for r in result.recorded_finals]
    assert recorded, "the bag must carry the live run's final receipts"
    assert result.finals_json() == recorded
    gt_file = bag.parent / f"{bag.name}.ground_truth.json"
    if gt_file.is_file():
        metrics = score(json.loads(gt_file.read_text()), result.finals_json())
        assert metrics["exact_receipts"] == metrics["visits"] > 0


@pytest.mark.parametrize("bag", BAGS, ids=[b.name for b in BAGS])
def test_replay_command_is_byte_identical_twice(bag):
    outs = [subprocess.run(["storefuse", "replay", str(bag), "--json"], capture_output=True, text=True, check=True,
                           timeout=300).stdout.strip().splitlines()[-1] for _ in range(2)]
    assert outs[0] == outs[1]
    finals = json.loads(outs[0])
    assert [(r["final_stamp_ns"], r["session_id"]) for r in finals] == sorted(
        (r["final_stamp_ns"], r["session_id"]) for r in finals)
    for r in finals:
        assert {"session_id", "status", "total", "lines"} <= set(r)
        for line in r["lines"]:
            assert {"sku", "name", "qty", "unit_price", "confidence"} <= set(line)


@pytest.mark.parametrize("bag", BAGS, ids=[b.name for b in BAGS])
def test_truncated_copy_fails_with_one_clear_message(bag, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "metadata.yaml").write_text((bag / "metadata.yaml").read_text())
    data = (bag / "bag.mcap").read_bytes()
    (broken / "bag.mcap").write_bytes(data[: len(data) // 3])
    proc = subprocess.run(["storefuse", "replay", str(broken), "--json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "cannot read bag" in proc.stderr and "Traceback" not in proc.stderr


def test_reader_yields_in_log_time_order():
    stamps = [m.log_ns for m in read_bag(BAGS[0], decode=False)]
    assert stamps == sorted(stamps) and len(stamps) > 1000


@pytest.mark.parametrize("bag", BAGS, ids=[b.name for b in BAGS])
def test_live_latencies_come_from_the_recorded_run(bag):
    from storefuse_core.evaluation import live_latencies
    lat = live_latencies(bag)
    assert 0 < lat["latency_live_p50_ms"] <= lat["latency_live_p99_ms"] < 5000
    assert 0 < lat["latency_final_p50_ms"] <= lat["latency_final_p99_ms"] < 5000
