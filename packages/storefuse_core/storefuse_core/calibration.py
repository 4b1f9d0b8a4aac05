"""Per-plate load-cell calibration: grams = (counts - offset) * grams_per_count.

The file lives beside the layout (urdf_store/<store>/calibration.yaml); `storefuse calibrate`
rewrites it from a known weight. Both the driver and the simulator read it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from storefuse_core.errors import LayoutError


@dataclass
class Calibration:
    offsets: dict[str, float]          # counts at zero load
    gains: dict[str, float]            # grams per count

    def arrays(self, plate_ids) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Offsets, gains and a status array (2 = uncalibrated) in the given plate order."""
        off = np.array([self.offsets.get(p, 0.0) for p in plate_ids], dtype=np.float64)
        gain = np.array([self.gains.get(p, 0.0) for p in plate_ids], dtype=np.float64)
        status = np.where(gain > 0, 0, 2).astype(np.uint8)
        return off, gain, status

    def to_yaml(self) -> str:
        plates = {p: {"offset_counts": round(self.offsets[p], 3), "grams_per_count": self.gains[p]}
                  for p in sorted(self.offsets)}
        return yaml.safe_dump({"plates": plates}, sort_keys=True)


def load_calibration(path: Path) -> Calibration:
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise LayoutError(f"{path}: cannot read calibration: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("plates"), dict):
        raise LayoutError(f"{path}: calibration needs a 'plates' mapping")
    off, gain = {}, {}
    for pid, entry in doc["plates"].items():
        try:
            off[pid] = float(entry["offset_counts"])
            gain[pid] = float(entry["grams_per_count"])
        except (KeyError, TypeError, ValueError):
            raise LayoutError(f"{path}: plate {pid} needs offset_counts and grams_per_count") from None
        if gain[pid] <= 0:
            raise LayoutError(f"{path}: plate {pid} grams_per_count must be > 0")
    return Calibration(off, gain)


def factory_calibration(plate_ids, seed: int = 0) -> Calibration:
    """Plausible HX711 board constants (about 0.24 g per count, arbitrary zero offsets)."""
    rng = np.random.default_rng(seed)
    off = {p: float(rng.integers(20_000, 200_000)) for p in plate_ids}
    gain = {p: float(round(0.24 * rng.uniform(0.97, 1.03), 6)) for p in plate_ids}
    return Calibration(off, gain)


def solve_gain(counts_empty: float, counts_loaded: float, known_grams: float) -> tuple[float, float]:
    """Offset and grams-per-count from an empty reading and one with a known weight on the plate."""
    span = counts_loaded - counts_empty
    if abs(span) < 1e-9:
        raise ValueError("the known weight did not change the reading")
    return counts_empty, known_grams / span
