"""What the simulated ceiling cameras publish: PersonDetections from the fitted detection model
(the default fidelity: fast enough for long scenarios and big stores) and, only when asked,
rendered frames as JPEG (the other fidelity, for camera nodes, demos and review snapshots).
"""
from __future__ import annotations

from dataclasses import dataclass

from storefuse_core.simulation.world import T0_NS, World

FRAME_RATE_HZ = 2.0          # rendered frames are a debugging aid: a reduced rate


@dataclass
class CameraOutput:
    t_ns: int
    camera_id: str
    detections: list | None = None
    jpeg: bytes | None = None
    image: object | None = None      # a raw BGR frame (numpy), when frames are asked for unencoded


class CameraSim:
    def __init__(self, world: World, frames: bool = False, model: bool = True,
                 frame_rate_hz: float = FRAME_RATE_HZ, encode: bool = True):
        """`model=False, frame_rate_hz=<camera rate>, encode=False`: raw frames at the full rate and no
        model detections — the camera nodes detect people in the frames (sim.launch.yaml frames:=true)."""
        from storefuse_core.vision.camera import cameras_of
        from storefuse_core.vision.detection_model import DetectionModel, load_params
        self.world = world
        sc = world.scenario
        self.cameras = cameras_of(world.store)
        self.model = DetectionModel(load_params(sensors=sc.sensors_given), seed=sc.seed, store=world.store)
        self.period_ns = int(1e9 / sc.sensors["camera_rate_hz"])
        self.frame_every = max(1, round(sc.sensors["camera_rate_hz"] / frame_rate_hz))
        self.model_on, self.encode = model, encode
        self.dropouts = [(f["camera"], f.get("at_s", 0.0), f.get("at_s", 0.0) + f.get("for_s", 1e9))
                         for f in sc.faults if f["kind"] == "camera_dropout"]
        self.renderers = {}
        if frames:
            from storefuse_core.vision.render import CameraRenderer
            self.renderers = {cid: CameraRenderer(world.store, cam, seed=sc.seed)
                              for cid, cam in self.cameras.items() if world.store.cameras[cid].kind == "rgb"}
        self.k = 0

    def outputs_until(self, t_end_ns: int) -> list[CameraOutput]:
        out = []
        while T0_NS + self.k * self.period_ns < t_end_ns:
            t_ns = T0_NS + self.k * self.period_ns
            t_s = (t_ns - T0_NS) / 1e9
            people = self.world.people_at(t_s)
            for cid, cam in self.cameras.items():
                if any(c == cid and a <= t_s < b for c, a, b in self.dropouts):
                    continue
                if self.model_on:
                    out.append(CameraOutput(t_ns, cid, detections=self.model.detect(cam, people, t_ns)))
                if cid in self.renderers and self.k % self.frame_every == 0:
                    import cv2
                    image = self.renderers[cid].render(people, t_s)
                    if not self.encode:
                        out.append(CameraOutput(t_ns, cid, image=image))
                        continue
                    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
                    if ok:
                        out.append(CameraOutput(t_ns, cid, jpeg=buf.tobytes()))
            self.k += 1
        return out
