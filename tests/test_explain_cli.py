"""`storefuse explain BAG --session ID`: the installed command on the committed bag."""
from __future__ import annotations

import json
import os
import subprocess

from sftest import ROOT

BAG = ROOT / "bags" / "minimart_two_shoppers"


def run(*args):
    env = {**os.environ, "COLUMNS": "200"}      # rich wraps to the terminal; keep each printed line whole
    return subprocess.run(["storefuse", *map(str, args)], capture_output=True, text=True, timeout=600, env=env)


def test_explain_json_and_png_match_the_replay(tmp_path):
    finals = json.loads(run("replay", BAG, "--json").stdout.strip().splitlines()[-1])
    png = tmp_path / "why.png"
    proc = run("explain", BAG, "--session", "de4d", "--json", "--png", png)
    assert proc.returncode == 0, proc.stderr
    x = json.loads(proc.stdout.strip().splitlines()[-1])
    receipt = next(r for r in finals if r["session_id"] == "s-de4dc31b7ef53c71")
    assert x["session"]["session_id"] == "s-de4dc31b7ef53c71" and x["receipt"] == receipt
    assert [ln["sku"] for ln in x["lines"]] == [ln["sku"] for ln in receipt["lines"]]
    for ln in x["lines"]:
        (event,) = ln["events"]
        assert event["event_id"] in next(r for r in receipt["lines"] if r["sku"] == ln["sku"])["evidence_ids"]
        assert event["candidates"][0]["sku"] == ln["sku"]
        assert event["attribution"]["payer"] == x["session"]["session_id"]
        assert event["trace"]["measured_delta_g"] < 0
    assert x["png"] == str(png) and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 30_000


def test_explain_prints_each_line_for_a_person():
    proc = run("explain", BAG, "--session", "s-538f6cd59c810a0a")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for text in ("line 1: 1 x Coca-Cola Classic 12 fl oz Can", "line 3: 1 x Barilla Spaghetti 16 oz",
                 "PUT G1S1-1767225626316804000 on G1S1", "who: holds the item", "delta -473.9 g",
                 "0.996 1x Barilla Spaghetti 16 oz", "> 1.000 s-538f6cd59c810a0a"):
        assert text in out, text
    # each line shows its changes: two picks and the put-back under the Coca-Cola line
    coke = out[out.index("line 1:"):out.index("line 2:")]
    assert coke.count("PICK G1S1-") == 2 and coke.count("PUT G1S1-") == 1


def test_explain_without_a_session_lists_them_and_an_unknown_one_fails_clearly():
    proc = run("explain", BAG, "--json")
    assert proc.returncode == 0, proc.stderr
    listed = json.loads(proc.stdout.strip().splitlines()[-1])["sessions"]
    assert [s["session_id"] for s in listed] == ["s-538f6cd59c810a0a", "s-de4dc31b7ef53c71"]
    assert [s["total"] for s in listed] == [6.57, 8.77]
    proc = run("explain", BAG, "--session", "s-0000")
    assert proc.returncode == 2
    assert "no session 's-0000'" in proc.stderr and "s-538f6cd59c810a0a, s-de4dc31b7ef53c71" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    proc = run("explain", ROOT / "scenarios", "--session", "x")
    assert proc.returncode == 2 and "not a rosbag2 folder" in proc.stderr
    assert "Traceback" not in proc.stderr
