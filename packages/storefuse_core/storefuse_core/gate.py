"""A gate reader as the driver sees it: frames in, anonymous GateEvents out.

The token never leaves the driver: it is HMAC'd with the store's secret. Session ids are derived
from gate id, device stamp and frame sequence, so a replay names sessions identically. A second
read of the same token at the same gate within the debounce window is the reader repeating itself.

Persons through the gate (optional, backward compatible). A gate with a beam/people sensor also
sends `$GATE,<seq>,<t_us>,PASS,<count>`: <count> (1-20) persons crossed the gate since its last
PASS frame (`pass_frame` builds one). A gate without the sensor never sends it and the reader
behaves exactly as before; a driver older than this one counts such a frame as bad and drops it.
No tracking is involved; at one gate:
- A scan (ENTRY/EXIT, party p) opens a follow window of `follow_window_s`. The first p persons that
  pass in it are the scanned party (expected; counted as `passes` only).
- Further persons passing within the window of the *latest* scan join its party (a group entering
  on one scan, up to `max_party`). At an entry gate the reader returns an update GateEvent: the
  same session_id, token_hash, direction and staff flag, party_size = the new total, stamped at the
  pass (so it stays in stamp order behind the watermark) with the PASS frame's seq. A consumer keys
  it on session_id; fusion's ReceiptBook opens a session once per session_id (ledger key
  `open/<session>`) and counts the update as a duplicate, so receipts are unchanged. At an exit
  gate joiners leave with the scanned party: counted, no event (a second EXIT with the same token
  could close some other open session).
- A staff scan admits only its declared party: a stranger slipping in behind a staff badge is not
  hidden in a party that is never billed.
- Any other pass is tailgating: a pass with no scan within `follow_window_s` before it, behind a
  staff scan, or beyond `max_party`. It is counted (`stats.tailgates`, persons) and reported as a
  GateEvent with an EMPTY token_hash and session_id (party_size = persons, direction = the gate's,
  stamp and seq of the PASS frame), collected in `take_tailgates()` and deliberately NOT returned by
  feed(): every event on gates/events is a scan that opens or closes a payer's session, and an
  anonymous ENTRY there would open a session nobody pays for (an anonymous EXIT would close the
  only open shopper session). The driver publishes tailgates on their own topic, gates/tailgating.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from storefuse_core.errors import FrameError
from storefuse_core.events import ENTRY, EXIT, GateEvent
from storefuse_core.frame import FrameStats, GateRead, decode, encode, parse_gate

MAX_PASS = 20


def pass_frame(seq: int, stamp_ns: int, count: int = 1) -> bytes:
    """`$GATE,<seq>,<t_us>,PASS,<count>`: persons through the gate since the last PASS frame."""
    return encode(["GATE", str(seq), str(stamp_ns // 1000), "PASS", str(count)])


def parse_gate_line(line: bytes) -> GateRead:
    """frame.parse_gate plus PASS frames (action "PASS", party_size = persons)."""
    fields = decode(line)
    if len(fields) < 4 or fields[0] != "GATE" or fields[3] != "PASS":
        return parse_gate(line)
    if len(fields) != 5:
        raise FrameError(f"gate PASS frame needs PASS,count; got {fields[3:]}")
    try:
        seq, stamp, count = int(fields[1]), int(fields[2]) * 1000, int(fields[4])
    except ValueError:
        raise FrameError(f"bad sequence/timestamp/count {fields[1]!r},{fields[2]!r},{fields[4]!r}") from None
    if not 1 <= count <= MAX_PASS:
        raise FrameError(f"bad pass count {fields[4]!r} (1-{MAX_PASS})")
    return GateRead(seq, stamp, "PASS", "", count, False)


def hash_token(secret: bytes, token: str) -> str:
    return hmac.new(secret, token.encode(), hashlib.sha256).hexdigest()[:32]


def session_id_for(gate_id: str, stamp_ns: int, seq: int) -> str:
    return "s-" + hashlib.sha256(f"{gate_id}/{stamp_ns}/{seq}".encode()).hexdigest()[:16]


@dataclass
class GateStats(FrameStats):
    duplicates: int = 0
    passes: int = 0          # persons through the gate (PASS frames)
    joined: int = 0          # ... who joined the party of the scan before them
    tailgates: int = 0       # ... who passed with no scan to follow


@dataclass
class _Party:
    """A scan's follow window."""
    event: GateEvent
    size: int
    passed: int = 0


class GateReader:
    def __init__(self, gate_id: str, secret: bytes, debounce_s: float = 2.0, follow_window_s: float = 5.0,
                 direction: int | None = None, max_party: int = 20):
        self.gate_id, self.secret = gate_id, secret
        self.debounce_ns = int(debounce_s * 1e9)
        self.follow_ns = int(follow_window_s * 1e9)
        self.direction = direction if direction is not None else (EXIT if "exit" in gate_id else ENTRY)
        self.max_party = max_party
        self.stats = GateStats()
        self._recent: dict[str, int] = {}
        self._last_seq: int | None = None
        self._parties: list[_Party] = []
        self._tailgates: list[GateEvent] = []
        self.events_out = 0

    def feed(self, line: bytes) -> GateEvent | None:
        """One raw line; returns an event for a fresh ENTRY/EXIT read or a party that grew at an entry
        gate (PASS), None otherwise. Tailgates are collected for take_tailgates()."""
        try:
            read = parse_gate_line(line)
        except FrameError as exc:
            self.stats.bad(exc)
            return None
        if self._last_seq is not None and read.seq != self._last_seq + 1:
            self.stats.seq_gaps += 1
        self._last_seq = read.seq
        self.stats.frames += 1
        self.stats.last_stamp_ns = max(self.stats.last_stamp_ns, read.stamp_ns)
        self._parties = [w for w in self._parties if read.stamp_ns - w.event.stamp_ns <= self.follow_ns]
        if read.action == "HB":
            return None
        if read.action == "PASS":
            return self._passed(read)
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
        event = GateEvent(read.stamp_ns, self.gate_id, direction, session, token_hash,
                          read.party_size, read.staff, read.seq)
        self._parties.append(_Party(event, read.party_size))
        return event

    def _passed(self, read: GateRead) -> GateEvent | None:
        self.stats.passes += read.party_size
        joined = tailgaters = 0
        for _ in range(read.party_size):
            expected = next((w for w in self._parties if w.passed < w.size), None)
            if expected is not None:                      # a member of a scanned party
                expected.passed += 1
                continue
            latest = self._parties[-1] if self._parties else None
            if latest is not None and not latest.event.staff and latest.size < self.max_party:
                latest.size += 1                          # follows the latest scan in: joins its party
                latest.passed += 1
                joined += 1
            else:
                tailgaters += 1
        if tailgaters:
            self.stats.tailgates += tailgaters
            self._tailgates.append(GateEvent(read.stamp_ns, self.gate_id, self.direction, "", "",
                                             tailgaters, False, read.seq))
        if not joined:
            return None
        self.stats.joined += joined
        scan = self._parties[-1]
        if scan.event.direction != ENTRY:
            return None
        self.events_out += 1
        return GateEvent(read.stamp_ns, self.gate_id, ENTRY, scan.event.session_id, scan.event.token_hash,
                         scan.size, scan.event.staff, read.seq)

    def take_tailgates(self) -> list[GateEvent]:
        """Tailgating reports since the last call (empty token_hash and session_id; see the module doc)."""
        out, self._tailgates = self._tailgates, []
        return out

    @property
    def watermark_ns(self) -> int:
        return self.stats.last_stamp_ns
