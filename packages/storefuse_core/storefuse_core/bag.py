"""rosbag2 folders (metadata.yaml + MCAP) through `rosbags`: no ROS installation needed.

The storefuse message definitions are registered from the interface package's .msg files and
embedded in every bag, so Foxglove, `ros2 bag` and `rosbags` decode them anywhere.

A bag may be split into several MCAP files (`<bag>_0.mcap`, `<bag>_1.mcap`, ... listed in
metadata.yaml) by size or by duration, and its MCAP chunks may be zstd-compressed; `read_bag`
yields the same messages in the same order either way.
"""
from __future__ import annotations

import heapq
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from storefuse_core.errors import StorefuseError

INTERFACES = "storefuse_interfaces"
# MCAP chunk compression when a writer is not told otherwise. zstd (level 3) makes a simulated
# minimart day 3.1x and a grocery peak 2.6x smaller for < 1 us more writer CPU per message and
# ~0.1 s more reading per 100k messages (docs/benchmarks.md, "Recorder"); "" writes raw chunks.
DEFAULT_COMPRESSION = "zstd"
COMPRESSIONS = ("", "zstd")
_SIZE_CHECK_BYTES = 64 * 1024      # how much a file grows between two looks at its size


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


def _yaml():
    from ruamel.yaml import YAML
    yaml = YAML(typ="safe")
    yaml.default_flow_style = False
    return yaml


