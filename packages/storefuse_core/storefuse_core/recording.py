"""What a recorder has taken in and what it can tell it missed.

Dropped messages are counted from the middleware's per-publisher sequence numbers (every DDS
writer numbers its samples): a gap between two samples of one publisher is a message published
while the recorder was listening that never reached the bag.

Besides, the content says what went missing before or around the transport. A recorder never
decodes whole messages (that would cost more than writing them); it reads the few leading CDR
fields that carry counts: the board and first sample number of PlateWeights, the source and event
count of a Watermark, the source of a GateEvent or ShelfEvent. From them:
- events missing: a source's watermark says how many events it has published; fewer received
  from that source means events that are not in the bag (e.g. published before the recorder
  joined), judged `lag_s` after the watermark arrived, since it may overtake an event on another topic;
- weight samples missing: a board's samples are numbered; a gap is a serial frame the driver
  dropped, a half block lost to a driver restart, or a block lost on the way.
"""
from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass, field

GROUPS = ("gates", "shelves", "cameras", "carts", "receipts", "other")


def group_of(topic: str) -> str:
    """The store's word for a topic's family: /store/cameras/cam3/detections -> cameras."""
    parts = topic.strip("/").split("/")
    return parts[1] if len(parts) > 1 and parts[1] in GROUPS else "other"


class CdrError(ValueError):
    """Bytes that are not the little-endian CDR message they should be."""


