"""The `aifi` store: a layout built from the AiFi AutoCheckout catalogue (products.csv).

The CSV (Name,Gondola,Shelf,Plate,Weight,Price,Image; one row per product per plate, -1,-1,-1 when
not placed) may not be committed, but a layout derived from it may. Product names are the CSV's
`Name` verbatim (scenarios and the AiFi ground truth name products that way); skus are derived from
the name so they never change between imports. The shelf structure is the recorded store's: the
dataset has a plate file for every load cell, and those plates exist here even where nothing is
placed (G1S4 reports 14 channels, G3 has 5 shelves, G4S5 10 plates).
"""
from __future__ import annotations

import csv
import hashlib
import heapq
import math
from pathlib import Path

import numpy as np

from storefuse_core.errors import LayoutError, StorefuseError
from storefuse_core.frames import look_at_rpy
from storefuse_core.layout import PLATE_RE, dump_layout, parse_store

# Plates per shelf (shelf 1 = lowest), from the dataset's plates/gondola_G_shelf_S_plate_P.csv files.
SHELVES = {1: [12, 12, 12, 14, 12, 12], 2: [12] * 6, 3: [12] * 5, 4: [12, 12, 12, 12, 10, 12], 5: [12] * 6}
# A ~10 x 8 m room: three gondolas on the back wall, an island of two back to back (centre x, y, yaw).
GONDOLA_POSES = {1: (2.2, 7.45, 0), 2: (5.0, 7.45, 0), 3: (7.8, 7.45, 0), 4: (5.0, 4.25, 0), 5: (5.0, 4.75, 180)}
GONDOLA_LENGTH_M, GONDOLA_DEPTH_M = 1.2, 0.5
FLOOR = (10.0, 8.0)
# 12 ceiling cameras (cam0..cam11, as the competition's video files are named), 640x360 like the videos.
CAMERA_GRID_X, CAMERA_GRID_Y, CAMERA_Z = (1.25, 3.75, 6.25, 8.75), (1.5, 4.0, 6.5), 3.0
CAMERA_HFOV_DEG = 100.0
# The four cameras with video (test 1): an effective focal length measured from the shopper's size in
# the video (`python bench/aifi_videos.py --fit-focal`: the fx at which, under the nominal pose, the
# median of his silhouette area / the area the detector expects there is 1), and ignore regions
# (full-frame pixel polygons) over the glass walls and doors onto the next rooms and a live TV, read
# off the videos. The other eight cameras keep the nominal 100 deg lens.
MEASURED_FX = {1: 550.4, 3: 540.9, 5: 538.8, 7: 633.2}
IGNORE = {
    1: [[[0, 0], [445, 0], [440, 25], [250, 205], [160, 262], [0, 262]]],
    3: [[[0, 0], [300, 0], [330, 230], [250, 360], [0, 360]], [[360, 0], [490, 0], [490, 80], [360, 80]]],
    5: [[[278, 0], [290, 190], [400, 360], [640, 360], [640, 0]]],
    7: [[[185, 0], [394, 252], [470, 205], [490, 160], [640, 130], [640, 0]]],
}


def sku_for(name: str) -> str:
    """AIFI- plus the first 10 hex digits of the name's SHA-1: stable across imports."""
    return "AIFI-" + hashlib.sha1(name.encode("utf-8")).hexdigest()[:10].upper()


def read_catalogue(csv_path: Path) -> list[dict]:
    """One entry per product name: unit grams, price and the plates it occupies (CSV order kept)."""
    path = Path(csv_path)
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise LayoutError(f"{path}: cannot read the AiFi products CSV ({exc.strerror})") from exc
    need = {"Name", "Gondola", "Shelf", "Plate", "Weight", "Price"}
    if not rows or not need <= set(rows[0]):
        raise LayoutError(f"{path}: expected a header with {', '.join(sorted(need))}")
    by_name: dict[str, dict] = {}
    for line, row in enumerate(rows, start=2):
        where = f"{path}:{line} ({row['Name'].strip()!r})"
        try:
            g, s, p = int(row["Gondola"]), int(row["Shelf"]), int(row["Plate"])
            grams, price = float(row["Weight"]), float(row["Price"])
        except ValueError:
            raise LayoutError(f"{where}: Gondola/Shelf/Plate must be integers, Weight/Price numbers") from None
        entry = by_name.setdefault(row["Name"], {"name": row["Name"], "plates": [], "rows": []})
        entry["rows"].append((g >= 1, grams, price))
        if (g, s, p) == (-1, -1, -1):
            continue
        if g not in SHELVES or not 1 <= s <= len(SHELVES[g]) or not 1 <= p <= SHELVES[g][s - 1]:
            raise LayoutError(f"{where}: no plate G{g}S{s}P{p} in the AiFi store")
        entry["plates"].append(f"G{g}S{s}P{p}")
    for entry in by_name.values():
        entry["plates"].sort(key=_plate_key)
        placed = {(gr, pr) for is_placed, gr, pr in entry["rows"] if is_placed}
        if len(placed) > 1:
            raise LayoutError(f"{path}: product {entry['name']!r} has different weights/prices on its plates")
        # A name listed twice unplaced with different weights (a 0 g placeholder row beside the real
        # one): the heaviest row wins, its price with it.
        entry["grams"], entry["price"] = max(placed) if placed else max((gr, pr) for _, gr, pr in entry["rows"])
        if entry["plates"] and entry["grams"] <= 0:
            raise LayoutError(f"{path}: product {entry['name']!r} is placed but has no unit weight")
    return list(by_name.values())


