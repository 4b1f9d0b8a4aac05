"""`storefuse calibrate`: the installer's known-weight calibration of one plate, on the live board.

Reads the board's raw `$SCL` frames from its serial port (the same LinePort and frame parser the
driver uses; stop the board's shelf_scale driver first, or deactivate it: one reader per port),
measures the empty plate, asks for the known weight (or, with --yes, waits --wait-s), measures
again, solves offset and grams-per-count and rewrites that plate's entry in
urdf_store/<store>/calibration.yaml (every other line is kept). cli.py calls register(app).
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, Optional

import typer


class CalibrationFailed(Exception):
    """One message for the installer; the file is left untouched."""


def measure(port, n_plates: int, column: int, samples: int, timeout_s: float) -> tuple[float, float, int]:
    """`samples` valid frames from the port (stale lines dropped first): the plate's resting counts
    (robust mean), their sd, and how many bad frames were skipped."""
    from storefuse_core.calibration import robust_level
    from storefuse_core.errors import FrameError
    from storefuse_core.frame import parse_scale
    port.drain()
    values, bad, last_error = [], 0, ""
    deadline = time.monotonic() + timeout_s
    while len(values) < samples:
        if time.monotonic() > deadline:
            why = port.stats.last_error if not port.stats.connected else \
                (f"{bad} bad frames, last: {last_error}" if bad else "no frames")
            raise CalibrationFailed(f"only {len(values)} of {samples} samples from {port.url} in {timeout_s:g} s "
                                    f"({why})")
        lines = port.drain(samples - len(values))
        if not lines:
            time.sleep(0.01)
            continue
        for line in lines:
            try:
                values.append(int(parse_scale(line, n_plates).counts[column]))
            except FrameError as exc:
                bad, last_error = bad + 1, str(exc)
    level, sd = robust_level(values)
    return level, sd, bad


def run_calibration(store_name: str, board: str, plate: str, port_url: str, known_grams: float, *,
                    samples: int = 120, prompt: Optional[Callable[[str], None]] = None, wait_s: float = 5.0,
                    settle_s: float = 1.0, timeout_s: float = 30.0, baudrate: int = 115200,
                    calibration_file: Optional[Path] = None, echo: Callable[[str], None] = print) -> dict:
    """The whole flow. `prompt(message)` returns once the installer has done what it says; without
    one the flow is non-interactive: it prints the instruction and waits `wait_s`."""
    from storefuse_core.calibration import load_calibration, set_plate, solve_gain
    from storefuse_core.errors import StorefuseError
    from storefuse_core.layout import load_store
    from storefuse_core.port import LinePort
    if known_grams <= 0:
        raise CalibrationFailed("--known-grams must be > 0")
    if samples < 5:
        raise CalibrationFailed("--samples must be at least 5")
    try:
        store = load_store(store_name)
        plates = store.board_plates(board)
        path = Path(calibration_file) if calibration_file else store.root / "calibration.yaml"
        old = load_calibration(path)
    except StorefuseError as exc:
        raise CalibrationFailed(str(exc)) from None
    if plate not in plates:
        raise CalibrationFailed(f"plate {plate!r} is not on board {board!r} (its plates: {', '.join(plates)})")
    column = plates.index(plate)

    def step(message: str) -> None:
        if prompt is not None:
            prompt(message)
            time.sleep(settle_s)
        else:
            echo(f"{message} (measuring in {wait_s:g} s)")
            time.sleep(wait_s)

    port = LinePort(port_url, baudrate).start()
    try:
        step(f"Clear plate {plate}: nothing on it, nothing touching it.")
        empty, empty_sd, bad1 = measure(port, len(plates), column, samples, timeout_s)
        echo(f"empty: {empty:.1f} counts (sd {empty_sd:.1f}, {samples} samples)")
        step(f"Place the {known_grams:g} g weight on plate {plate}, centred, and let go.")
        loaded, loaded_sd, bad2 = measure(port, len(plates), column, samples, timeout_s)
        echo(f"loaded: {loaded:.1f} counts (sd {loaded_sd:.1f}, {samples} samples)")
    finally:
        port.stop()
    span = loaded - empty
    noise = max(empty_sd, loaded_sd, 1.0)
    if abs(span) < 10 * noise:
        raise CalibrationFailed(f"the weight changed the reading by {span:+.1f} counts, within the noise "
                                f"(sd {noise:.1f}): was it on plate {plate} of {board}?")
    offset, gain = solve_gain(empty, loaded, known_grams)
    if gain <= 0:
        raise CalibrationFailed(f"the reading went down by {-span:.1f} counts with the weight on: was the weight on "
                                "the plate while measuring empty, or is the load cell wired in reverse?")
    text = path.read_text(encoding="utf-8")
    new_text = set_plate(text, plate, offset, gain)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(new_text, encoding="utf-8")
    os.replace(tmp, path)
    new = load_calibration(path)
    result = {"plate": plate, "offset_counts": new.offsets[plate], "grams_per_count": new.gains[plate],
              "old_offset_counts": old.offsets.get(plate), "old_grams_per_count": old.gains.get(plate),
              "noise_g": round(noise * new.gains[plate], 3), "bad_frames": bad1 + bad2, "file": str(path)}
    was = (f" (was {old.offsets[plate]:g} / {old.gains[plate]:g})" if plate in old.offsets else " (new entry)")
    echo(f"{plate}: offset_counts {new.offsets[plate]:g}, grams_per_count {new.gains[plate]:g}{was}; "
         f"noise {result['noise_g']:.2f} g per sample -> {path}")
    return result


def register(app: typer.Typer) -> None:
    @app.command("calibrate")
    def calibrate(store: str = typer.Option(..., "--store", help="store under urdf_store/"),
                  board: str = typer.Option(..., "--board", help="scale board, e.g. scale_G1"),
                  plate: str = typer.Option(..., "--plate", help="plate on that board, e.g. G1S1P1"),
                  port: str = typer.Option(..., "--port", help="the board's serial port (path or pyserial URL)"),
                  known_grams: float = typer.Option(..., "--known-grams", help="the reference weight, grams"),
                  samples: int = typer.Option(120, "--samples", help="frames averaged per measurement"),
                  yes: bool = typer.Option(False, "--yes", help="no prompts: wait --wait-s before each measurement"),
                  wait_s: float = typer.Option(5.0, "--wait-s", help="with --yes: seconds to clear/place the weight"),
                  timeout_s: float = typer.Option(30.0, "--timeout-s", help="give up on a measurement after this"),
                  baudrate: int = typer.Option(115200, "--baudrate"),
                  calibration_file: Optional[Path] = typer.Option(
                      None, "--calibration-file", help="default: urdf_store/<store>/calibration.yaml")):
        """Calibrate one plate with a known weight, from its board's serial port; rewrites its entry only."""
        def ask(message: str) -> None:
            typer.prompt(f"{message} Press Enter when done", default="", show_default=False)
        try:
            run_calibration(store, board, plate, port, known_grams, samples=samples, prompt=None if yes else ask,
                            wait_s=wait_s, timeout_s=timeout_s, baudrate=baudrate,
                            calibration_file=calibration_file, echo=lambda m: typer.echo(m))
        except (CalibrationFailed, ValueError, OSError) as exc:
            typer.echo(f"storefuse: calibrate: {exc}", err=True)
            raise typer.Exit(2) from None
