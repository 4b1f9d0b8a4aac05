"""OpenCV's own background models behind storefuse's blob pipeline, for comparison only.

`OpenCVBackgroundDetector` is `PersonDetector` (same size gating, splitting, positions, ignore
regions) with its foreground from `cv2.createBackgroundSubtractorMOG2` or `...KNN` (shadow detection
on; shadow pixels are background) instead of storefuse's background model. Used by
bench/fit_detection_model.py and bench/aifi_videos.py with `--background mog2|knn`.
"""
from __future__ import annotations

import cv2
import numpy as np

from storefuse_core.vision.person import DetectorParams, PersonDetector

BACKGROUNDS = ("storefuse", "mog2", "knn")


class OpenCVBackgroundDetector(PersonDetector):
    def __init__(self, camera, params: DetectorParams | None = None, kind: str = "mog2", history: int = 500):
        super().__init__(camera, params)
        self.kind = kind
        self.subtractor = (cv2.createBackgroundSubtractorMOG2(history, 16.0, True) if kind == "mog2"
                           else cv2.createBackgroundSubtractorKNN(history, 400.0, True))

    def foreground(self, image_bgr: np.ndarray) -> np.ndarray:
        frame = self._small(image_bgr).astype(np.uint8)
        labels = self.subtractor.apply(frame)              # 255 foreground, 127 shadow, 0 background
        self.frames += 1
        mask = (labels == 255).astype(np.uint8) * 255
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._k_open)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self._k_close)
        self._norm = frame.astype(np.float32)
        self.background = self._norm if self.background is None else self.background
        self.last_mask = mask
        return mask


def make_detector(camera, params: DetectorParams | None = None, background: str = "storefuse") -> PersonDetector:
    if background == "storefuse":
        return PersonDetector(camera, params)
    if background not in BACKGROUNDS:
        raise ValueError(f"background {background!r}: use one of {', '.join(BACKGROUNDS)}")
    return OpenCVBackgroundDetector(camera, params, background)