class BagWriter:
    """Writes CDR bytes as they came off the wire (or serialised here) into a rosbag2 folder.

    `split_bytes` / `split_s` start a new MCAP file once the current one is that big (on disk plus
    the chunk still in memory, uncompressed) or spans that much log time; 0 never splits. A topic's type and offered
    QoS are fixed by its first `add_topic`: every file of the bag and metadata.yaml carry the same.
    """

    def __init__(self, path: str | Path, custom_data: dict[str, str] | None = None, typestore=None, *,
                 compression: str | None = None, split_bytes: int = 0, split_s: float = 0.0):
        self.path = Path(path)
        if self.path.exists():
            raise StorefuseError(f"{self.path} already exists; rosbag2 never overwrites a bag")
        self.compression = DEFAULT_COMPRESSION if compression is None else compression
        if self.compression not in COMPRESSIONS:
            raise StorefuseError(f"unknown bag compression {self.compression!r} (known: none, zstd)")
        if split_bytes < 0 or split_s < 0:
            raise StorefuseError("split size and duration must be >= 0")
        self.typestore = typestore or make_typestore()
        self.split_bytes, self.split_ns = int(split_bytes), int(split_s * 1e9)
        self.split = bool(self.split_bytes or self.split_ns)
        self.custom: dict[str, str] = dict(custom_data or {})
        self.topics: dict[str, tuple[str, tuple]] = {}      # topic -> (msgtype, offered QoS), in order
        self.connections: dict[str, object] = {}            # topic -> connection of the open file
        self.counts: dict[str, int] = {}
        self.bytes_written = 0                               # serialized payload, all files
        self.files: list[Path] = []                          # every MCAP file, the open one last
        self._parts: list[dict] = []                         # metadata of the closed files
        self.writer: Writer | None = None
        self.closed = False
        if self.split:
            self.path.mkdir(parents=True)
        self._open_part()

    # -- files -------------------------------------------------------------------------------
    def _open_part(self) -> None:
        if self.split:      # rosbags names a file after its folder: write it in <bag>_<n>/, move it up at close
            folder = self.path / f"{self.path.name}_{len(self.files)}"
        else:
            folder = self.path
        self.writer = Writer(folder, version=9, storage_plugin=StoragePlugin.MCAP)
        if self.compression == "zstd":
            self.writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
        self.writer.open()
        self._folder = folder
        self.files.append(folder / f"{folder.name}.mcap")
        self._part_start = self._part_end = None
        self._part_count = 0
        self._unchecked = 0
        self.connections = {}
        for topic in self.topics:
            self._connect(topic)

    def _connect(self, topic: str) -> None:
        msgtype, qos = self.topics[topic]
        self.connections[topic] = self.writer.add_connection(topic, msgtype, typestore=self.typestore,
                                                             offered_qos_profiles=list(qos))

    def _close_part(self) -> None:
        if not self.split:
            for key, value in self.custom.items():
                self.writer.set_custom_data(key, value)
            self.writer.close()
            return
        self.writer.close()
        meta_path = self._folder / "metadata.yaml"
        info = _yaml().load(meta_path.read_text())["rosbag2_bagfile_information"]
        final = self.path / self.files[-1].name
        self.files[-1].replace(final)
        self.files[-1] = final
        meta_path.unlink()
        self._folder.rmdir()
        info["files"][0]["path"] = final.name
        self._parts.append(info)

    def _due(self, log_ns: int, size: int) -> bool:
        if not self._part_count:
            return False
        if self.split_ns and max(log_ns, self._part_end) - self._part_start >= self.split_ns:
            return True
        if self.split_bytes:
            self._unchecked += size
            if self._unchecked >= min(_SIZE_CHECK_BYTES, self.split_bytes // 16 + 1):
                self._unchecked = 0
                return self.files[-1].stat().st_size + self._pending_chunk() >= self.split_bytes
        return False

    def _pending_chunk(self) -> int:
        """Bytes of the chunk rosbags still holds in memory (uncompressed), 0 if it cannot tell."""
        chunk = getattr(getattr(self.writer, "storage", None), "chunk", None)
        bio = getattr(chunk, "bio", None)
        return bio.tell() if bio is not None else 0

    # -- writing -----------------------------------------------------------------------------
    def add_topic(self, topic: str, msgtype: str, offered_qos: Sequence = ()) -> None:
        """Register a topic (rosbags `Qos` profiles for what its publishers offer); first call wins."""
        known = self.topics.get(topic)
        if known is not None:
            if known[0] != msgtype:
                raise StorefuseError(f"{topic}: recorded as {known[0]}, cannot also be {msgtype}")
            return
        self.topics[topic] = (msgtype, tuple(offered_qos))
        self.counts[topic] = 0
        self._connect(topic)

    def write_raw(self, topic: str, log_ns: int, data: bytes) -> None:
        if self.split and self._due(log_ns, len(data)):
            self._close_part()
            self._open_part()
        self.writer.write(self.connections[topic], log_ns, data)
        self.counts[topic] += 1
        self.bytes_written += len(data)
        self._part_count += 1
        if self._part_start is None:
            self._part_start = self._part_end = log_ns
        else:
            self._part_start, self._part_end = min(self._part_start, log_ns), max(self._part_end, log_ns)

    def write(self, topic: str, msgtype: str, log_ns: int, msg) -> None:
        self.add_topic(topic, msgtype)
        self.write_raw(topic, log_ns, self.typestore.serialize_cdr(msg, msgtype))

    def set_custom_data(self, key: str, value: str) -> None:
        """A metadata.yaml custom_data entry (e.g. the recorder's counts), written at close."""
        self.custom[key] = str(value)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._close_part()
        if self.split:
            _write_metadata(self.path, _merge(self._parts, list(self.topics), self.custom))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _merge(parts: list[dict], order: list[str], custom: dict[str, str]) -> dict:
    """One metadata.yaml for a bag written as several files, from each file's own metadata."""
    topics: dict[str, dict] = {}
    for part in parts:
        for entry in part["topics_with_message_count"]:
            name = entry["topic_metadata"]["name"]
            if name in topics:
                topics[name]["message_count"] += entry["message_count"]
            else:
                topics[name] = {"topic_metadata": entry["topic_metadata"], "message_count": entry["message_count"]}
    spans = [(p["starting_time"]["nanoseconds_since_epoch"], p["duration"]["nanoseconds"])
             for p in parts if p["message_count"]]
    start = min((s for s, _ in spans), default=2**63 - 1)
    end = max((s + d for s, d in spans), default=start)
    return {"rosbag2_bagfile_information": {
        "version": 9, "storage_identifier": "mcap",
        "relative_file_paths": [p["files"][0]["path"] for p in parts],
        "duration": {"nanoseconds": end - start}, "starting_time": {"nanoseconds_since_epoch": start},
        "message_count": sum(p["message_count"] for p in parts),
        "topics_with_message_count": [topics[t] for t in order if t in topics],
        "compression_format": "", "compression_mode": "",
        "files": [p["files"][0] for p in parts],
        "custom_data": dict(custom) or None, "ros_distro": "rosbags"}}


def _write_metadata(path: Path, metadata: dict) -> None:
    from io import StringIO
    text = StringIO()
    _yaml().dump(metadata, text)
    tmp = path / "metadata.yaml.tmp"
    tmp.write_text(text.getvalue(), "utf8")
    tmp.replace(path / "metadata.yaml")


# -- reading ------------------------------------------------------------------------------------
def _check_folder(path: Path) -> None:
    if not (path / "metadata.yaml").is_file():
        raise StorefuseError(f"{path}: not a rosbag2 folder (no metadata.yaml)")


def _raw_messages(reader, connections) -> Iterator[tuple[object, int, bytes]]:
    """(connection, log time, CDR) in log-time order across all of a bag's files.

    rosbags reads a split bag file after file; a writer that wrote out of log-time order (the
    offline simulator writes one second at a time) may leave files that overlap, so the files
    are merged by log time, ties in file order: the order an unsplit bag of the same writes has.
    """
    folder = getattr(reader.readers[0], "storage", None)      # rosbags' reader of the bag folder
    storages = getattr(folder, "storages", [])
    if len(storages) <= 1 or folder.metadata.compression_mode:
        yield from reader.messages(connections=connections)
        return
    wanted = {(c.topic, c.msgtype): c for c in connections}

    def stream(storage):
        own = [x for x in storage.connections if (x.topic, x.msgtype) in wanted]
        if own:
            for conn, log_ns, raw in storage.messages(own):
                yield wanted[(conn.topic, conn.msgtype)], log_ns, raw
    yield from heapq.merge(*(stream(s) for s in storages), key=lambda m: m[1])


def read_bag(path: str | Path, topics: list[str] | None = None, decode: bool = True) -> Iterator[BagMessage]:
    """Messages in log-time order. A truncated or damaged bag raises StorefuseError naming it."""
    from rosbags.highlevel import AnyReader
    path = Path(path)
    _check_folder(path)
    typestore = make_typestore()
    try:
        with AnyReader([path], default_typestore=typestore) as reader:
            conns = [c for c in reader.connections if topics is None or c.topic in topics]
            if not conns:
                return
            deserialize = reader.typestore.deserialize_cdr
            for conn, log_ns, raw in _raw_messages(reader, conns):
                msg = deserialize(raw, conn.msgtype) if decode else None
                yield BagMessage(conn.topic, conn.msgtype, log_ns, bytes(raw), msg)
    except StorefuseError:
        raise
    except Exception as exc:  # rosbags raises several unrelated types for damaged files
        raise StorefuseError(f"{path}: cannot read bag: {type(exc).__name__}: {exc}") from exc


def custom_data(path: str | Path) -> dict[str, str]:
    import yaml
    meta = yaml.safe_load((Path(path) / "metadata.yaml").read_text())
    return dict(meta.get("rosbag2_bagfile_information", {}).get("custom_data") or {})


def bag_files(path: str | Path) -> list[Path]:
    """The storage files metadata.yaml lists, in order."""
    import yaml
    path = Path(path)
    _check_folder(path)
    meta = yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    return [path / Path(p).name for p in meta.get("relative_file_paths", [])]


def copy_bag(src: str | Path, dst: str | Path, *, compression: str | None = None, split_bytes: int = 0,
             split_s: float = 0.0, topics: list[str] | None = None) -> dict[str, int]:
    """Rewrite a bag (the same CDR bytes, log times, order, QoS and custom data) with another
    compression or split; per-topic message counts of the copy."""
    from rosbags.highlevel import AnyReader
    src = Path(src)
    _check_folder(src)
    typestore = make_typestore()
    with AnyReader([src], default_typestore=typestore) as reader:
        conns = [c for c in reader.connections if topics is None or c.topic in topics]
        with BagWriter(dst, custom_data(src), typestore, compression=compression, split_bytes=split_bytes,
                       split_s=split_s) as out:
            for c in conns:
                out.add_topic(c.topic, c.msgtype, c.ext.offered_qos_profiles)
            for conn, log_ns, raw in _raw_messages(reader, conns):
                out.write_raw(conn.topic, log_ns, raw)
        return dict(out.counts)

