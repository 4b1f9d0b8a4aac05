"""rosbag2 folders (metadata.yaml + MCAP) through `rosbags`: no ROS installation needed.

The storefuse message definitions are registered from the interface package's .msg files and
embedded in every bag, so Foxglove, `ros2 bag` and `rosbags` decode them anywhere.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from storefuse_core.errors import StorefuseError

INTERFACES = "storefuse_interfaces"


def msg_dirs() -> list[Path]:
    """Where the storefuse .msg files are: the installed share dir, or the source tree."""
    dirs = []
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix:
            dirs.append(Path(prefix) / "share" / INTERFACES / "msg")
    here = Path(__file__).resolve()
    dirs += [parent / "packages" / INTERFACES / "msg" for parent in here.parents]
    return [d for d in dirs if d.is_dir()]


def make_typestore():
    store = get_typestore(Stores.ROS2_KILTED)
    found = msg_dirs()
    if not found:
        raise StorefuseError("storefuse_interfaces .msg files not found (build the workspace first)")
    types = {}
    for path in sorted(found[0].glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"{INTERFACES}/msg/{path.stem}"))
    store.register(types)
    return store


@dataclass
class BagMessage:
    topic: str
    msgtype: str
    log_ns: int
    raw: bytes
    msg: object | None


class BagWriter:
    """Writes CDR bytes as they came off the wire (or serialised here) into a rosbag2 folder."""

    def __init__(self, path: str | Path, custom_data: dict[str, str] | None = None, typestore=None):
        self.path = Path(path)
        if self.path.exists():
            raise StorefuseError(f"{self.path} already exists; rosbag2 never overwrites a bag")
        self.typestore = typestore or make_typestore()
        self.writer = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        self.writer.open()
        for key, value in (custom_data or {}).items():
            self.writer.set_custom_data(key, value)
        self.connections: dict[str, object] = {}
        self.counts: dict[str, int] = {}

    def add_topic(self, topic: str, msgtype: str) -> None:
        if topic not in self.connections:
            self.connections[topic] = self.writer.add_connection(topic, msgtype, typestore=self.typestore)
            self.counts[topic] = 0

    def write_raw(self, topic: str, log_ns: int, data: bytes) -> None:
        self.writer.write(self.connections[topic], log_ns, data)
        self.counts[topic] += 1

    def write(self, topic: str, msgtype: str, log_ns: int, msg) -> None:
        self.add_topic(topic, msgtype)
        self.write_raw(topic, log_ns, self.typestore.serialize_cdr(msg, msgtype))

    def close(self) -> None:
        self.writer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_bag(path: str | Path, topics: list[str] | None = None, decode: bool = True) -> Iterator[BagMessage]:
    """Messages in log-time order. A truncated or damaged bag raises StorefuseError naming it."""
    from rosbags.highlevel import AnyReader
    path = Path(path)
    if not (path / "metadata.yaml").is_file():
        raise StorefuseError(f"{path}: not a rosbag2 folder (no metadata.yaml)")
    typestore = make_typestore()
    try:
        with AnyReader([path], default_typestore=typestore) as reader:
            conns = [c for c in reader.connections if topics is None or c.topic in topics]
            for conn, log_ns, raw in reader.messages(connections=conns):
                msg = reader.deserialize(raw, conn.msgtype) if decode else None
                yield BagMessage(conn.topic, conn.msgtype, log_ns, bytes(raw), msg)
    except StorefuseError:
        raise
    except Exception as exc:  # rosbags raises several unrelated types for damaged files
        raise StorefuseError(f"{path}: cannot read bag: {type(exc).__name__}: {exc}") from exc


def custom_data(path: str | Path) -> dict[str, str]:
    import yaml
    meta = yaml.safe_load((Path(path) / "metadata.yaml").read_text())
    return dict(meta.get("rosbag2_bagfile_information", {}).get("custom_data") or {})
