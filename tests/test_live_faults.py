"""Faults on the live graph: the receipt node is killed mid-visit and restarted; it rebuilds the open
sessions from its ledger, receives what it missed from the publishers' durable history, and no
receipt line is lost or doubled."""
from __future__ import annotations

import os

import pytest

from storefuse_core.evaluation import score
from storefuse_tools.live import run_live

from sftest import ROOT

pytestmark = pytest.mark.system


def test_receipt_node_killed_mid_visit_loses_and_doubles_nothing(tmp_path):
    result = run_live(ROOT / "scenarios" / "fault_kill_node.yaml", tmp_path / "run", rate=2.0,
                      domain_id=200 + os.getpid() % 30, timeout_s=240)
    assert not result.timed_out
    assert result.restarts == ["receipt"]
    log = (tmp_path / "run" / "launch.log").read_text()
    assert "1 open session(s) rebuilt" in log           # the kill happened while alice was inside
    metrics = score(result.ground_truth, result.finals)
    assert metrics["visits"] == 2 and metrics["exact_receipts"] == 2
    assert len(result.finals) == 2
