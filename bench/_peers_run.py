"""norfair and motpy on the streams bench/tracker_peers.py made: runs inside out/bench/venv-peers
(numpy < 2), never imports storefuse_core, and only tracks and times; scoring happens in the project
venv with the same function for all three trackers.

    out/bench/venv-peers/bin/python bench/_peers_run.py STREAMS.npz OUT.npz

Both peers take one list of detections per time step (they have no notion of several cameras), so
each is fed two ways: `merged` (one detection per person per step after the cross-camera merge
that bench/tracker_peers.py does) and `raw` (every camera's detections of the step concatenated:
a person seen by two cameras is two detections).

Units are metres. Parameters (why):
- norfair: euclidean distance on the floor point, distance_threshold 1.0 m (a shopper moves ~0.1 m
  per 100 ms step; noise sd ~0.2 m); hit_counter_max 10 (1 s unseen, as storefuse's lost_after_s);
  initialization_delay 3 (storefuse's confirm_hits); OptimizedKalmanFilterFactory with norfair's
  pixel defaults scaled by 0.01 (its default 2 px measurement sd becomes 0.2 m).
- motpy: the default constant-velocity 2-D box model on 1.0 m squares centred on the floor point
  (IoU >= 0.1, motpy's default, then allows ~0.55 m offset per axis), dt 0.1 s, r_var_pos 0.04 m^2,
  q_var_pos 2.25 (storefuse's 1.5 m/s^2 accel sd), p_cov_p0 1.0; reported tracks: min_steps_alive
  3, max_staleness 10 (as motpy's own examples do; its default reports every one-frame track).
"""
from __future__ import annotations

import logging
import sys
import time

import numpy as np

BOX_M = 1.0


def steps_of(d: dict, prefix: str, n_steps: int) -> list[np.ndarray]:
    """Row indices of each step's detections (arrays are sorted by step)."""
    step = d[prefix + "step"]
    bounds = np.searchsorted(step, np.arange(n_steps + 1))
    return [np.arange(bounds[k], bounds[k + 1]) for k in range(n_steps)]


def run_norfair(xy: np.ndarray, rows: list[np.ndarray]):
    from norfair import Detection, Tracker
    from norfair.filter import OptimizedKalmanFilterFactory
    tracker = Tracker(distance_function="euclidean", distance_threshold=1.0, hit_counter_max=10,
                      initialization_delay=3,
                      filter_factory=OptimizedKalmanFilterFactory(R=0.04, Q=0.001, pos_variance=0.1,
                                                                  vel_variance=0.01))
    inputs = [[Detection(points=xy[i:i + 1]) for i in r] for r in rows]
    out, ms = [], []
    for dets in inputs:
        t0 = time.perf_counter()
        objs = tracker.update(detections=dets)
        snap = [(int(o.id), float(o.estimate[0, 0]), float(o.estimate[0, 1])) for o in objs]
        ms.append((time.perf_counter() - t0) * 1e3)
        out.append(snap)
    return out, ms


def run_motpy(xy: np.ndarray, rows: list[np.ndarray]):
    from motpy import Detection, MultiObjectTracker
    logging.getLogger("motpy").setLevel(logging.WARNING)
    spec = {"order_pos": 1, "dim_pos": 2, "order_size": 0, "dim_size": 2, "q_var_pos": 2.25, "r_var_pos": 0.04,
            "q_var_size": 1e-4, "r_var_size": 1e-4, "p_cov_p0": 1.0}
    tracker = MultiObjectTracker(dt=0.1, model_spec=spec,
                                 active_tracks_kwargs={"min_steps_alive": 3, "max_staleness": 10})
    h = BOX_M / 2
    inputs = [[Detection(box=np.array([xy[i, 0] - h, xy[i, 1] - h, xy[i, 0] + h, xy[i, 1] + h])) for i in r]
              for r in rows]
    ids: dict[str, int] = {}
    out, ms = [], []
    for dets in inputs:
        t0 = time.perf_counter()
        tracks = tracker.step(detections=dets)
        snap = [(ids.setdefault(t.id, len(ids) + 1), float((t.box[0] + t.box[2]) / 2), float((t.box[1] + t.box[3]) / 2))
                for t in tracks]
        ms.append((time.perf_counter() - t0) * 1e3)
        out.append(snap)
    return out, ms


def main() -> None:
    src, dst = sys.argv[1], sys.argv[2]
    d = dict(np.load(src))
    result: dict[str, np.ndarray] = {}
    for scene in [int(s) for s in d["scenes"]]:
        p = f"n{scene}_"
        n_steps = len(d[p + "stamps"])
        for mode, q in (("merged", p + "m_"), ("raw", p + "r_")):
            xy = np.stack([d[q + "x"], d[q + "y"]], axis=1)
            rows = steps_of(d, q, n_steps)
            for name, fn in (("norfair", run_norfair), ("motpy", run_motpy)):
                t0 = time.perf_counter()
                frames, ms = fn(xy, rows)
                key = f"{name}_{mode}_n{scene}_"
                result[key + "step"] = np.array([k for k, f in enumerate(frames) for _ in f], dtype=np.int64)
                result[key + "id"] = np.array([o[0] for f in frames for o in f], dtype=np.int64)
                result[key + "x"] = np.array([o[1] for f in frames for o in f], dtype=float)
                result[key + "y"] = np.array([o[2] for f in frames for o in f], dtype=float)
                result[key + "ms"] = np.array(ms, dtype=float)
                print(f"{name} {mode} n={scene}: {n_steps} steps, median {np.median(ms):.2f} ms/step, "
                      f"{time.perf_counter() - t0:.1f} s", flush=True)
    result["numpy"] = np.array(np.__version__)
    np.savez(dst, **result)


if __name__ == "__main__":
    main()
