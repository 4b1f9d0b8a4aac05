"""Live playback of a bag: which recorded CDR messages are due when, on a clock that can pause.

The player node republishes recorded bytes with their original log-time spacing (scaled by a rate
factor) and publishes that bag time on /clock, so nodes run with use_sim_time see the run as it was
recorded. Everything here is ROS-free and takes an injected monotonic clock, so the timing logic
(start offset, loop, pause, step, end linger) is tested without sleeping.
"""
from __future__ import annotations

import fnmatch
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import yaml

from storefuse_core import topics
from storefuse_core.errors import StorefuseError

# Outputs of the graph under test, and what a ROS graph makes itself: playing them back into a fresh
# receipt node would double its output (or fight the player's own /clock).
DEFAULT_EXCLUDE = (f"{topics.NS}/receipts/*", f"{topics.NS}/review/*", "/clock", "/rosout", "/parameter_events")

# Offered QoS when the bag does not record it (bags recorded before the recorder wrote it): what the
# storefuse publishers offer (storefuse_nodes.common, DESIGN.md). Subscribers that ask for transient
# local (a restarted receipt node, tf listeners) get nothing from a volatile publisher.
DURABLE_TOPICS = {topics.GATE_EVENTS: 100, topics.SHELF_EVENTS: 100}
LATCHED_TOPICS = {"/tf_static", "/robot_description", topics.SIM_STATUS, *topics.LATCHED}
VOLATILE_DEPTH = 1000           # a keep-last writer must not overwrite unacknowledged samples at 10x

# `wait_for: [receipt]`: hold playback until a receipt node subscribes to all its inputs (and /clock).
WAIT_PRESETS = {"receipt": (topics.GATE_EVENTS, topics.GATE_WATERMARK, topics.SHELF_EVENTS, topics.SHELF_WATERMARK,
                            topics.camera_topic("*"), "/clock")}


@dataclass(frozen=True)
class BagTopic:
    name: str
    msgtype: str
    count: int
    offered_qos: tuple[dict, ...] = ()


@dataclass(frozen=True)
class QosChoice:
    reliable: bool
    transient_local: bool
    depth: int


@dataclass(frozen=True)
class Recorded:
    """One message to republish: its log time in the bag, where it goes, and its bytes as recorded."""
    stamp_ns: int
    topic: str
    msgtype: str
    raw: bytes
    pass_no: int = 0


@dataclass(frozen=True)
class BagInfo:
    start_ns: int
    end_ns: int
    topics: tuple[BagTopic, ...]


def bag_info(path: str | Path) -> BagInfo:
    """Span and topics from metadata.yaml, without opening the storage."""
    path = Path(path)
    meta_file = path / "metadata.yaml"
    if not meta_file.is_file():
        raise StorefuseError(f"{path}: not a rosbag2 folder (no metadata.yaml)")
    try:
        meta = yaml.safe_load(meta_file.read_text())["rosbag2_bagfile_information"]
        start = int(meta["starting_time"]["nanoseconds_since_epoch"])
        duration = int(meta["duration"]["nanoseconds"])
        found = []
        for entry in meta.get("topics_with_message_count") or []:
            tm = entry["topic_metadata"]
            found.append(BagTopic(tm["name"], tm["type"], int(entry.get("message_count", 0)),
                                  _offered(tm.get("offered_qos_profiles"))))
    except (KeyError, TypeError, ValueError, yaml.YAMLError) as exc:
        raise StorefuseError(f"{meta_file}: unreadable metadata: {type(exc).__name__}: {exc}") from exc
    return BagInfo(start, start + duration, tuple(found))


def save_layout(path: str | Path, dest: str | Path) -> Path:
    """Write the store layout a bag was recorded with (its `storefuse.layout` custom data) to dest,
    for a receipt node started with `store:=<dest>`: the node then fuses with the bag's cameras,
    boards and planogram (as the offline replay does), not with today's layout."""
    from storefuse_core.bag import custom_data
    text = custom_data(path).get("storefuse.layout")
    if not text:
        raise StorefuseError(f"{path}: the bag does not carry its store layout (storefuse.layout)")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text, encoding="utf-8")
    return dest


