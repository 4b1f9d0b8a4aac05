"""Linters run as tests."""
import subprocess
import sys

from sftest import ROOT


def test_ruff_is_clean():
    paths = [p for p in ("packages", "tests", "scripts", "bench") if (ROOT / p).is_dir()]
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", *paths],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_core_never_imports_rclpy():
    core = ROOT / "packages" / "storefuse_core"
    offenders = [str(p) for p in core.rglob("*.py")
                 if any(s in p.read_text() for s in ("import rclpy", "from rclpy"))
                 ]
    assert offenders == []
