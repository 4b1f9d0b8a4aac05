"""The simulator's raw-frame camera mode (sim.launch.yaml frames:=true): rendered frames at the
camera rate for the camera nodes and no model detections, so one publisher per detections topic."""
from __future__ import annotations

import pytest

from storefuse_core.calibration import load_calibration
from storefuse_core.simulation.cameras import CameraSim
from storefuse_core.simulation.scenario import parse_scenario
from storefuse_core.simulation.world import T0_NS, World

pytest.importorskip("cv2")
SCENARIO = """
store: minimart
seed: 4
faults:
  - {kind: camera_dropout, camera: cam1, at_s: 0.5, for_s: 10}
shoppers:
  - id: ivy
    enter_s: 0.2
    script:
      - exit: {}
"""


@pytest.fixture(scope="module")
def world():
    sc = parse_scenario(SCENARIO)
    return World(sc, load_calibration(sc.store.root / "calibration.yaml"))


def test_raw_frames_at_the_camera_rate_and_no_model_detections(world):
    rate = world.scenario.sensors["camera_rate_hz"]
    sim = CameraSim(world, frames=True, model=False, frame_rate_hz=rate, encode=False)
    out = sim.outputs_until(T0_NS + 1_000_000_000)
    assert out and all(o.detections is None and o.jpeg is None for o in out)
    rgb = sorted(c for c, cam in world.store.cameras.items() if cam.kind == "rgb")
    per_cam = {c: [o.t_ns for o in out if o.camera_id == c] for c in rgb}
    period = int(1e9 / rate)
    assert per_cam["cam0"] == [T0_NS + k * period for k in range(int(rate))]   # every frame, 1 s
    assert len(per_cam["cam1"]) == int(0.5 * rate)                              # dropout from 0.5 s
    cam = world.store.cameras["cam0"]
    assert out[0].image.shape == (cam.height, cam.width, 3) and out[0].image.dtype.name == "uint8"


def test_default_is_model_detections_only(world):
    out = CameraSim(world).outputs_until(T0_NS + 1_000_000_000)
    assert out and all(o.detections is not None and o.image is None and o.jpeg is None for o in out)