def _offered(value) -> tuple[dict, ...]:
    """rosbag2 wrote offered QoS as a YAML string up to metadata v8 and as a list since v9."""
    if isinstance(value, str):
        value = yaml.safe_load(value) if value.strip() else []
    return tuple(p for p in (value or []) if isinstance(p, dict))


def select_topics(names: Iterable[str], include: Iterable[str] | None = None, exclude: Iterable[str] | None = None,
                  default_exclude: Iterable[str] = DEFAULT_EXCLUDE) -> list[str]:
    """Topics to play. Patterns are shell globs. A topic named exactly in `include` is played even
    if a default exclusion matches it (e.g. to replay receipts into a console); `exclude` always wins."""
    include, exclude, default_exclude = list(include or []), list(exclude or []), list(default_exclude)

    def hit(name, patterns):
        return any(fnmatch.fnmatchcase(name, p) for p in patterns)
    chosen = []
    for name in names:
        if include and not hit(name, include):
            continue
        if hit(name, exclude) or (hit(name, default_exclude) and name not in include):
            continue
        chosen.append(name)
    return chosen


def resolve_wait(patterns: Iterable[str], played: Iterable[str]) -> list[str]:
    """The topics that need a subscriber before playback starts: played topics matching the patterns
    (globs or a preset name), plus /clock if named. A pattern that matches nothing played is an error
    (a typo would otherwise wait for ever); a preset's pattern may match nothing (a bag without cameras)."""
    played = list(played)
    wanted: list[str] = []
    for pattern in patterns:
        preset = pattern in WAIT_PRESETS
        for pat in WAIT_PRESETS.get(pattern, (pattern,)):
            hits = ["/clock"] if pat == "/clock" else [t for t in played if fnmatch.fnmatchcase(t, pat)]
            if not hits and not preset:
                raise StorefuseError(f"wait_for: {pat} is not a played topic (played: {', '.join(played)})")
            wanted += [t for t in hits if t not in wanted]
    return wanted


def _policy(profile: dict, key: str) -> str:
    """A QoS policy as a lower-case word; rosbag2 wrote rmw enum numbers before it wrote words."""
    value = profile.get(key)
    numbers = {"reliability": {1: "reliable", 2: "best_effort"}, "durability": {1: "transient_local", 2: "volatile"}}
    if isinstance(value, int):
        return numbers.get(key, {}).get(value, "system_default")
    return str(value or "system_default").lower()


def qos_for(topic: BagTopic) -> QosChoice:
    """The QoS to offer on a played topic: the recorded offer where there is one, else the storefuse
    defaults. Offering reliable and transient local is compatible with every subscriber, so either is
    chosen as soon as one recorded publisher offered it. A transient-local topic keeps up to its last
    100 messages for late joiners: one player stands in for every recorded publisher (one config per
    scale board, one /tf_static per broadcaster), and rosbag2 records depth 0 where history is unknown."""
    kept = max(1, min(topic.count, 100))
    if topic.offered_qos:
        reliable = any(_policy(p, "reliability") != "best_effort" for p in topic.offered_qos)
        latched = any(_policy(p, "durability") == "transient_local" for p in topic.offered_qos)
        depth = max(int(p.get("depth") or 0) for p in topic.offered_qos)
        return QosChoice(reliable, latched, max(depth, kept) if latched else max(depth, VOLATILE_DEPTH))
    if topic.name in DURABLE_TOPICS:
        return QosChoice(True, True, DURABLE_TOPICS[topic.name])
    if topic.name in LATCHED_TOPICS:
        return QosChoice(True, True, kept)
    return QosChoice(True, False, VOLATILE_DEPTH)


def bag_source(path: str | Path, topic_names: list[str]) -> Callable[[], Iterator[tuple[int, str, str, bytes]]]:
    """A re-openable reader of (log ns, topic, type, raw CDR): one pass per call, for looping."""
    from storefuse_core.bag import read_bag

    def open_pass():
        for m in read_bag(path, topic_names, decode=False):
            yield m.log_ns, m.topic, m.msgtype, m.raw
    return open_pass