def layout_from_products_csv(csv_path: str | Path) -> str:
    """The aifi store's layout.yaml text, built from the AiFi products CSV (deterministic)."""
    catalogue = read_catalogue(Path(csv_path))
    skus: dict[str, str] = {}
    for entry in catalogue:
        sku = sku_for(entry["name"])
        if sku in skus:
            raise LayoutError(f"{csv_path}: names {skus[sku]!r} and {entry['name']!r} derive the same sku {sku}")
        skus[sku] = entry["name"]

    def order(entry):       # placed products by their first plate, then the rest by name
        return (0, _plate_key(entry["plates"][0]), "") if entry["plates"] else (1, (), entry["name"])

    products = []
    for entry in sorted(catalogue, key=order):
        grams = round(entry["grams"], 3)
        products.append({"sku": sku_for(entry["name"]), "name": entry["name"], "grams": grams,
                         "grams_sd": round(max(1.0, 0.02 * grams), 2), "price": round(entry["price"], 2),
                         "plates": entry["plates"]})
    doc = {"store": "aifi", "name": "AiFi AutoCheckout store (CPS-IoT Week 2020)", "currency": "USD",
           "floor": {"length_m": FLOOR[0], "width_m": FLOOR[1]},
           "token_secret_env": "STOREFUSE_TOKEN_SECRET",
           "gondolas": _gondolas(), "gates": _gates(), "cameras": _cameras(), "products": products}
    text = dump_layout(doc, HEADER)
    parse_store(text, Path("aifi/layout.yaml"))            # what we write must load
    return text


HEADER = """
AiFi AutoCheckout store: GENERATED by `storefuse import-aifi-layout products.csv` (storefuse_core/aifi.py);
regenerate rather than edit. Planogram (names verbatim, unit grams, prices, plates) from the AiFi
catalogue; skus = AIFI- + sha1(name)[:10]. Shelf structure from the recorded plate files; room
geometry, camera poses and gates are plausible, not measured (no calibration was published). cam1, cam3,
cam5 and cam7 (the cameras with video) have a focal length measured from the shopper's size in their
video (bench/aifi_videos.py --fit-focal) and ignore regions (image polygons: glass walls, doors, a TV).
Products with plates: [] are in the catalogue but were not placed in the recorded test.
"""


def _plate_key(plate_id: str) -> tuple[int, int, int]:
    g, s, p = PLATE_RE.fullmatch(plate_id).groups()
    return int(g), int(s), int(p)


def _gondolas() -> list[dict]:
    out = []
    for g, counts in SHELVES.items():
        x, y, yaw = GONDOLA_POSES[g]
        heights = [round(0.2 + 0.3 * i, 3) for i in range(len(counts))] if len(counts) == 6 else \
            [round(0.2 + 0.35 * i, 3) for i in range(len(counts))]
        out.append({"id": f"G{g}", "x": x, "y": y, "yaw_deg": yaw, "length_m": GONDOLA_LENGTH_M,
                    "depth_m": GONDOLA_DEPTH_M, "shelf_heights_m": heights,
                    "plates_per_shelf": counts[0] if len(set(counts)) == 1 else counts})
    return out


def _gates() -> list[dict]:
    return [{"id": "gate_entry_1", "direction": "entry", "x": 8.4, "y": 0.6, "width_m": 0.9},
            {"id": "gate_exit_1", "direction": "exit", "x": 9.4, "y": 0.6, "width_m": 0.9}]