class _Cdr:
    """A cursor over XCDR1 little-endian bytes (what rmw_fastrtps and rosbags write)."""
    __slots__ = ("buf", "pos")

    def __init__(self, raw: bytes):
        if len(raw) < 4 or raw[0] != 0 or raw[1] != 1:
            raise CdrError("not little-endian CDR")
        self.buf, self.pos = raw, 4

    def _take(self, fmt: str, size: int):
        self.pos += -(self.pos - 4) % size
        try:
            (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        except struct.error:
            raise CdrError("message too short") from None
        self.pos += size
        return value

    def u16(self) -> int:
        return self._take("<H", 2)

    def u32(self) -> int:
        return self._take("<I", 4)

    def u64(self) -> int:
        return self._take("<Q", 8)

    def string(self) -> str:
        n = self.u32()
        if n == 0 or self.pos + n > len(self.buf):
            raise CdrError("bad string length")
        text = bytes(self.buf[self.pos:self.pos + n - 1]).decode("utf-8", "replace")
        self.pos += n
        return text

    def header(self) -> tuple[int, int, str]:
        sec = self._take("<i", 4)
        nanosec = self.u32()
        return sec, nanosec, self.string()


def peek_header(raw: bytes) -> tuple[int, int, str]:
    """(stamp sec, stamp nanosec, frame_id) of any message that starts with a std_msgs/Header."""
    return _Cdr(raw).header()


def peek_plate_weights(raw: bytes) -> tuple[str, int, int]:
    """(board_id, first_seq, samples) of a PlateWeights."""
    c = _Cdr(raw)
    c.header()
    board = c.string()
    c.u16()
    first_seq = c.u32()
    return board, first_seq, c.u32()


def peek_watermark(raw: bytes) -> tuple[str, int]:
    """(source, items_published) of a Watermark."""
    c = _Cdr(raw)
    _, _, source = c.header()
    return source, c.u64()


def peek_gate_event(raw: bytes) -> str:
    c = _Cdr(raw)
    c.header()
    return c.string()


def peek_shelf_event(raw: bytes) -> str:
    """The scale board a ShelfEvent came from (scale_<gondola>, the name its watermark uses)."""
    c = _Cdr(raw)
    c.header()
    c.string()          # event_id
    c.u32(), c.u32()    # start
    return "scale_" + c.string()


_EVENTS = {"gates/events": peek_gate_event, "shelves/events": peek_shelf_event}
_WATERMARKS = {"gates/watermark": "gates/events", "shelves/watermark": "shelves/events"}


def _leaf(topic: str) -> str:
    return "/".join(topic.strip("/").split("/")[1:])


@dataclass
class TopicCount:
    messages: int = 0
    bytes: int = 0
    dropped: int = 0       # gaps in its publishers' sequence numbers
    lost: int = 0          # reported lost by the middleware (sample-lost events)


@dataclass
class BoardSeq:
    next_seq: int = -1
    block: int = 0
    missing_samples: int = 0
    missing_blocks: int = 0
    resets: int = 0


@dataclass
class RecordStats:
    lag_s: float = 2.0
    topics: dict[str, TopicCount] = field(default_factory=dict)
    received: dict[tuple[str, str], int] = field(default_factory=dict)      # (events leaf, source) -> n
    watermarks: dict[tuple[str, str], deque] = field(default_factory=dict)  # -> (t, items_published)
    boards: dict[str, BoardSeq] = field(default_factory=dict)
    publishers: dict[tuple[str, bytes], int] = field(default_factory=dict)   # (topic, gid) -> last seq
    out_of_order: int = 0
    unreadable: int = 0
    last_error: str = ""
    _history: deque = field(default_factory=lambda: deque(maxlen=64))

    def on_message(self, topic: str, raw: bytes, t_s: float, publisher: bytes = b"", seq: int | None = None) -> None:
        """One message as received; `publisher`/`seq`: its writer's id and sequence number, if known."""
        count = self.topics.get(topic)
        if count is None:
            count = self.topics[topic] = TopicCount()
        count.messages += 1
        count.bytes += len(raw)
        if seq is not None:
            last = self.publishers.get((topic, publisher))
            if last is not None:
                if seq > last + 1:
                    count.dropped += seq - last - 1
                elif seq <= last:
                    self.out_of_order += 1
            if last is None or seq > last:
                self.publishers[(topic, publisher)] = seq
        leaf = _leaf(topic)
        try:
            if leaf == "shelves/weights":
                self._block(*peek_plate_weights(raw))
            elif leaf in _EVENTS:
                key = (leaf, _EVENTS[leaf](raw))
                self.received[key] = self.received.get(key, 0) + 1
            elif leaf in _WATERMARKS:
                source, items = peek_watermark(raw)
                marks = self.watermarks.setdefault((_WATERMARKS[leaf], source), deque(maxlen=256))
                marks.append((t_s, items))
        except CdrError as exc:
            self.unreadable += 1
            self.last_error = f"{topic}: {exc}"

    def on_lost(self, topic: str, n: int) -> None:
        self.topics.setdefault(topic, TopicCount()).lost += n

    def _block(self, board: str, first_seq: int, samples: int) -> None:
        s = self.boards.get(board)
        if s is None:
            s = self.boards[board] = BoardSeq()
        if s.next_seq >= 0:
            if first_seq > s.next_seq:
                gap = first_seq - s.next_seq
                s.missing_samples += gap
                s.missing_blocks += round(gap / max(1, s.block))
            elif first_seq < s.next_seq:
                s.resets += 1            # the board or its driver started again
        s.next_seq, s.block = first_seq + samples, max(s.block, samples)

    def _missing(self, now_s: float | None) -> dict[tuple[str, str], int]:
        out = {}
        for key, marks in self.watermarks.items():
            items = next((n for t, n in reversed(marks) if now_s is None or t <= now_s - self.lag_s), None)
            if items is not None and items > self.received.get(key, 0):
                out[key] = items - self.received.get(key, 0)
        return out

    def missing_events(self, now_s: float | None = None) -> int:
        """Events their sources published that have not arrived; with `now_s`, only judged against
        watermarks at least lag_s old."""
        return sum(self._missing(now_s).values())

    def dropped(self) -> int:
        """Messages published while the recorder listened that it did not receive."""
        return sum(c.dropped for c in self.topics.values())

    def groups(self, now_s: float) -> list[dict]:
        """Per topic group: messages, bytes, messages/s over the last few seconds, dropped, and
        what the content says is missing (events per watermarks, weight blocks per sample numbers)."""
        totals = {g: [0, 0, 0, 0] for g in GROUPS}
        for topic, c in self.topics.items():
            row = totals[group_of(topic)]
            row[0] += c.messages
            row[1] += c.bytes
            row[2] += c.dropped
        for b in self.boards.values():
            totals["shelves"][3] += b.missing_blocks
        for (leaf, _), n in self._missing(now_s).items():
            totals[leaf.split("/")[0]][3] += n
        self._history.append((now_s, {g: v[0] for g, v in totals.items()}))
        t0, old = next(((t, c) for t, c in self._history if t >= now_s - 3.0), self._history[0])
        rows = []
        for g in GROUPS:
            msgs, nbytes, dropped, missing = totals[g]
            if not msgs and not missing:
                continue
            rate = (msgs - old.get(g, 0)) / (now_s - t0) if now_s > t0 else 0.0
            rows.append({"group": g, "messages": msgs, "bytes": nbytes, "rate": rate, "dropped": dropped,
                         "missing": missing})
        return rows

    def summary(self) -> dict:
        """Final counts, JSON-able (the recorder stores it in the bag's custom data)."""
        return {
            "messages": sum(c.messages for c in self.topics.values()),
            "bytes": sum(c.bytes for c in self.topics.values()),
            "dropped": self.dropped(),
            "missing_events": self.missing_events(),
            "missing_blocks": sum(b.missing_blocks for b in self.boards.values()),
            "missing_samples": sum(b.missing_samples for b in self.boards.values()),
            "middleware_lost": sum(c.lost for c in self.topics.values()),
            "out_of_order": self.out_of_order,
            "publishers": len(self.publishers),
            "unreadable": self.unreadable,
            "topics": {t: c.messages for t, c in sorted(self.topics.items())},
            "dropped_topics": {t: c.dropped for t, c in sorted(self.topics.items()) if c.dropped},
        }