class Schedule:
    """Recorded messages in log-time order from a start time, pass after pass when looping."""

    def __init__(self, source: Callable[[], Iterable[tuple[int, str, str, bytes]]], start_ns: int, loop: bool = False):
        self.source, self.start_ns, self.loop = source, start_ns, loop
        self.pass_no = 0
        self._it = iter(source())
        self._next: Recorded | None = None
        self._pass_had_any = False
        self.exhausted = False

    def peek(self) -> Recorded | None:
        while self._next is None and not self.exhausted:
            item = next(self._it, None)
            if item is None:
                if not (self.loop and self._pass_had_any):
                    self.exhausted = True       # an empty selection must not loop for ever
                    break
                self.pass_no += 1
                self._pass_had_any = False
                self._it = iter(self.source())
                continue
            log_ns, topic, msgtype, raw = item
            if log_ns < self.start_ns:
                continue
            self._pass_had_any = True
            self._next = Recorded(log_ns, topic, msgtype, raw, self.pass_no)
        return self._next

    def pop(self) -> Recorded | None:
        item = self.peek()
        self._next = None
        return item


class PlaybackClock:
    """Bag time from wall time: bag = anchor_bag + (wall - anchor_wall) * rate while running, frozen
    while paused. `now` is any monotonic nanosecond clock (time.monotonic_ns live, a counter in tests).
    An infinite rate is 'as fast as possible': bag time moves only by jumps (to each message)."""

    def __init__(self, start_ns: int, rate: float = 1.0, paused: bool = False,
                 now: Callable[[], int] = time.monotonic_ns):
        check_rate(rate)
        self.rate, self._now = float(rate), now
        self._anchor_bag, self._anchor_wall = int(start_ns), now()
        self.paused = paused

    @property
    def unbounded(self) -> bool:
        return math.isinf(self.rate)

    def bag_ns(self) -> int:
        if self.paused or self.unbounded:
            return self._anchor_bag
        return self._anchor_bag + int((self._now() - self._anchor_wall) * self.rate)

    def _reanchor(self, bag_ns: int) -> None:
        self._anchor_bag, self._anchor_wall = int(bag_ns), self._now()

    def pause(self) -> None:
        if not self.paused:
            self._reanchor(self.bag_ns())
            self.paused = True

    def resume(self) -> None:
        if self.paused:
            self._reanchor(self._anchor_bag)
            self.paused = False

    def toggle(self) -> bool:
        self.resume() if self.paused else self.pause()
        return self.paused

    def jump(self, bag_ns: int) -> None:
        """Set bag time (a step, a loop back to the start); the rate carries on from there."""
        self._reanchor(bag_ns)

    def set_rate(self, rate: float) -> None:
        check_rate(rate)
        self._reanchor(self.bag_ns())
        self.rate = float(rate)

    def wall_until(self, bag_ns: int) -> float:
        """Wall seconds until bag time reaches bag_ns: 0 if it has, inf while paused."""
        ahead = bag_ns - self.bag_ns()
        if ahead <= 0 or self.unbounded:
            return 0.0
        if self.paused:
            return math.inf
        return ahead / self.rate / 1e9


def check_rate(rate: float) -> None:
    if not (rate > 0):          # also rejects NaN
        raise StorefuseError(f"rate must be > 0 (inf plays as fast as possible), not {rate}")


