"""`storefuse calibrate` against a pseudo-terminal that streams a scale board's raw frames, and the
calibration file rewrite it relies on (one plate's entry changes, nothing else)."""
from __future__ import annotations

import difflib
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from storefuse_core.calibration import load_calibration, robust_level, set_plate
from storefuse_core.frame import scale_frame
from storefuse_core.layout import load_store
from storefuse_core.simulation.pty import PtyDevice

pytest.importorskip("storefuse_tools.calibrate")
from storefuse_tools.calibrate import CalibrationFailed, run_calibration  # noqa: E402

STORE = load_store("minimart")
BOARD, PLATE = "scale_G1", "G1S2P3"
PLATES = STORE.board_plates(BOARD)
TRUE_OFFSET, TRUE_GAIN = 81_234.0, 0.2437            # what the plate really is (the file says otherwise)


class Board(threading.Thread):
    """A scale board streaming raw counts (with noise and some line garbage) into a PTY."""

    def __init__(self, dev_dir: Path, rate_hz: float = 300.0):
        super().__init__(daemon=True)
        self.pty = PtyDevice(BOARD, dev_dir)
        self.grams = 0.0                               # on the plate under calibration
        self.rate_hz, self.stop_flag = rate_hz, threading.Event()
        cal = load_calibration(STORE.root / "calibration.yaml")
        self.off, self.gain, _ = cal.arrays(PLATES)
        self.col = PLATES.index(PLATE)
        self.off[self.col], self.gain[self.col] = TRUE_OFFSET, TRUE_GAIN
        self.rng = np.random.default_rng(5)

    def run(self):
        k = 0
        while not self.stop_flag.is_set():
            k += 1
            load = np.full(len(PLATES), 250.0)
            load[self.col] = self.grams
            counts = np.round(self.off + load / self.gain + self.rng.normal(0, 3.0, len(PLATES)))
            if k % 97 == 0:
                counts[self.col] += 5000                # a knock: the robust mean ignores it
            self.pty.write(scale_frame(k, 1_000_000_000 + k * 3_333_333, counts))
            if k % 50 == 0:
                self.pty.write(b"$SCL,garbage*0000\r\n")
            time.sleep(1.0 / self.rate_hz)

    def close(self):
        self.stop_flag.set()
        self.join(timeout=2)
        self.pty.close()


@pytest.fixture
def board(tmp_path):
    b = Board(tmp_path / "dev")
    b.start()
    yield b
    b.close()


@pytest.fixture
def cal_file(tmp_path) -> Path:
    path = tmp_path / "calibration.yaml"
    shutil.copy(STORE.root / "calibration.yaml", path)
    return path


def _changed_lines(before: str, after: str) -> list[str]:
    return [ln for ln in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
            if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]


def test_interactive_flow_writes_only_that_plate(board, cal_file):
    before = cal_file.read_text()
    prompts = []

    def prompt(message):                     # the installer does what the prompt says
        prompts.append(message)
        board.grams = 500.0 if "Place" in message else 0.0

    result = run_calibration("minimart", BOARD, PLATE, str(board.pty.path), 500.0, samples=90, prompt=prompt,
                             settle_s=0.2, timeout_s=20, calibration_file=cal_file, echo=lambda m: None)
    assert len(prompts) == 2 and "Clear" in prompts[0] and "500 g" in prompts[1]
    after = cal_file.read_text()
    assert after.splitlines()[0] == before.splitlines()[0] and after.startswith("# ")     # header kept
    changed = _changed_lines(before, after)
    assert len(changed) == 4 and all("offset_counts" in ln or "grams_per_count" in ln for ln in changed)
    new, old = load_calibration(cal_file), load_calibration(STORE.root / "calibration.yaml")
    assert new.offsets[PLATE] == pytest.approx(TRUE_OFFSET, abs=1.5)
    assert new.gains[PLATE] == pytest.approx(TRUE_GAIN, rel=2e-3)
    assert {p: v for p, v in new.offsets.items() if p != PLATE} == {p: v for p, v in old.offsets.items() if p != PLATE}
    assert {p: v for p, v in new.gains.items() if p != PLATE} == {p: v for p, v in old.gains.items() if p != PLATE}
    assert result["bad_frames"] > 0 and result["file"] == str(cal_file)
    # 500 g through the new constants reads 500 g
    assert (TRUE_OFFSET + 500 / TRUE_GAIN - new.offsets[PLATE]) * new.gains[PLATE] == pytest.approx(500, abs=1.0)


