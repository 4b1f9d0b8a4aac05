"""Load-cell calibration: grams = (counts - offset) * grams_per_count."""
from __future__ import annotations

import numpy as np
import pytest

from storefuse_core.calibration import Calibration, factory_calibration, load_calibration, solve_gain
from storefuse_core.errors import LayoutError


def test_save_load_round_trip(tmp_path):
    cal = Calibration({"G1S1P1": 166070.0, "G1S1P2": 35416.25}, {"G1S1P1": 0.245641, "G1S1P2": 0.241226})
    path = tmp_path / "calibration.yaml"
    path.write_text(cal.to_yaml())
    back = load_calibration(path)
    assert back.offsets == cal.offsets
    assert back.gains == cal.gains


def test_factory_calibration_round_trips_and_is_seeded(tmp_path):
    plates = [f"G1S1P{i}" for i in range(1, 5)]
    cal = factory_calibration(plates, seed=3)
    assert cal == factory_calibration(plates, seed=3)
    assert cal != factory_calibration(plates, seed=4)
    assert all(0.2 < g < 0.26 for g in cal.gains.values())
    (tmp_path / "c.yaml").write_text(cal.to_yaml())
    back = load_calibration(tmp_path / "c.yaml")
    assert back.gains == cal.gains
    assert back.offsets == pytest.approx(cal.offsets)


def test_arrays_follow_the_requested_order_and_flag_uncalibrated():
    cal = Calibration({"a": 10.0, "b": 20.0}, {"a": 0.5, "b": 0.25})
    off, gain, status = cal.arrays(["b", "missing", "a"])
    assert off.tolist() == [20.0, 0.0, 10.0]
    assert gain.tolist() == [0.25, 0.0, 0.5]
    assert status.dtype == np.uint8 and status.tolist() == [0, 2, 0]


def test_solve_gain_from_a_known_weight():
    offset, gain = solve_gain(100_000.0, 104_000.0, 1000.0)
    assert offset == 100_000.0
    assert gain == pytest.approx(0.25)
    assert (104_000.0 - offset) * gain == pytest.approx(1000.0)


def test_solve_gain_rejects_no_change():
    with pytest.raises(ValueError, match="did not change"):
        solve_gain(5000.0, 5000.0, 500.0)


def test_minimart_calibration_covers_every_plate(minimart):
    cal = load_calibration(minimart.root / "calibration.yaml")
    assert set(cal.gains) == set(minimart.plates)
    _, _, status = cal.arrays(minimart.board_plates("scale_G1"))
    assert (status == 0).all()


@pytest.mark.parametrize("text, reason", [
    ("plates: [1, 2", "cannot read calibration"),                                 # bad YAML
    ("- just a list\n", "needs a 'plates' mapping"),
    ("plates: 3\n", "needs a 'plates' mapping"),
    ("plates:\n  G1S1P1: {offset_counts: 1}\n", "G1S1P1 needs offset_counts and grams_per_count"),
    ("plates:\n  G1S1P1: {offset_counts: x, grams_per_count: 0.2}\n", "G1S1P1 needs"),
    ("plates:\n  G1S1P1: 7\n", "G1S1P1 needs"),
    ("plates:\n  G1S1P1: {offset_counts: 1, grams_per_count: 0}\n", "must be > 0"),
    ("plates:\n  G1S1P1: {offset_counts: 1, grams_per_count: -0.2}\n", "must be > 0"),
])
def test_bad_files_raise_layout_error(tmp_path, text, reason):
    path = tmp_path / "calibration.yaml"
    path.write_text(text)
    with pytest.raises(LayoutError, match=reason) as info:
        load_calibration(path)
    assert str(path) in str(info.value)


def test_missing_file_raises_layout_error(tmp_path):
    with pytest.raises(LayoutError, match="cannot read calibration"):
        load_calibration(tmp_path / "nope.yaml")
