"""The command-line contract (DESIGN.md): sim, replay --json, eval; clear errors for bad input."""
from __future__ import annotations

import json
import subprocess

from sftest import ROOT

SCENARIO = ROOT / "scenarios" / "minimart_two_shoppers.yaml"


def run(*args, check=True):
    proc = subprocess.run(["storefuse", *map(str, args)], capture_output=True, text=True, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_sim_then_replay_gives_the_ground_truth(tmp_path):
    run("sim", SCENARIO, "--out", tmp_path / "run")
    assert (tmp_path / "run" / "bag" / "metadata.yaml").is_file()
    gt = json.loads((tmp_path / "run" / "ground_truth.json").read_text())
    assert {"visits", "events", "trajectories"} <= set(gt)
    finals = json.loads(run("replay", tmp_path / "run" / "bag", "--json").stdout.strip().splitlines()[-1])
    assert len(finals) == len(gt["visits"]) == 2
    for visit, receipt in zip(gt["visits"], finals):
        assert sorted((ln["sku"], ln["qty"]) for ln in receipt["lines"]) == \
            sorted((ln["sku"], ln["qty"]) for ln in visit["lines"])


def test_eval_prints_metrics_as_the_last_line():
    metrics = json.loads(run("eval", "--scenario", SCENARIO, "--seeds", "2").stdout.strip().splitlines()[-1])
    for key in ("visits", "exact_receipts", "line_precision", "line_recall", "line_f1", "reviews_per_1000",
                "unreviewed_exact", "latency_live_p50_ms", "latency_live_p99_ms", "latency_final_p50_ms",
                "latency_final_p99_ms", "idf1", "mota"):
        assert key in metrics
    assert metrics["visits"] == 4 and metrics["exact_receipts"] == 4
    assert metrics["latency_live_p50_ms"] is None        # offline: no latencies


def test_bad_scenario_is_one_clear_message(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("store: minimart\nshoppers:\n  - id: a\n    script:\n      - pick: {name: No Such Thing}\n")
    proc = run("sim", bad, "--out", tmp_path / "o", check=False)
    assert proc.returncode == 2
    assert "unknown product 'No Such Thing'" in proc.stderr and "Traceback" not in proc.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("store: minimart\nshoppers: [\n")
    proc = run("sim", broken, "--out", tmp_path / "o2", check=False)
    assert proc.returncode == 2 and "not valid YAML" in proc.stderr


def test_bad_layout_is_one_clear_message(tmp_path):
    layout = (ROOT / "urdf_store" / "minimart" / "layout.yaml").read_text()
    layout = layout.replace("plates: [G1S1P2]", "plates: [G9S1P2]")
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "layout.yaml").write_text(layout.replace("store: minimart", "store: shop"))
    scenario = tmp_path / "s.yaml"
    scenario.write_text("store: shop\nshoppers:\n  - id: a\n    script: [exit: {}]\n")
    proc = subprocess.run(["storefuse", "sim", str(scenario), "--out", str(tmp_path / "o")], capture_output=True,
                          text=True, env={**__import__("os").environ, "STOREFUSE_STORES": str(tmp_path)})
    assert proc.returncode == 2
    assert "unknown plate 'G9S1P2'" in proc.stderr and "Traceback" not in proc.stderr
