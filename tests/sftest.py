"""Paths and helpers shared by the system tests (a uniquely named module: every package's test
folder has its own conftest.py, so `from conftest import ...` would be ambiguous)."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INSTALL = ROOT / "ros2_ws" / "install"


def node_exe(pkg: str, exe: str) -> Path:
    path = INSTALL / pkg / "lib" / pkg / exe
    assert path.is_file(), f"{path} missing: run scripts/setup.sh"
    return path