class Playback:
    """A schedule on a clock: what to publish now, single steps while paused, loop restarts, and a
    linger after the last message during which bag time keeps running (so nodes on sim time finish
    their timers: a receipt node releases its last inputs on its next tick). Bag time is held at the
    start until start() (the player waits for its subscribers first)."""

    def __init__(self, schedule: Schedule, clock: PlaybackClock, linger_ns: int = 0, started: bool = True):
        self.schedule, self.clock, self.linger_ns = schedule, clock, int(linger_ns)
        self.pass_no = 0
        self.published = 0
        self.last_stamp_ns = schedule.start_ns
        self.started = started

    def start(self) -> None:
        """Bag time runs from the start offset from now on (paused stays paused)."""
        self.clock.jump(self.schedule.start_ns)
        self.started = True

    def _take(self) -> Recorded:
        item = self.schedule.pop()
        self.published += 1
        self.last_stamp_ns = item.stamp_ns
        return item

    def _next(self) -> Recorded | None:
        """The next message; entering a new loop pass starts bag time over (rosbag2 loops straight
        after the last message, without waiting out the bag's tail)."""
        nxt = self.schedule.peek()
        if nxt is not None and nxt.pass_no != self.pass_no:
            self.pass_no = nxt.pass_no
            self.clock.jump(self.schedule.start_ns)
        return nxt

    def due(self, limit: int = 1000) -> list[Recorded]:
        """Messages whose bag time has come, in order (at most `limit`, so a control loop stays
        responsive). Nothing while paused; at an infinite rate the next `limit` messages, bag time
        following them."""
        out: list[Recorded] = []
        if self.clock.paused or not self.started:
            return out
        while len(out) < limit:
            nxt = self._next()
            if nxt is None:
                if self.clock.unbounded and self.clock.bag_ns() < self.end_ns():
                    self.clock.jump(self.end_ns())
                break
            if self.clock.unbounded:
                self.clock.jump(max(nxt.stamp_ns, self.clock.bag_ns()))
                out.append(self._take())
                continue
            if nxt.stamp_ns > self.clock.bag_ns():
                break
            out.append(self._take())
        return out

    def step(self) -> Recorded | None:
        """While paused: the next message, with bag time moved to its stamp. None when running or done."""
        if not (self.clock.paused and self.started) or self._next() is None:
            return None
        item = self._take()
        self.clock.jump(item.stamp_ns)
        return item

    def end_ns(self) -> int:
        return self.last_stamp_ns + self.linger_ns

    @property
    def finished(self) -> bool:
        """The last message is out and bag time has run through the linger."""
        return self.started and self.schedule.peek() is None and self.clock.bag_ns() >= self.end_ns()

    def clock_ns(self) -> int:
        """Bag time to publish on /clock: the start until started, never past the end of the linger."""
        if not self.started:
            return self.schedule.start_ns
        if self.schedule.peek() is None:
            return min(self.clock.bag_ns(), self.end_ns())
        return self.clock.bag_ns()

    def wait_s(self, cap_s: float) -> float:
        """How long the control loop may sleep before something is due (capped)."""
        nxt = self.schedule.peek()
        if nxt is not None and nxt.pass_no != self.pass_no:
            return 0.0
        return min(cap_s, self.clock.wall_until(nxt.stamp_ns if nxt is not None else self.end_ns()))


def open_playback(path: str | Path, rate: float = 1.0, start_s: float = 0.0, loop: bool = False,
                  include: list[str] | None = None, exclude: list[str] | None = None, paused: bool = False,
                  linger_s: float = 0.0, now: Callable[[], int] = time.monotonic_ns,
                  ) -> tuple[Playback, list[BagTopic]]:
    """A playback of a bag folder (held at its start until start()) and the topics it will publish."""
    info = bag_info(path)
    if start_s < 0 or info.start_ns + int(start_s * 1e9) > info.end_ns:
        length_s = (info.end_ns - info.start_ns) / 1e9
        raise StorefuseError(f"start offset {start_s:g} s is outside the bag ({length_s:.1f} s long)")
    by_name = {t.name: t for t in info.topics if t.count > 0}
    unknown = [p for p in include or [] if not any(fnmatch.fnmatchcase(n, p) for n in by_name)]
    if unknown:
        raise StorefuseError(f"{path}: no recorded messages on {', '.join(unknown)} (topics: {', '.join(by_name)})")
    names = select_topics(by_name, include, exclude)
    if not names:
        raise StorefuseError(f"{path}: no topic left to play (recorded: {', '.join(by_name) or 'none'})")
    start_ns = info.start_ns + int(start_s * 1e9)
    clock = PlaybackClock(start_ns, rate, paused, now)
    playback = Playback(Schedule(bag_source(path, names), start_ns, loop), clock, int(linger_s * 1e9), started=False)
    return playback, [by_name[n] for n in names]
