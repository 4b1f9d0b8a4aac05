"""Simulated cameras in the offline bag: detections from the fitted model near the true shoppers,
camera dropouts honoured, rendered frames only when asked."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from storefuse_core.bag import read_bag
from storefuse_core.simulation.offline import run_offline
from storefuse_core.simulation.scenario import parse_scenario

SCENARIO = """
store: minimart
seed: 2
faults:
  - {kind: camera_dropout, camera: cam1, at_s: 5, for_s: 10}
shoppers:
  - id: ivy
    enter_s: 1.0
    script:
      - pick: {name: "Bananas (each)"}
      - pick: {name: "Cheerios Cereal 8.9 oz"}
      - exit: {}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cams")
    gt = run_offline(parse_scenario(SCENARIO), out)
    return gt, list(read_bag(out / "bag"))


def _truth_at(gt, t_ns):
    traj = gt["trajectories"]["ivy"]
    if t_ns < traj[0][0] or t_ns > traj[-1][0]:
        return None
    k = min(range(len(traj)), key=lambda i: abs(traj[i][0] - t_ns))
    return traj[k][1], traj[k][2]


def test_detections_are_near_the_shopper(run):
    gt, msgs = run
    errors = []
    for m in msgs:
        if m.topic.endswith("/detections"):
            truth = _truth_at(gt, m.log_ns)
            for d in m.msg.detections:
                if truth and d.score > 0.5:
                    errors.append(math.hypot(d.position.x - truth[0], d.position.y - truth[1]))
    assert len(errors) > 50
    errors.sort()
    assert errors[len(errors) // 2] < 0.3               # median within 0.3 m of the true position


def test_dropout_silences_that_camera_only(run):
    gt, msgs = run
    t0 = gt["t0_ns"]
    cam1 = [m.log_ns for m in msgs if m.topic == "/store/cameras/cam1/detections"]
    cam0 = [m.log_ns for m in msgs if m.topic == "/store/cameras/cam0/detections"]
    assert not any(t0 + 5e9 <= t < t0 + 15e9 for t in cam1)
    assert any(t0 + 5e9 <= t < t0 + 15e9 for t in cam0)
    assert gt["faults"][0]["kind"] == "camera_dropout"


def test_no_frames_unless_asked(run, tmp_path):
    _, msgs = run
    assert not any("image" in m.topic for m in msgs)
    sc = parse_scenario(SCENARIO.replace("enter_s: 1.0", "enter_s: 0.5").replace(
        '      - pick: {name: "Cheerios Cereal 8.9 oz"}\n', ""))
    run_offline(sc, tmp_path / "f", frames=True)
    images = [m for m in read_bag(Path(tmp_path / "f" / "bag")) if m.topic.endswith("image/compressed")]
    assert images and images[0].msg.format == "jpeg" and bytes(images[0].msg.data[:2]) == b"\xff\xd8"
