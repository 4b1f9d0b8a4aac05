"""Per-plate load-cell calibration: grams = (counts - offset) * grams_per_count.

The file lives beside the layout (urdf_store/<store>/calibration.yaml); `storefuse calibrate`
rewrites it from a known weight. Both the driver and the simulator read it.
"""
from __future__ import annotations

import re
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


def robust_level(counts) -> tuple[float, float]:
    """A plate's resting reading from raw samples: the mean of the middle 80 % and a robust sd
    (1.4826 MAD), so a knock or a spike moves neither."""
    data = np.sort(np.asarray(counts, dtype=np.float64))
    if data.size == 0:
        raise ValueError("no samples")
    cut = int(data.size * 0.1)
    middle = data[cut:data.size - cut] if data.size - 2 * cut > 0 else data
    return float(middle.mean()), float(1.4826 * np.median(np.abs(data - np.median(data))))


def _yaml_scalar(value: float) -> str:
    return yaml.safe_dump(float(value)).splitlines()[0]


def set_plate(text: str, plate_id: str, offset_counts: float, grams_per_count: float) -> str:
    """The calibration file's text with one plate's entry set to new constants; every other line (the
    header comment, the other plates and their formatting) stays as it was. Offsets keep 3 decimals,
    gains 6 significant digits (the factory files' precision). A file not in the block style this
    module writes is rewritten whole (leading comment kept); the result is checked by parsing it."""
    if grams_per_count <= 0:
        raise ValueError(f"grams_per_count must be > 0 (got {grams_per_count})")
    values = {"offset_counts": round(float(offset_counts), 3), "grams_per_count": float(f"{grams_per_count:.6g}")}
    before = yaml.safe_load(text)
    before = before.get("plates") if isinstance(before, dict) else None
    before = before if isinstance(before, dict) else {}
    try:
        out = _set_plate_lines(text, plate_id, values)
    except ValueError:
        header = "".join(text.splitlines(keepends=True)[:_header_end(text)])
        out = header + yaml.safe_dump({"plates": {**before, plate_id: values}}, sort_keys=True)
    after = yaml.safe_load(out)
    others = {k: v for k, v in before.items() if k != plate_id}
    if after["plates"].get(plate_id) != values or {k: v for k, v in after["plates"].items() if k != plate_id} != others:
        raise ValueError(f"rewriting the entry of {plate_id} would change other entries")
    return out


def _header_end(text: str) -> int:
    lines = text.splitlines()
    n = 0
    while n < len(lines) and (not lines[n].strip() or lines[n].lstrip().startswith("#")):
        n += 1
    return n


def _set_plate_lines(text: str, plate_id: str, values: dict) -> str:
    """In-place edit of a block-style `plates:` mapping; ValueError when the file is not in that style."""
    lines = text.splitlines(keepends=True)
    top = [i for i, ln in enumerate(lines) if re.match(r"^plates:\s*(#.*)?$", ln.rstrip("\r\n"))]
    if len(top) != 1:
        raise ValueError("no block-style 'plates:' line")
    start = top[0] + 1
    end = next((i for i in range(start, len(lines)) if lines[i].strip() and not lines[i][0].isspace()), len(lines))
    entries = [(i, m.group(1), m.group(2)) for i in range(start, end)
               if (m := re.match(r"^(\s+)([A-Za-z0-9_]+):\s*(#.*)?$", lines[i].rstrip("\r\n")))]
    if not entries or len({ind for _, ind, _ in entries}) != 1:
        raise ValueError("plate entries are not one block mapping")
    indent = entries[0][1]
    value_indent = indent * 2
    found = [k for k, (i, _, pid) in enumerate(entries) if pid == plate_id]
    newline = "\r\n" if lines[0].endswith("\r\n") else "\n"
    if not found:                   # a new plate: its block goes where sorting puts it
        block = [f"{indent}{plate_id}:{newline}"] + [f"{value_indent}{k}: {_yaml_scalar(v)}{newline}"
                                                     for k, v in sorted(values.items())]
        after = [i for i, _, pid in entries if pid > plate_id]
        at = after[0] if after else end
        if at == end and lines and not lines[-1].endswith(("\n", "\r")):
            lines[-1] += newline
        return "".join(lines[:at] + block + lines[at:])
    k = found[0]
    first = entries[k][0] + 1
    last = entries[k + 1][0] if k + 1 < len(entries) else end
    seen = set()
    for i in range(first, last):
        m = re.match(r"^(\s+)(offset_counts|grams_per_count):\s*([^#\s]+)(\s*#.*)?$", lines[i].rstrip("\r\n"))
        if m is None:
            if lines[i].strip() and not lines[i].lstrip().startswith("#"):
                raise ValueError(f"unexpected line in the entry of {plate_id}: {lines[i].strip()!r}")
            continue
        ending = lines[i][len(lines[i].rstrip("\r\n")):]
        lines[i] = f"{m.group(1)}{m.group(2)}: {_yaml_scalar(values[m.group(2)])}{m.group(4) or ''}{ending}"
        seen.add(m.group(2))
    missing = [f"{value_indent}{key}: {_yaml_scalar(values[key])}{newline}"
               for key in sorted(values) if key not in seen]
    return "".join(lines[:last] + missing + lines[last:])
