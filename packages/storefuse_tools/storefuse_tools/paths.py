"""Where the installed bringup files are (share/storefuse_bringup), or the source checkout's."""
from __future__ import annotations

import os
from pathlib import Path


def bringup_share() -> Path:
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        share = Path(prefix) / "share" / "storefuse_bringup"
        if prefix and (share / "launch").is_dir():
            return share
    for parent in Path(__file__).resolve().parents:
        if (parent / "launch").is_dir() and (parent / "package.xml").is_file():
            return parent
    raise FileNotFoundError("storefuse_bringup not found: source scripts/env.sh (or ros2_ws/install/setup.bash)")


def ros_env(domain_id: int | None = None, base: dict | None = None) -> dict[str, str]:
    """The environment every storefuse process gets: DDS on loopback, our Fast DDS profile."""
    env = dict(os.environ if base is None else base)
    if domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(domain_id)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    share = bringup_share()
    profile = share / "config" / "fastdds.xml"
    if profile.is_file():
        env.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(profile))
    env.setdefault("RCUTILS_COLORIZED_OUTPUT", "0")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env
