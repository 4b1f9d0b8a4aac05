"""Paths and helpers shared by the system tests (a uniquely named module: every package's test
folder has its own conftest.py, so `from conftest import ...` would be ambiguous)."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INSTALL = ROOT / "ros2_ws" / "install"


def live_run_of(scenario: Path, folder: Path, first_domain: int):
    """A scenario run live at 3x, every node its own process over DDS, in a domain of its own (per
    test module, and per pytest process so parallel runs do not meet)."""
    import os

    from storefuse_tools.live import run_live
    return run_live(scenario, folder / "run", rate=3.0, domain_id=first_domain + os.getpid() % 50, timeout_s=240)


def node_exe(pkg: str, exe: str) -> Path:
    path = INSTALL / pkg / "lib" / pkg / exe
    assert path.is_file(), f"{path} missing: run scripts/setup.sh"
    return path


def diagnostics_of(client, name: str) -> dict:
    """The latest /diagnostics status named `name`, kept up to date while the client spins:
    its key/values plus `_level` and `_message`."""
    from diagnostic_msgs.msg import DiagnosticArray
    latest: dict = {}

    def on(msg):
        for s in msg.status:
            if s.name == name:
                latest.clear()
                latest.update({kv.key: kv.value for kv in s.values}, _level=s.level, _message=s.message)
    client.node.create_subscription(DiagnosticArray, "/diagnostics", on, 50)
    return latest
