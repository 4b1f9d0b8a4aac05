"""ScaleBoard: raw serial lines in, calibrated float32 PlateBlocks out; bad input is counted, never raised."""
from __future__ import annotations

import numpy as np
import pytest

from storefuse_core.calibration import Calibration
from storefuse_core.frame import encode, scale_frame
from storefuse_core.scale import ScaleBoard

PLATES = ("G1S1P1", "G1S1P2", "G1S1P3")
CAL = Calibration({"G1S1P1": 1000.0, "G1S1P2": 2000.0, "G1S1P3": 3000.0},
                  {"G1S1P1": 0.25, "G1S1P2": 0.5, "G1S1P3": 0.2})
PERIOD_NS = 16_667_000


def frames(n, start_seq=1, counts=(1400, 2100, 3500)):
    return [scale_frame(start_seq + i, 1_000_000_000 + i * PERIOD_NS, counts) for i in range(n)]


def feed_all(board, lines):
    return [b for b in (board.feed(line) for line in lines) if b is not None]


def test_blocks_of_block_samples_with_calibration_applied():
    board = ScaleBoard("scale_G1", PLATES, CAL, block_samples=6)
    blocks = feed_all(board, frames(13))
    assert len(blocks) == 2
    b = blocks[0]
    assert b.board_id == "scale_G1" and b.first_seq == 1
    assert b.grams.dtype == np.float32 and b.grams.shape == (6, 3)
    assert b.stamps_ns.dtype == np.int64
    assert b.stamps_ns.tolist() == [1_000_000_000 + i * PERIOD_NS for i in range(6)]
    np.testing.assert_allclose(b.grams[0], [(1400 - 1000) * 0.25, (2100 - 2000) * 0.5, (3500 - 3000) * 0.2])
    assert b.plate_status.tolist() == [0, 0, 0]
    assert blocks[1].first_seq == 7
    rest = board.flush()
    assert rest is not None and rest.grams.shape == (1, 3) and rest.first_seq == 13
    assert board.flush() is None
    assert board.stats.frames == 13 and board.stats.bad_frames == 0 and board.stats.seq_gaps == 0


def test_uncalibrated_plate_reads_zero_with_status_2():
    cal = Calibration({"G1S1P1": 1000.0}, {"G1S1P1": 0.25})
    board = ScaleBoard("scale_G1", PLATES, cal, block_samples=2)
    block = feed_all(board, frames(2))[0]
    assert block.plate_status.tolist() == [0, 2, 2]
    assert block.grams[:, 1:].tolist() == [[0.0, 0.0], [0.0, 0.0]]
    assert block.grams[0, 0] == pytest.approx(100.0)


def test_bad_frames_are_counted_and_dropped_without_raising():
    board = ScaleBoard("scale_G1", PLATES, CAL, block_samples=4)
    good = frames(4)
    bad = [
        b"garbage\r\n",
        good[1][:10] + b"\r\n",                                    # truncated
        good[1][:-4] + b"\r\n",                                    # checksum cut short
        scale_frame(99, 1_000_000_000, [1, 2]),                    # wrong plate count
        encode(["SCL", "5", "1", "1", "2", "x"]),                  # non-integer reading
        "$SCL,1,2,\u00e9*0000\r\n".encode("utf-8"),               # non-ASCII
    ]
    lines = [good[0], *bad, good[1], good[2], good[3]]
    blocks = feed_all(board, lines)
    assert len(blocks) == 1 and blocks[0].grams.shape == (4, 3)
    assert board.stats.bad_frames == len(bad)
    assert board.stats.frames == 4
    assert board.stats.seq_gaps == 0
    assert board.stats.last_error
    assert sum(board.stats.errors.values()) == len(bad)


def test_sequence_gaps_are_counted_with_lost_samples():
    board = ScaleBoard("scale_G1", PLATES, CAL, block_samples=100)
    lines = frames(10)
    kept = lines[:3] + lines[6:]                   # seq 4, 5, 6 lost on the wire
    feed_all(board, kept)
    assert board.stats.seq_gaps == 1
    assert board.stats.lost_samples == 3
    assert board.stats.frames == 7
    block = board.flush()
    assert block.stamps_ns.shape == (7,)


def test_timestamp_going_backwards_is_dropped_even_across_blocks():
    board = ScaleBoard("scale_G1", PLATES, CAL, block_samples=2)
    lines = frames(4)
    blocks = feed_all(board, [lines[0], lines[1], lines[1], lines[2], lines[0], lines[3]])
    assert board.stats.bad_frames == 2
    stamps = np.concatenate([b.stamps_ns for b in blocks])
    assert (np.diff(stamps) > 0).all()
    assert len(stamps) == 4


def test_minimart_plate_order_is_the_board_order(minimart):
    plates = minimart.board_plates("scale_G1")
    cal = Calibration({p: 0.0 for p in plates}, {p: 1.0 for p in plates})
    board = ScaleBoard("scale_G1", plates, cal, block_samples=1)
    block = board.feed(scale_frame(1, 10_000, range(len(plates))))
    assert block.grams.shape == (1, 16)
    assert block.grams[0].tolist() == [float(i) for i in range(16)]
