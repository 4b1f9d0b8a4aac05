"""Frame sources for the camera nodes: video files and V4L2 devices (OpenCV), and image messages.

`VideoSource` wraps `cv2.VideoCapture` and yields `Frame(index, stamp_ns, image)` (a NamedTuple, so
`for index, stamp_ns, image in source` works). Stamps are sensor time, never the reading host's
clock: frame k of a file is stamped `start_stamp_ns + round(k * 1e9 / fps)` with the file's own
frame rate, so reading the same file twice gives the same stamps whatever the reading speed. A live
device has no such origin, so unless `start_stamp_ns` is given its origin is the system time at which
the device was opened (read once) and frames follow at the device's nominal rate.

`decode_image` turns a `sensor_msgs/Image` (rclpy or rosbags: read by attribute) into a numpy array
without copying pixel by pixel (np.frombuffer on the data; row padding `step` handled).

Privacy: nothing here writes frames anywhere.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from storefuse_core.errors import StorefuseError

DEFAULT_FPS = 10.0


class Frame(NamedTuple):
    index: int          # 0-based frame number since the source was opened (continues across loops)
    stamp_ns: int       # sensor time of the frame (ns)
    image: np.ndarray   # BGR uint8 (H, W, 3)


def parse_source(source: str | int | Path) -> str | int:
    """A video file path, or a V4L2 device index ("0", 0) / device node ("/dev/video0")."""
    if isinstance(source, int):
        return source
    text = str(source).strip()
    if text.isdigit():
        return int(text)
    return text


class VideoSource:
    """Frames of a video file or a camera device, with deterministic sensor stamps.

    Raises StorefuseError on open when the file is missing or OpenCV cannot decode a first frame
    from it (the message names the source). `loop=True` restarts a file at its end; frame indices
    and stamps keep increasing, so a looped file still gives monotonic stamps.
    """

    def __init__(self, source: str | int | Path, start_stamp_ns: int | None = None, fps: float | None = None,
                 loop: bool = False):
        self.source = parse_source(source)
        self.is_device = isinstance(self.source, int) or str(self.source).startswith("/dev/")
        self.loop = loop and not self.is_device
        self._fps_override = fps if fps and fps > 0 else None
        self._start_arg = start_stamp_ns
        self.start_stamp_ns = 0
        self.fps = DEFAULT_FPS
        self.width = self.height = 0
        self.frame_count = 0          # as the container reports it (0 for devices or if unknown)
        self.next_index = 0
        self.loops = 0
        self._cap = None
        self._pending: np.ndarray | None = None

    # --- opening -------------------------------------------------------------------------------
    def open(self) -> VideoSource:
        import cv2
        src = self.source
        if not self.is_device and not Path(src).is_file():
            raise StorefuseError(f"video {src!r}: no such file")
        cap = cv2.VideoCapture(src)
        if not cap.isOpened():
            cap.release()
            what = f"camera device {src}" if self.is_device else f"video {src!r}"
            raise StorefuseError(f"{what}: OpenCV cannot open it" +
                                 ("" if self.is_device else " (not a video file, or a codec OpenCV lacks)"))
        ok, first = cap.read()
        if not ok or first is None:
            cap.release()
            what = f"camera device {src}" if self.is_device else f"video {src!r}"
            raise StorefuseError(f"{what}: no frame could be decoded")
        self._cap, self._pending = cap, first
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = self._fps_override or (fps if math.isfinite(fps) and 0 < fps < 1000 else DEFAULT_FPS)
        self.height, self.width = first.shape[:2]
        self.frame_count = max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)) if not self.is_device else 0
        if self._start_arg is not None:
            self.start_stamp_ns = int(self._start_arg)
        elif self.is_device:
            self.start_stamp_ns = time.time_ns()    # the capture clock's origin, read once
        return self

    def __enter__(self) -> VideoSource:
        return self.open() if self._cap is None else self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
        self._cap, self._pending = None, None

    @property
    def is_open(self) -> bool:
        return self._cap is not None

    # --- reading -------------------------------------------------------------------------------
    def stamp_of(self, index: int) -> int:
        return self.start_stamp_ns + int(round(index * 1e9 / self.fps))

    def _grab(self) -> np.ndarray | None:
        if self._pending is not None:
            img, self._pending = self._pending, None
            return img
        ok, img = self._cap.read()
        if ok and img is not None:
            return img
        if not self.loop:
            return None
        import cv2
        self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        ok, img = self._cap.read()
        if not ok or img is None:
            return None
        self.loops += 1
        return img

    def read(self) -> Frame | None:
        """The next frame, or None at the end of a file (or when a device stops delivering)."""
        if self._cap is None:
            self.open()
        img = self._grab()
        if img is None:
            return None
        if img.ndim == 2:
            import cv2
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        frame = Frame(self.next_index, self.stamp_of(self.next_index), img)
        self.next_index += 1
        return frame

    def __iter__(self):
        if self._cap is None:
            self.open()
        while (frame := self.read()) is not None:
            yield frame


def read_frames(source: str | int | Path, start_stamp_ns: int = 0, fps: float | None = None):
    """Every frame of a video file: (index, stamp_ns, image), closing the file at the end."""
    with VideoSource(source, start_stamp_ns, fps) as src:
        yield from src


# --- sensor_msgs/Image ---------------------------------------------------------------------------

_ENCODINGS = {        # encoding -> (dtype, channels)
    "bgr8": (np.uint8, 3), "rgb8": (np.uint8, 3), "bgra8": (np.uint8, 4), "rgba8": (np.uint8, 4),
    "mono8": (np.uint8, 1), "8UC1": (np.uint8, 1), "8UC3": (np.uint8, 3),
    "mono16": (np.uint16, 1), "16UC1": (np.uint16, 1), "32FC1": (np.float32, 1),
}


def decode_image(msg) -> np.ndarray:
    """A sensor_msgs/Image as a numpy array (H, W) or (H, W, C) in the message's own encoding.

    Zero-copy where possible (np.frombuffer on msg.data; a row stride `step` larger than a row is
    sliced off). Raises StorefuseError for an unknown encoding or a data length that does not match."""
    enc = str(msg.encoding)
    if enc not in _ENCODINGS:
        raise StorefuseError(f"image encoding {enc!r} not supported (use one of {', '.join(_ENCODINGS)})")
    dtype, ch = _ENCODINGS[enc]
    dt = np.dtype(dtype)
    if dt.itemsize > 1:
        dt = dt.newbyteorder(">" if msg.is_bigendian else "<")
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    row = w * ch * dt.itemsize
    step = step or row
    buf = np.frombuffer(msg.data, dtype=np.uint8)
    if h <= 0 or w <= 0 or step < row or buf.size < step * (h - 1) + row:
        raise StorefuseError(f"image {w}x{h} {enc}: {buf.size} data bytes do not fit step {step}")
    if buf.size >= step * h:
        rows = buf[:step * h].reshape(h, step)
    else:   # the last row without its padding
        rows = np.vstack([buf[:step * (h - 1)].reshape(h - 1, step)[:, :row], buf[step * (h - 1):][None, :row]])
    pix = rows[:, :row]
    if not pix.flags.c_contiguous:
        pix = np.ascontiguousarray(pix)
    out = pix.view(dt).reshape((h, w) if ch == 1 else (h, w, ch))
    return out.astype(dt.newbyteorder("="), copy=False) if dt.itemsize > 1 else out


def to_bgr(image: np.ndarray, encoding: str) -> np.ndarray:
    """A decoded colour or grey image as BGR uint8 (what PersonDetector takes)."""
    import cv2
    if encoding in ("bgr8", "8UC3"):
        return image
    if encoding == "rgb8":
        return cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if encoding == "bgra8":
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if encoding == "rgba8":
        return cv2.cvtColor(image, cv2.COLOR_RGBA2BGR)
    if encoding in ("mono8", "8UC1"):
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    raise StorefuseError(f"image encoding {encoding!r} is not a colour image (use bgr8, rgb8 or mono8)")


def to_depth_mm(image: np.ndarray, encoding: str) -> np.ndarray:
    """A decoded depth image as uint16 millimetres (0 = no return): 16UC1/mono16 as is, 32FC1 metres."""
    if encoding in ("16UC1", "mono16"):
        return image
    if encoding == "32FC1":
        mm = np.nan_to_num(image.astype(np.float32) * 1000.0, nan=0.0, posinf=0.0, neginf=0.0)
        return np.clip(np.round(mm), 0, 65535).astype(np.uint16)
    raise StorefuseError(f"image encoding {encoding!r} is not a depth image (use 16UC1 millimetres or 32FC1 metres)")


def image_fields(image: np.ndarray, encoding: str) -> dict:
    """The fields of a sensor_msgs/Image holding `image` (for publishers and tests): height, width,
    encoding, is_bigendian, step, data (bytes: ~0.2 ms a frame, unlike assigning an ndarray)."""
    img = np.ascontiguousarray(image)
    h, w = img.shape[:2]
    return {"height": h, "width": w, "encoding": encoding, "is_bigendian": 0,
            "step": int(img.strides[0]), "data": img.astype(img.dtype.newbyteorder("<"), copy=False).tobytes()}


__all__ = ["DEFAULT_FPS", "Frame", "VideoSource", "decode_image", "image_fields", "parse_source", "read_frames",
           "to_bgr", "to_depth_mm"]