def _cameras() -> list[dict]:
    """A 4 x 3 ceiling grid, each camera angled towards the middle of the room as in the videos."""
    fx = nominal_fx()
    centre = (FLOOR[0] / 2, FLOOR[1] / 2)
    cams = []
    for j, y in enumerate(CAMERA_GRID_Y):
        for i, x in enumerate(CAMERA_GRID_X):
            dx, dy = centre[0] - x, centre[1] - y
            d = math.hypot(dx, dy)
            target = (x + 1.5 * dx / d, y + 1.5 * dy / d, 0.0) if d > 0.5 else (x, y, 0.0)
            roll, pitch, yaw = look_at_rpy((x, y, CAMERA_Z), target)
            k = j * len(CAMERA_GRID_X) + i
            f = MEASURED_FX.get(k) or fx
            cam = {"id": f"cam{k}", "kind": "rgb", "x": x, "y": y, "z": CAMERA_Z,
                   "roll_deg": _deg(roll), "pitch_deg": _deg(pitch), "yaw_deg": _deg(yaw),
                   "width": 640, "height": 360, "fx": f, "fy": f, "cx": 320.0, "cy": 180.0, "rate_hz": 10}
            if k in IGNORE:
                cam["ignore"] = IGNORE[k]
            cams.append(cam)
    return cams


def nominal_fx() -> float:
    """The focal length (px) of the nominal 100 deg lens, before any measurement."""
    return round(320 / math.tan(math.radians(CAMERA_HFOV_DEG / 2)), 1)


def _deg(rad: float) -> float:
    return round(math.degrees(rad), 2) + 0.0            # + 0.0: no "-0.0" in the file


# ---- recorded plates -> bag ---------------------------------------------------------------------
def read_plates(dataset_dir: Path) -> dict[str, np.ndarray]:
    """plates/gondola_G_shelf_S_plate_P.csv (rows `unix_seconds,grams`) by plate id G<g>S<s>P<p>."""
    import re as _re
    folder = Path(dataset_dir) / "plates"
    if not folder.is_dir():
        raise StorefuseError(f"{dataset_dir}: no plates/ folder (expected the AiFi AutoCheckout layout)")
    out = {}
    for path in sorted(folder.glob("*.csv")):
        m = _re.fullmatch(r"gondola_(\d+)_shelf_(\d+)_plate_(\d+)\.csv", path.name)
        if not m:
            continue
        try:
            data = np.loadtxt(path, delimiter=",", ndmin=2)
        except ValueError as exc:
            raise StorefuseError(f"{path}: not `unix_seconds,grams` rows: {exc}") from exc
        if data.size:
            out[f"G{m[1]}S{m[2]}P{m[3]}"] = data[np.argsort(data[:, 0], kind="stable")]
    if not out:
        raise StorefuseError(f"{folder}: no gondola_G_shelf_S_plate_P.csv files")
    return out


VIDEO_CAMERAS = ("cam1", "cam3", "cam5", "cam7")      # the test's videos/<cam>.mp4
VIDEO_MODES = ("none", "detections", "images")


