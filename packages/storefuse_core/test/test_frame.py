"""Serial frames: `$BODY*CCCC\\r\\n` with a CRC-16/CCITT; every bad frame is one FrameError."""
from __future__ import annotations

import binascii

import numpy as np
import pytest

from storefuse_core.errors import FrameError, StorefuseError
from storefuse_core.frame import MAX_FRAME, decode, encode, gate_frame, parse_gate, parse_scale, scale_frame


def framed(body: bytes, crc: int | None = None) -> bytes:
    """A frame around an arbitrary body, with a correct checksum unless one is given."""
    crc = binascii.crc_hqx(body, 0xFFFF) if crc is None else crc
    return b"$" + body + b"*" + f"{crc:04X}".encode() + b"\r\n"


def test_encode_decode_round_trip():
    fields = ["SCL", "12", "3456789", "-5", "0", "123456"]
    line = encode(fields)
    assert line.startswith(b"$") and line.endswith(b"\r\n")
    assert decode(line) == fields
    assert decode(line.rstrip(b"\r\n")) == fields          # the port hands lines without CRLF


def test_checksum_is_crc16_ccitt_of_the_body():
    line = encode(["GATE", "1", "2", "HB"])
    body, crc = line[1:].split(b"*")
    assert int(crc.strip(), 16) == binascii.crc_hqx(b"GATE,1,2,HB", 0xFFFF)
    assert body == b"GATE,1,2,HB"


def test_frame_error_is_a_storefuse_error():
    assert issubclass(FrameError, StorefuseError)


@pytest.mark.parametrize("line, reason", [
    (b"", "empty line"),
    (b"   \r\n", "empty line"),
    (b"SCL,1,2,3*1234\r\n", r"no '\$' start marker"),
    (b"$SCL,1,2,3\r\n", "checksum"),                       # no '*CCCC' at all
    (b"$SCL,1,2,3*12\r\n", "checksum"),                    # short checksum
    (b"$SCL,1,2,3*ZZZZ\r\n", "not hex"),
])
def test_malformed_frames_name_the_problem(line, reason):
    with pytest.raises(FrameError, match=reason):
        decode(line)


def test_bad_checksum_is_reported_with_both_values():
    good = encode(["SCL", "1", "2", "3"])
    crc = int(good[-6:-2], 16)
    with pytest.raises(FrameError, match="checksum mismatch") as info:
        decode(framed(b"SCL,1,2,3", crc ^ 0x0001))
    assert f"{crc:04X}" in str(info.value)


def test_flipped_body_byte_fails_the_checksum():
    line = bytearray(encode(["SCL", "7", "1000", "100", "200"]))
    line[6] ^= 0x02
    with pytest.raises(FrameError, match="checksum mismatch"):
        decode(bytes(line))


def test_truncated_frame_is_rejected():
    line = encode(["SCL", "7", "1000", "100", "200"])
    for cut in range(1, len(line) - 2):
        with pytest.raises(FrameError):
            decode(line[:cut] + b"\r\n")


def test_non_ascii_bytes_are_rejected_even_with_a_valid_checksum():
    with pytest.raises(FrameError, match="non-ASCII"):
        decode(framed("SCL,1,2,3\u00e9".encode("latin-1")))


def test_random_garbage_only_ever_raises_frame_error():
    rng = np.random.default_rng(5)
    for _ in range(300):
        junk = bytes(rng.integers(0, 256, int(rng.integers(1, 80))).astype(np.uint8))
        try:
            fields = decode(junk)
        except FrameError:
            continue
        assert isinstance(fields, list)                   # astronomically unlikely, but not an error


