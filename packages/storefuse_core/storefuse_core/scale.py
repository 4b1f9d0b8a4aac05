"""A scale board as the driver sees it: frames in, calibrated PlateBlocks out.

The block handed to the shelf detector is the very array that goes into the PlateWeights
message (float32), so the live node and an offline replay of its bag detect identical events.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from storefuse_core.calibration import Calibration
from storefuse_core.errors import FrameError
from storefuse_core.events import PlateBlock
from storefuse_core.frame import FrameStats, parse_scale


@dataclass
class BoardStats(FrameStats):
    lost_samples: int = 0


class ScaleBoard:
    def __init__(self, board_id: str, plate_ids, calibration: Calibration, block_samples: int = 6):
        self.board_id = board_id
        self.plate_ids = tuple(plate_ids)
        self.offsets, self.gains, self.status = calibration.arrays(self.plate_ids)
        self.block_samples = block_samples
        self.stats = BoardStats()
        self._seq: list[int] = []
        self._stamps: list[int] = []
        self._rows: list[np.ndarray] = []
        self._last_seq: int | None = None

    def feed(self, line: bytes) -> PlateBlock | None:
        """One raw serial line; returns a full block when one is ready. Bad frames are counted."""
        try:
            sample = parse_scale(line, len(self.plate_ids))
        except FrameError as exc:
            self.stats.bad(exc)
            return None
        if self.stats.frames and sample.stamp_ns <= self.stats.last_stamp_ns:   # also across blocks
            self.stats.bad_frames += 1
            self.stats.last_error = "timestamp went backwards"
            return None
        if self._last_seq is not None and sample.seq != self._last_seq + 1:
            self.stats.seq_gaps += 1
            self.stats.lost_samples += max(0, sample.seq - self._last_seq - 1)
        self._last_seq = sample.seq
        self.stats.frames += 1
        self.stats.last_stamp_ns = sample.stamp_ns
        self._seq.append(sample.seq)
        self._stamps.append(sample.stamp_ns)
        self._rows.append((sample.counts - self.offsets) * self.gains)
        if len(self._rows) >= self.block_samples:
            return self.flush()
        return None

    def restart(self) -> None:
        """Drop a half-filled block and forget the sequence number: frames the driver chose not to read
        (a lifecycle node while inactive) are no gap. Stamps must still increase."""
        self._seq, self._stamps, self._rows = [], [], []
        self._last_seq = None

    def flush(self) -> PlateBlock | None:
        if not self._rows:
            return None
        block = PlateBlock(self.board_id, self._seq[0], np.array(self._stamps, dtype=np.int64),
                           np.vstack(self._rows).astype(np.float32), self.status.copy())
        self._seq, self._stamps, self._rows = [], [], []
        return block