def test_cli_non_interactive_writes_the_store_file(board, tmp_path):
    stores = tmp_path / "stores"
    shutil.copytree(STORE.root, stores / "minimart")
    target = stores / "minimart" / "calibration.yaml"
    before = target.read_text()
    checkout_before = (STORE.root / "calibration.yaml").read_text()
    env = dict(__import__("os").environ, STOREFUSE_STORES=str(stores))
    cmd = [sys.executable, "-m", "storefuse_tools.cli", "calibrate", "--store", "minimart", "--board", BOARD,
           "--plate", PLATE, "--port", str(board.pty.path), "--known-grams", "500", "--samples", "60",
           "--yes", "--wait-s", "0.8", "--timeout-s", "20"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    out = []
    for line in proc.stdout:                 # place the weight when told to
        out.append(line)
        if line.startswith("Place"):
            board.grams = 500.0
    assert proc.wait(timeout=60) == 0, proc.stderr.read()
    assert any("Clear plate" in ln for ln in out) and f"-> {target}" in out[-1]
    new = load_calibration(target)
    assert new.offsets[PLATE] == pytest.approx(TRUE_OFFSET, abs=2.0)
    assert new.gains[PLATE] == pytest.approx(TRUE_GAIN, rel=3e-3)
    assert len(_changed_lines(before, target.read_text())) == 4
    assert (STORE.root / "calibration.yaml").read_text() == checkout_before     # the checkout is untouched


def test_cli_refuses_a_plate_of_another_board(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "storefuse_tools.cli", "calibrate", "--store", "minimart",
                           "--board", BOARD, "--plate", "G2S1P1", "--port", str(tmp_path / "none"),
                           "--known-grams", "500", "--yes"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "is not on board" in proc.stderr


def test_no_port_fails_with_the_reason_and_leaves_the_file(cal_file):
    before = cal_file.read_text()
    with pytest.raises(CalibrationFailed, match="cannot open"):
        run_calibration("minimart", BOARD, PLATE, "/nonexistent/tty", 500.0, samples=10, wait_s=0.0, timeout_s=1.0,
                        calibration_file=cal_file, echo=lambda m: None)
    assert cal_file.read_text() == before


def test_a_weight_that_does_not_change_the_reading_is_refused(board, cal_file):
    before = cal_file.read_text()
    with pytest.raises(CalibrationFailed, match="within the noise"):
        run_calibration("minimart", BOARD, PLATE, str(board.pty.path), 500.0, samples=40, prompt=lambda m: None,
                        settle_s=0.0, timeout_s=20, calibration_file=cal_file, echo=lambda m: None)
    assert cal_file.read_text() == before


def test_set_plate_keeps_every_other_line():
    text = (STORE.root / "calibration.yaml").read_text()
    out = set_plate(text, "G1S1P2", 35400.123456, 0.2412345678)
    assert _changed_lines(text, out) == ["-    grams_per_count: 0.241226", "-    offset_counts: 35416.0",
                                         "+    grams_per_count: 0.241235", "+    offset_counts: 35400.123"]


def test_set_plate_adds_a_missing_plate_in_order_and_handles_other_styles():
    text = "# header\nplates:\n  A1:\n    grams_per_count: 0.2\n    offset_counts: 1.0\n  C1:\n" \
           "    grams_per_count: 0.3\n    offset_counts: 2.0\n"
    out = set_plate(text, "B1", 5.0, 0.25)
    assert list(yaml.safe_load(out)["plates"]) == ["A1", "B1", "C1"] and out.startswith("# header\n")
    assert _changed_lines(text, out) == ["+  B1:", "+    grams_per_count: 0.25", "+    offset_counts: 5.0"]
    flow = "# flow style\nplates: {A1: {offset_counts: 1, grams_per_count: 0.2}}\n"
    out = set_plate(flow, "A1", 7.0, 0.5)
    assert out.startswith("# flow style\n")
    assert yaml.safe_load(out)["plates"]["A1"] == {"offset_counts": 7.0, "grams_per_count": 0.5}
    with pytest.raises(ValueError):
        set_plate(text, "A1", 1.0, -0.2)


def test_robust_level_ignores_a_knock():
    level, sd = robust_level([100] * 45 + [101] * 45 + [9000] * 5)
    assert level == pytest.approx(100.5, abs=0.2) and sd < 2
    level, sd = robust_level(np.random.default_rng(1).normal(5000, 3.0, 2000))
    assert level == pytest.approx(5000, abs=0.3) and sd == pytest.approx(3.0, rel=0.1)
