"""The launch fixture (tests/launch_fixture.py) on the real launch files: isolated domain,
readiness from the graph, a final receipt awaited, nothing left running afterwards."""
from __future__ import annotations

import json
import threading
import uuid

import pytest

from storefuse_core import topics
from storefuse_core.events import FINAL

from sftest import ROOT

# Its fixtures (launch_domain, launch_stack); its helpers are imported inside the tests, after
# pytest has loaded it as a plugin (an earlier import would skip pytest's assertion rewriting).
pytest_plugins = ["launch_fixture"]
pytestmark = pytest.mark.system
SIM = ROOT / "launch" / "sim.launch.yaml"
SCENARIO = ROOT / "scenarios" / "minimart_two_shoppers.yaml"


def test_sim_launch_runs_until_final_receipts(launch_stack, tmp_path):
    from launch_fixture import MARKER, leftover_processes
    run_dir = tmp_path / "run"
    stack = launch_stack(SIM, {"scenario": SCENARIO, "run_dir": run_dir, "rate": 3.0, "record": "false"},
                         topics=[topics.RECEIPTS_FINAL, topics.SIM_STATUS], timeout=90)
    assert {"/store/receipt", "/store/store_sim", "/store/scale_G1", "/store/gate_entry_1_reader"} <= set(stack.nodes)
    assert set(stack.nodes) <= stack.client.node_names()
    assert topics.RECEIPTS_FINAL in stack.topics
    visits = json.loads((run_dir / "ground_truth.json").read_text())["visits"]
    finals = stack.await_messages(topics.RECEIPTS_FINAL, len(visits), timeout=180)
    assert len({r.session_id for r in finals}) == len(visits) == 2
    assert all(r.status == FINAL and r.lines for r in finals)
    codes = stack.stop()
    assert set(codes) == {s.name for s in stack.specs}
    assert all(code in (0, -2, 130) for code in codes.values()), codes     # stopped by SIGINT, cleanly
    assert leftover_processes(stack.env[MARKER]) == []


def test_a_node_that_dies_at_start_fails_readiness_with_its_output(launch_domain, tmp_path):
    from launch_fixture import launched, leftover_processes
    bad = tmp_path / "bad.launch.yaml"
    bad.write_text("launch:\n"
                   "  - node: {pkg: storefuse_nodes, exec: store_description, name: store_description,\n"
                   "           param: [{name: store, value: minimart}]}\n"
                   "  - node: {pkg: storefuse_nodes, exec: recorder, name: recorder}   # no 'out': exits\n")
    marker = uuid.uuid4().hex
    with pytest.raises(AssertionError, match="node 'recorder' exited") as info:
        with launched(bad, {}, launch_domain, tmp_path / "log", timeout=60, marker=marker):
            pytest.fail("the stack must not become ready")
    assert "parameter 'out'" in str(info.value)          # the dead node's own words
    assert leftover_processes(marker) == []              # store_description was stopped too


def test_readiness_waits_for_topics_that_never_get_a_publisher(launch_domain, tmp_path):
    from launch_fixture import launched, leftover_processes
    one = tmp_path / "one.launch.yaml"
    one.write_text("launch:\n  - node: {pkg: storefuse_nodes, exec: store_description, name: store_description,\n"
                   "                   param: [{name: store, value: minimart}]}\n")
    marker = uuid.uuid4().hex
    with pytest.raises(AssertionError, match="a publisher on /store/never"):
        with launched(one, {}, launch_domain, tmp_path / "log", topics=["/store/never"], timeout=5, marker=marker):
            pass
    assert leftover_processes(marker) == []


def test_domain_leases_are_exclusive():
    from launch_fixture import DomainLease
    a, b = DomainLease(), DomainLease()
    try:
        assert a.domain_id != b.domain_id
    finally:
        a.release()
        b.release()
    c = DomainLease()
    c.release()


def test_sim_launch_with_real_launch_testing(launch_domain, tmp_path, monkeypatch):
    """The same check through ROS 2's own launch service, where launch_testing is installed."""
    launch_testing = pytest.importorskip("launch_testing")
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import AnyLaunchDescriptionSource
    from launch_fixture import GraphClient

    import launch
    from storefuse_tools.paths import ros_env
    for key, value in ros_env(launch_domain).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("ROS_LOG_DIR", str(tmp_path / "roslog"))
    run_dir = tmp_path / "run"
    description = launch.LaunchDescription([
        IncludeLaunchDescription(AnyLaunchDescriptionSource(str(SIM)), launch_arguments={
            "scenario": str(SCENARIO), "run_dir": str(run_dir), "rate": "3.0", "record": "false"}.items()),
        launch_testing.actions.ReadyToTest(),
    ])
    service = launch.LaunchService(argv=[])
    service.include_launch_description(description)
    thread = threading.Thread(target=lambda: service.run(shutdown_when_idle=False), daemon=True)
    client = GraphClient(launch_domain)
    try:
        thread.start()
        from storefuse_interfaces.msg import Receipt
        from storefuse_nodes.common import EVENTS_QOS
        finals = []
        client.node.create_subscription(Receipt, topics.RECEIPTS_FINAL, finals.append, EVENTS_QOS)
        client.wait_for(lambda: len(finals) >= 2, 180, "two final receipts")
        assert all(r.status == FINAL for r in finals)
    finally:
        client.close()
        service.shutdown()
        thread.join(timeout=30)
    assert not thread.is_alive()
