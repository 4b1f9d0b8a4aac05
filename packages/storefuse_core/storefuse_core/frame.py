"""Line-based serial frames spoken by scale boards and gate readers.

`$BODY*CCCC\r\n`: BODY is comma-separated ASCII, CCCC the CRC-16/CCITT of BODY in hex. A frame that
fails any check raises FrameError with the reason; the driver counts it and drops it.
Scale:  `$SCL,<seq>,<t_us>,<c1>,...,<cN>`    raw ADC counts per plate, layout order
Gate:   `$GATE,<seq>,<t_us>,ENTRY|EXIT,<token>,<party>,<role>`   or `$GATE,<seq>,<t_us>,HB`
"""
from __future__ import annotations

import binascii
import re
from dataclasses import dataclass, field

import numpy as np

from storefuse_core.errors import FrameError

TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{4,64}$")
MAX_FRAME = 4096


def encode(fields: list[str]) -> bytes:
    body = ",".join(fields).encode("ascii")
    return b"$" + body + b"*" + f"{binascii.crc_hqx(body, 0xFFFF):04X}".encode() + b"\r\n"


def decode(line: bytes) -> list[str]:
    """Split and verify one frame; raises FrameError naming what is wrong."""
    line = line.strip()
    if not line:
        raise FrameError("empty line")
    if len(line) > MAX_FRAME:
        raise FrameError(f"frame too long ({len(line)} bytes)")
    if not line.startswith(b"$"):
        raise FrameError("no '$' start marker")
    star = line.rfind(b"*")
    if star < 0 or len(line) - star - 1 != 4:
        raise FrameError("no '*CCCC' checksum")
    body, crc = line[1:star], line[star + 1:]
    try:
        expected = int(crc, 16)
    except ValueError:
        raise FrameError(f"checksum {crc!r} is not hex") from None
    actual = binascii.crc_hqx(body, 0xFFFF)
    if actual != expected:
        raise FrameError(f"checksum mismatch (got {expected:04X}, computed {actual:04X})")
    try:
        return body.decode("ascii").split(",")
    except UnicodeDecodeError:
        raise FrameError("non-ASCII bytes in frame") from None


@dataclass(frozen=True)
class ScaleSample:
    seq: int
    stamp_ns: int
    counts: np.ndarray


@dataclass(frozen=True)
class GateRead:
    seq: int
    stamp_ns: int
    action: str          # ENTRY | EXIT | HB
    token: str = ""
    party_size: int = 1
    staff: bool = False


def _header(fields: list[str], kind: str) -> tuple[int, int]:
    if fields[0] != kind:
        raise FrameError(f"expected a {kind} frame, got {fields[0]!r}")
    if len(fields) < 3:
        raise FrameError("missing sequence number or timestamp")
    try:
        return int(fields[1]), int(fields[2]) * 1000
    except ValueError:
        raise FrameError(f"bad sequence/timestamp {fields[1]!r},{fields[2]!r}") from None


def scale_frame(seq: int, stamp_ns: int, counts) -> bytes:
    return encode(["SCL", str(seq), str(stamp_ns // 1000), *(str(int(c)) for c in counts)])


def parse_scale(line: bytes, n_plates: int) -> ScaleSample:
    fields = decode(line)
    seq, stamp = _header(fields, "SCL")
    if len(fields) != 3 + n_plates:
        raise FrameError(f"expected {n_plates} plate readings, got {len(fields) - 3}")
    try:
        counts = np.array([int(f) for f in fields[3:]], dtype=np.int64)
    except ValueError:
        raise FrameError("non-integer plate reading") from None
    return ScaleSample(seq, stamp, counts)


def gate_frame(seq: int, stamp_ns: int, action: str, token: str = "", party: int = 1,
               staff: bool = False) -> bytes:
    if action == "HB":
        return encode(["GATE", str(seq), str(stamp_ns // 1000), "HB"])
    return encode(["GATE", str(seq), str(stamp_ns // 1000), action, token, str(party),
                   "STAFF" if staff else "SHOPPER"])


def parse_gate(line: bytes) -> GateRead:
    fields = decode(line)
    seq, stamp = _header(fields, "GATE")
    if len(fields) == 4 and fields[3] == "HB":
        return GateRead(seq, stamp, "HB")
    if len(fields) != 7 or fields[3] not in ("ENTRY", "EXIT"):
        raise FrameError(f"gate frame needs ENTRY|EXIT,token,party,role; got {fields[3:]}")
    token = fields[4]
    if not TOKEN_RE.match(token):
        raise FrameError(f"unknown token format ({len(token)} chars; expected 4-64 of A-Z a-z 0-9 _ -)")
    try:
        party = int(fields[5])
    except ValueError:
        raise FrameError(f"bad party size {fields[5]!r}") from None
    if not 1 <= party <= 20 or fields[6] not in ("SHOPPER", "STAFF"):
        raise FrameError(f"bad party size or role: {fields[5]!r} {fields[6]!r}")
    return GateRead(seq, stamp, fields[3], token, party, fields[6] == "STAFF")


@dataclass
class FrameStats:
    """What every serial driver counts about its line (reported in /diagnostics)."""
    frames: int = 0
    bad_frames: int = 0
    seq_gaps: int = 0
    last_error: str = ""
    last_stamp_ns: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def bad(self, exc: Exception | str) -> None:
        """Count a dropped frame under its reason (the message without its details)."""
        self.bad_frames += 1
        self.last_error = str(exc)
        key = self.last_error.split("(")[0].strip()
        self.errors[key] = self.errors.get(key, 0) + 1
