"""A gate reader as the driver sees it: frames in, anonymous GateEvents out.

The token never leaves the driver: it is HMAC'd with the store's secret. Session ids are derived
from gate id, device stamp and frame sequence, so a replay names sessions identically. A second
read of the same token at the same gate within the debounce window is the reader repeating itself.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from storefuse_core.errors import FrameError
from storefuse_core.events import ENTRY, EXIT, GateEvent
from storefuse_core.frame import parse_gate


def hash_token(secret: bytes, token: str) -> str:
    return hmac.new(secret, token.encode(), hashlib.sha256).hexdigest()[:32]


def session_id_for(gate_id: str, stamp_ns: int, seq: int) -> str:
    return "s-" + hashlib.sha256(f"{gate_id}/{stamp_ns}/{seq}".encode()).hexdigest()[:16]


@dataclass
class GateStats:
    frames: int = 0
    bad_frames: int = 0
    duplicates: int = 0
    seq_gaps: int = 0
    last_error: str = ""
    last_stamp_ns: int = 0
    errors: dict[str, int] = field(default_factory=dict)


class GateReader:
    def __init__(self, gate_id: str, secret: bytes, debounce_s: float = 2.0):
        self.gate_id, self.secret = gate_id, secret
        self.debounce_ns = int(debounce_s * 1e9)
        self.stats = GateStats()
        self._recent: dict[str, int] = {}
        self._last_seq: int | None = None
        self.events_out = 0

    def feed(self, line: bytes) -> GateEvent | None:
        """One raw line; returns an event for a fresh ENTRY/EXIT read, None otherwise."""
        try:
            read = parse_gate(line)
        except FrameError as exc:
            self.stats.bad_frames += 1
            self.stats.last_error = str(exc)
            key = str(exc).split("(")[0].strip()
            self.stats.errors[key] = self.stats.errors.get(key, 0) + 1
            return None
        if self._last_seq is not None and read.seq != self._last_seq + 1:
            self.stats.seq_gaps += 1
        self._last_seq = read.seq
        self.stats.frames += 1
        self.stats.last_stamp_ns = max(self.stats.last_stamp_ns, read.stamp_ns)
        if read.action == "HB":
            return None
        token_hash = hash_token(self.secret, read.token)
        last = self._recent.get(token_hash)
        self._recent = {k: v for k, v in self._recent.items() if read.stamp_ns - v < self.debounce_ns}
        if last is not None and read.stamp_ns - last < self.debounce_ns:
            self.stats.duplicates += 1
            return None
        self._recent[token_hash] = read.stamp_ns
        direction = ENTRY if read.action == "ENTRY" else EXIT
        session = session_id_for(self.gate_id, read.stamp_ns, read.seq) if direction == ENTRY else ""
        self.events_out += 1
        return GateEvent(read.stamp_ns, self.gate_id, direction, session, token_hash,
                         read.party_size, read.staff, read.seq)

    @property
    def watermark_ns(self) -> int:
        return self.stats.last_stamp_ns
