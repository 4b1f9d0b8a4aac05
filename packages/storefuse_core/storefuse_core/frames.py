"""Rotations shared by the layout, the URDF and /tf_static, so every consumer agrees on one convention.

Angles are URDF/REP-103 fixed-axis roll-pitch-yaw: R = Rz(yaw) @ Ry(pitch) @ Rx(roll). A camera's
layout pose is the pose of its optical frame (z along the view axis, x image right, y image down),
because that is what a calibration (solvePnP) measures; the body frame `<cam>_link` (x forward,
z up) is derived from it with the standard optical rotation.
"""
from __future__ import annotations

import math

import numpy as np

# <cam>_link -> <cam>_optical_frame: the REP-103 optical rotation (rpy -90°, 0, -90°).
OPTICAL_RPY = (-math.pi / 2, 0.0, -math.pi / 2)


def rpy_matrix(roll: float, pitch: float, yaw: float) -> np.ndarray:
    cr, sr, cp, sp, cy, sy = (math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch),
                              math.cos(yaw), math.sin(yaw))
    return np.array([
        [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
        [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
        [-sp, cp * sr, cp * cr],
    ])


def matrix_rpy(m: np.ndarray) -> tuple[float, float, float]:
    """Inverse of rpy_matrix (pitch in [-pi/2, pi/2]; at gimbal lock roll absorbs the freedom)."""
    pitch = math.asin(max(-1.0, min(1.0, -float(m[2, 0]))))
    if abs(math.cos(pitch)) > 1e-9:
        roll = math.atan2(float(m[2, 1]), float(m[2, 2]))
        yaw = math.atan2(float(m[1, 0]), float(m[0, 0]))
    else:
        yaw = 0.0
        roll = math.atan2(-float(m[1, 2]), float(m[1, 1]))
    return roll, pitch, yaw


def quaternion(roll: float, pitch: float, yaw: float) -> tuple[float, float, float, float]:
    """(x, y, z, w) of the same rotation as rpy_matrix."""
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return (sr * cp * cy - cr * sp * sy, cr * sp * cy + sr * cp * sy,
            cr * cp * sy - sr * sp * cy, cr * cp * cy + sr * sp * sy)


def look_at_rpy(eye, target) -> tuple[float, float, float]:
    """Optical-frame rpy of a camera at `eye` looking at `target`, image 'up' towards map +z
    (straight down: image right = map +x)."""
    z = np.asarray(target, float) - np.asarray(eye, float)
    z /= np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])
    if np.linalg.norm(x) < 1e-6:
        x = np.array([1.0, 0.0, 0.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return matrix_rpy(np.column_stack([x, y, z]))


def optical_to_link_rpy(optical_rpy) -> tuple[float, float, float]:
    """rpy of `<cam>_link` in map, given the optical frame's rpy in map."""
    return matrix_rpy(rpy_matrix(*optical_rpy) @ rpy_matrix(*OPTICAL_RPY).T)
