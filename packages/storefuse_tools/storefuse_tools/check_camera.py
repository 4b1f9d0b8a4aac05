"""`storefuse check-camera`: the installer's check of a camera pose against the store layout.

Takes one frame of the camera — an image file, a video at a given second, a live V4L2 device, or
a camera topic of a bag — draws the layout (1 m floor grid, gondola footprints and tops, shelf
front edges, plates, gate zones, labels) through the camera's calibration from the layout, saves
a PNG and prints how well the drawn gondola edges agree with the frame's edges. Lines that miss
their objects in the picture mean the layout's pose or intrinsics for this camera are wrong.
Nothing but the PNG the installer names is written. cli.py calls register(app).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


class CheckFailed(Exception):
    """One message for the installer."""


def frame_from_video(source: str, at_s: float = 0.0, warmup: int = 0):
    """The frame at `at_s` seconds into a video (or, for a device, after `warmup` frames: auto
    exposure settles)."""
    from storefuse_core.errors import StorefuseError
    from storefuse_core.vision.video import VideoSource
    try:
        with VideoSource(source, loop=False) as video:
            target = warmup if video.is_device else int(round(at_s * video.fps))
            frame = last = video.read()
            while frame is not None and frame.index < target:
                last, frame = frame, video.read()
    except StorefuseError as exc:
        raise CheckFailed(str(exc)) from None
    if frame is None:
        if last is None or not video.is_device:
            n = 0 if last is None else last.index + 1
            raise CheckFailed(f"{source}: no frame at {at_s:g} s (the video has {n} frames at {video.fps:g} fps)")
        frame = last
    return frame.image


def frame_from_bag(bag: Path, topic: str, at_s: float = 0.0):
    """The first image on `topic` at or after `at_s` seconds into the bag (CompressedImage or Image)."""
    import cv2
    import numpy as np

    from storefuse_core.bag import make_typestore, read_bag
    from storefuse_core.errors import StorefuseError
    from storefuse_core.vision.video import decode_image, to_bgr
    first, found = None, None
    try:
        for m in read_bag(bag, [topic], decode=False):     # decode only the frame that is used
            first = m.log_ns if first is None else first
            if m.log_ns - first >= at_s * 1e9:
                found = m
                break
        if found is None:
            raise CheckFailed(f"{bag}: no message on {topic}" + (f" at or after {at_s:g} s" if first else ""))
        m = found
        msg = make_typestore().deserialize_cdr(m.raw, m.msgtype)
    except StorefuseError as exc:
        raise CheckFailed(str(exc)) from None
    if m.msgtype.endswith("CompressedImage"):
        img = cv2.imdecode(np.frombuffer(bytes(msg.data), np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise CheckFailed(f"{bag}: {topic}: a {msg.format!r} image OpenCV cannot decode")
        return img
    if m.msgtype.endswith("/Image"):
        try:
            return to_bgr(decode_image(msg), msg.encoding)
        except StorefuseError as exc:
            raise CheckFailed(f"{bag}: {topic}: {exc}") from None
    raise CheckFailed(f"{bag}: {topic} carries {m.msgtype}, not an image")


def check_camera(store_name: str, camera_id: str, image, out: Path, grid_m: float = 1.0, plates: bool = True) -> dict:
    """Draw the layout on the frame, write the PNG; the edge agreement and what was drawn."""
    import cv2

    from storefuse_core.errors import StorefuseError
    from storefuse_core.layout import load_store
    from storefuse_core.vision.camera import cameras_of
    from storefuse_core.vision.overlay import draw_layout, edge_agreement
    try:
        store = load_store(store_name)
    except StorefuseError as exc:
        raise CheckFailed(str(exc)) from None
    cams = cameras_of(store)
    if camera_id not in cams:
        raise CheckFailed(f"store {store.name!r} has no camera {camera_id!r} (has: {', '.join(cams) or 'none'})")
    cam = cams[camera_id]
    h, w = image.shape[:2]
    if abs(w / h - cam.width / cam.height) > 0.01:
        raise CheckFailed(f"the frame is {w}x{h}, camera {camera_id} in the layout is {cam.width}x{cam.height}: "
                          "another aspect ratio (a different camera or a cropped frame?)")
    agree = edge_agreement(image, cam, store)
    title = f"{store.name} {camera_id}: " + (
        f"gondola edges on image edges {agree.share:.0%} (chance {agree.chance:.0%})" if agree.points
        else "no gondola in view")
    png = draw_layout(image, cam, store, grid_m=grid_m, plates=plates, title=title)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), png):
        raise CheckFailed(f"cannot write {out}")
    return {"out": str(out), "camera": camera_id, "store": store.name, "frame": [w, h],
            "scaled": (w, h) != (cam.width, cam.height),
            "edge_agreement": round(agree.share, 3) if agree.points else None,
            "edge_chance": round(agree.chance, 3) if agree.points else None, "edge_points": agree.points}


def register(app: typer.Typer) -> None:
    @app.command("check-camera")
    def check_camera_cmd(
            store: str = typer.Option(..., "--store", help="store under urdf_store/ (or a layout file)"),
            camera: str = typer.Option(..., "--camera", help="camera id in the layout, e.g. cam0"),
            out: Path = typer.Option(..., "--out", help="PNG to write"),
            frame: Optional[Path] = typer.Option(None, "--frame", help="an image file (PNG, JPEG, ...)"),
            video: Optional[Path] = typer.Option(None, "--video", help="a video file"),
            device: Optional[str] = typer.Option(None, "--device", help="a V4L2 device: index or /dev/videoN"),
            bag: Optional[Path] = typer.Option(None, "--bag", help="a rosbag2 folder with the camera's images"),
            topic: Optional[str] = typer.Option(None, "--topic", help="with --bag (default: "
                                                "/store/cameras/<camera>/image/compressed)"),
            at: float = typer.Option(0.0, "--at", help="seconds into the video or bag"),
            grid_m: float = typer.Option(1.0, "--grid-m", help="floor grid spacing (0: none)"),
            no_plates: bool = typer.Option(False, "--no-plates", help="leave out plate outlines"),
            json_out: bool = typer.Option(False, "--json", help="print the result as one JSON line")):
        """Draw the store layout through a camera's calibration onto one of its frames (PNG)."""
        import json
        sources = [s for s in (frame, video, device, bag) if s is not None]
        try:
            if len(sources) != 1:
                raise CheckFailed("give exactly one frame source: --frame, --video, --device or --bag")
            if frame is not None:
                import cv2
                image = cv2.imread(str(frame), cv2.IMREAD_COLOR)
                if image is None:
                    raise CheckFailed(f"{frame}: not an image OpenCV can read")
            elif video is not None:
                image = frame_from_video(str(video), at)
            elif device is not None:
                image = frame_from_video(device, warmup=15)
            else:
                image = frame_from_bag(bag, topic or f"/store/cameras/{camera}/image/compressed", at)
            result = check_camera(store, camera, image, out, grid_m=grid_m, plates=not no_plates)
        except CheckFailed as exc:
            typer.echo(f"storefuse: check-camera: {exc}", err=True)
            raise typer.Exit(2) from None
        if json_out:
            typer.echo(json.dumps(result))
        else:
            share, chance = result["edge_agreement"], result["edge_chance"]
            typer.echo(f"{result['out']}: {result['store']} {camera} on a {result['frame'][0]}x{result['frame'][1]} "
                       "frame; drawn gondola edges on image edges: "
                       + (f"{share:.0%}, chance {chance:.0%} ({result['edge_points']} points)" if share is not None
                          else "n/a (no gondola in view)")
                       + ". Look at the PNG: lines off their objects mean the layout's pose is wrong.")