def plates_to_bag(dataset_dir: str | Path, out: str | Path, store_name: str = "aifi", rate_hz: float = 60.0,
                  block_samples: int = 6, videos: str = "none", image_every: int = 1, jpeg_quality: int = 80) -> dict:
    """The recorded plates as PlateWeights blocks on the `aifi` store's boards, one bag.

    Plates were logged each with their own clock ticks; a board samples all its plates at once, so
    each board's plates are put on one 60 Hz grid (the latest reading at each tick), as the board
    would have reported them. Plates the layout has but the recording lacks are flagged dead.

    `videos`: "detections" runs the camera node's detector (default settings, cold start) over each
    video and writes its PersonDetections; "images" writes every `image_every`-th frame as a JPEG
    CompressedImage (the simulator's `--frames` topic) for a live camera pipeline to detect on. The
    dataset gives no video start time, only "same time span as the plates": frame 0 is put at the
    bag's first plate sample and frame k at + k / fps (the videos, ~33.9 s, and the plates, 33.6 s,
    then end within 0.3 s of each other). All topics are merged in stamp order as they are written.
    """
    from storefuse_core import topics
    from storefuse_core.bag import BagWriter
    from storefuse_core.convert import block_to_msg, rosbags_factory
    from storefuse_core.events import PlateBlock
    from storefuse_core.layout import load_store
    from storefuse_core.shelf import ShelfParams, config_json
    from storefuse_core.simulation.offline import bag_custom_data

    store = load_store(store_name)
    plates = read_plates(Path(dataset_dir))
    unknown = sorted(set(plates) - set(store.plates))
    if unknown:
        raise StorefuseError(f"{dataset_dir}: plates not in store {store.name!r}: {', '.join(unknown[:5])}")
    t0 = max(d[0, 0] for d in plates.values())
    t1 = min(d[-1, 0] for d in plates.values())
    grid = np.arange(int(np.ceil(t0 * rate_hz)), int(np.floor(t1 * rate_hz)) + 1) / rate_hz
    stamps = np.round(grid * 1e6).astype(np.int64) * 1000
    if videos not in VIDEO_MODES:
        raise StorefuseError(f"--videos {videos!r}: expected one of {', '.join(VIDEO_MODES)}")
    if image_every < 1:
        raise StorefuseError("image_every must be >= 1")
    video_paths = {}
    if videos != "none":
        for cid in VIDEO_CAMERAS:
            path = Path(dataset_dir) / "videos" / f"{cid}.mp4"
            if not path.is_file():
                raise StorefuseError(f"{dataset_dir}: no videos/{cid}.mp4 (needed for --videos {videos})")
            if cid not in store.cameras:
                raise StorefuseError(f"store {store.name!r} has no camera {cid!r} for videos/{cid}.mp4")
            video_paths[cid] = path
    params = ShelfParams()
    counts: dict[str, int] = {}
    with BagWriter(Path(out), bag_custom_data(store, params) | {"storefuse.source": "aifi-autocheckout"}) as bag:
        f = rosbags_factory(bag.typestore)
        for board in store.boards:
            bag.write(topics.SHELF_CONFIG, topics.TYPES[topics.SHELF_CONFIG], int(stamps[0]),
                      f("std_msgs/msg/String", data=config_json(board, params)))
        columns = {}
        for board in store.boards:
            ids = store.board_plates(board)
            mat = np.zeros((len(grid), len(ids)), dtype=np.float32)
            status = np.zeros(len(ids), dtype=np.uint8)
            for j, pid in enumerate(ids):
                if pid not in plates:
                    status[j] = 1
                    continue
                d = plates[pid]
                k = np.clip(np.searchsorted(d[:, 0], grid, side="right") - 1, 0, len(d) - 1)
                mat[:, j] = d[k, 1]
            columns[board] = (mat, status)

        def blocks():
            for start in range(0, len(grid) - block_samples + 1, block_samples):
                sl = slice(start, start + block_samples)
                for board in store.boards:
                    mat, status = columns[board]
                    block = PlateBlock(board, start + 1, stamps[sl], mat[sl], status)
                    yield (int(stamps[sl][0]), 0, board, topics.PLATE_WEIGHTS, topics.TYPES[topics.PLATE_WEIGHTS],
                           block_to_msg(f, block, f"{board.removeprefix('scale_')}_link"))

        streams = [blocks()] + [_video_messages(f, store, cid, path, int(stamps[0]), videos, image_every,
                                                jpeg_quality) for cid, path in video_paths.items()]
        frames: dict[str, int] = {}
        people: dict[str, int] = {}
        for stamp, _, key, topic, msgtype, msg in heapq.merge(*streams, key=lambda m: m[:3]):
            bag.write(topic, msgtype, stamp, msg)
            counts[key] = counts.get(key, 0) + 1
            if topic.startswith(f"{topics.NS}/cameras/"):
                frames[key] = frames.get(key, 0) + 1
                people[key] = people.get(key, 0) + len(getattr(msg, "detections", ()))
    return {"plates": len(plates), "samples": len(grid), "start_ns": int(stamps[0]), "end_ns": int(stamps[-1]),
            "blocks": sum(n for k, n in counts.items() if k in store.boards), "videos": videos,
            "frames": frames, "detections": people if videos == "detections" else {}}


def _video_messages(f, store, camera_id: str, path: Path, start_ns: int, videos: str, image_every: int,
                    jpeg_quality: int):
    """(stamp, 1, camera, topic, type, msg) per frame of one video, in frame order (for heapq.merge)."""
    import cv2

    from storefuse_core import topics
    from storefuse_core.convert import detections_to_msg, image_to_msg
    from storefuse_core.vision.camera import cameras_of
    from storefuse_core.vision.person import PersonDetector
    from storefuse_core.vision.video import read_frames

    cam = cameras_of(store, "rgb")[camera_id]
    detector = PersonDetector(cam) if videos == "detections" else None
    for index, stamp, image in read_frames(path, start_ns):
        if image.shape[:2] != (cam.height, cam.width):
            raise StorefuseError(f"{path}: frame {index} is {image.shape[1]}x{image.shape[0]}, layout camera "
                                 f"{camera_id} is {cam.width}x{cam.height}")
        if detector is not None:
            msg = detections_to_msg(f, camera_id, stamp, detector.detect(image, stamp))
            yield stamp, 1, camera_id, topics.camera_topic(camera_id), topics.DETECTIONS_TYPE, msg
        elif index % image_every == 0:
            ok, jpg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
            if not ok:
                raise StorefuseError(f"{path}: frame {index} could not be JPEG-encoded")
            yield (stamp, 1, camera_id, topics.camera_topic(camera_id, "image/compressed"), topics.IMAGE_TYPE,
                   image_to_msg(f, camera_id, stamp, jpg.tobytes()))
