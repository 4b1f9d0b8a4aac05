"""storefuse_core is pure Python: it never imports rclpy (DESIGN.md)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "storefuse_core"
# Spelled in two parts so that a grep of this package for the import statement stays empty.
ROS = "rcl" + "py"


def test_package_sources_never_import_rclpy():
    sources = sorted(PACKAGE.rglob("*.py"))
    assert len(sources) > 20
    offenders = [str(p.relative_to(PACKAGE)) for p in sources
                 if any(s in p.read_text(encoding="utf-8") for s in (f"import {ROS}", f"from {ROS}"))]
    assert offenders == []


def test_importing_every_module_does_not_load_rclpy():
    modules = sorted("storefuse_core." + ".".join(p.relative_to(PACKAGE).with_suffix("").parts)
                     for p in PACKAGE.rglob("*.py") if p.name != "__init__.py")
    code = ("import importlib, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'rclpy'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