def test_overlong_frame_is_rejected():
    body = ("SCL,1,2," + ",".join(["1"] * (MAX_FRAME // 2))).encode()
    with pytest.raises(FrameError, match="too long"):
        decode(framed(body))


# ---- scale frames --------------------------------------------------------------------------------
def test_scale_frame_round_trip():
    counts = [166070, 35416, -12, 0]
    sample = parse_scale(scale_frame(42, 1_767_225_600_123_456_000, counts), 4)
    assert sample.seq == 42
    assert sample.stamp_ns == 1_767_225_600_123_456_000
    assert sample.counts.dtype == np.int64
    assert sample.counts.tolist() == counts


def test_scale_stamp_is_microsecond_resolution():
    sample = parse_scale(scale_frame(1, 1_000_999, [1]), 1)
    assert sample.stamp_ns == 1_000_000


def test_scale_frame_with_wrong_plate_count():
    with pytest.raises(FrameError, match="expected 4 plate readings, got 3"):
        parse_scale(scale_frame(1, 10_000, [1, 2, 3]), 4)


def test_scale_frame_with_non_integer_reading():
    with pytest.raises(FrameError, match="non-integer"):
        parse_scale(encode(["SCL", "1", "10", "12", "x3"]), 2)


def test_scale_frame_with_bad_header():
    with pytest.raises(FrameError, match="bad sequence/timestamp"):
        parse_scale(encode(["SCL", "one", "10", "1"]), 1)
    with pytest.raises(FrameError, match="missing sequence"):
        parse_scale(encode(["SCL", "1"]), 0)


def test_gate_frame_is_not_a_scale_frame():
    with pytest.raises(FrameError, match="expected a SCL frame"):
        parse_scale(gate_frame(1, 10_000, "HB"), 1)


# ---- gate frames ---------------------------------------------------------------------------------
def test_gate_frame_round_trip():
    read = parse_gate(gate_frame(9, 5_000_000, "ENTRY", "tok-alice", 3, staff=False))
    assert (read.seq, read.stamp_ns, read.action, read.token, read.party_size, read.staff) == \
        (9, 5_000_000, "ENTRY", "tok-alice", 3, False)
    exit_ = parse_gate(gate_frame(10, 6_000_000, "EXIT", "STAFF_badge_01", 1, staff=True))
    assert exit_.action == "EXIT" and exit_.staff is True


def test_gate_heartbeat():
    read = parse_gate(gate_frame(3, 7_000_000, "HB"))
    assert read.action == "HB" and read.token == "" and read.stamp_ns == 7_000_000


@pytest.mark.parametrize("token", ["ab", "x" * 65, "tok en", "tok;1", "t\u00f8k1"])
def test_gate_token_format_is_enforced(token):
    line = framed(f"GATE,1,10,ENTRY,{token},1,SHOPPER".encode("utf-8"))
    with pytest.raises(FrameError):
        parse_gate(line)


def test_gate_bad_token_message_does_not_echo_the_token():
    with pytest.raises(FrameError, match="unknown token format") as info:
        parse_gate(encode(["GATE", "1", "10", "ENTRY", "bad token!", "1", "SHOPPER"]))
    assert "bad token" not in str(info.value)


@pytest.mark.parametrize("fields, reason", [
    (["GATE", "1", "10", "ENTRY", "tok-1", "1"], "needs ENTRY|EXIT"),            # wrong field count
    (["GATE", "1", "10", "LEAVE", "tok-1", "1", "SHOPPER"], "needs ENTRY|EXIT"),
    (["GATE", "1", "10", "ENTRY", "tok-1", "two", "SHOPPER"], "bad party size"),
    (["GATE", "1", "10", "ENTRY", "tok-1", "0", "SHOPPER"], "bad party size or role"),
    (["GATE", "1", "10", "ENTRY", "tok-1", "21", "SHOPPER"], "bad party size or role"),
    (["GATE", "1", "10", "ENTRY", "tok-1", "1", "ROBOT"], "bad party size or role"),
    (["GATE", "1", "10", "HB", "extra"], "needs ENTRY|EXIT"),
    (["SCL", "1", "10", "5"], "expected a GATE frame"),
])
def test_gate_frame_field_errors(fields, reason):
    with pytest.raises(FrameError, match=reason):
        parse_gate(encode(fields))
