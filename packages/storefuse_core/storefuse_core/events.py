"""Domain records that flow through the pipeline. Plain dataclasses: no ROS types here.

Stamps are integer nanoseconds of sensor (or bag) time, so a replay reproduces them exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

ENTRY, EXIT = 0, 1
PICK, PUT = 0, 1
# Plate health, on the shelf-event stream so fusion sees it in stamp order with everything else:
# a plate whose reading has not changed at all for a while may be a dead cell (shelf.py).
PLATE_SILENT, PLATE_LIVE = 2, 3
OPEN, FINAL, NEEDS_REVIEW, REVIEWED = 0, 1, 2, 3
STATUS_NAMES = {OPEN: "OPEN", FINAL: "FINAL", NEEDS_REVIEW: "NEEDS_REVIEW", REVIEWED: "REVIEWED"}


@dataclass
class PlateBlock:
    """A block of calibrated samples from one scale board (the PlateWeights message)."""
    board_id: str
    first_seq: int
    stamps_ns: np.ndarray          # int64, shape (n,)
    grams: np.ndarray              # float32, shape (n, plates)
    plate_status: np.ndarray       # uint8, shape (plates,)


@dataclass(frozen=True)
class Candidate:
    sku: str
    name: str
    qty: int
    unit_grams: float
    probability: float


@dataclass
class ShelfEvent:
    event_id: str
    stamp_ns: int                  # settled
    start_ns: int
    gondola_id: str
    shelf_id: str
    plate_ids: list[str]
    plate_deltas: list[float]
    delta_grams: float
    noise_sd: float
    kind: int
    candidates: list[Candidate]


@dataclass(frozen=True)
class ProductView:
    """An item a camera saw in a shopper's hand at a shelf, with its classifier's answer (the
    ProductViews message): evidence of *what* was taken or put back, and, where the camera host's
    pose estimate linked the hand to a body, of *who*: the floor point of the person whose arm it
    is (NaN when it could not)."""
    stamp_ns: int
    camera_id: str
    gondola_id: str
    shelf_id: str
    x: float
    y: float
    z: float
    pixels: float
    probabilities: tuple[tuple[str, float], ...]     # (sku, probability), most likely first
    body_x: float = float("nan")
    body_y: float = float("nan")

    @property
    def linked(self) -> bool:
        return not (math.isnan(self.body_x) or math.isnan(self.body_y))


@dataclass
class GateEvent:
    stamp_ns: int
    gate_id: str
    direction: int
    session_id: str
    token_hash: str
    party_size: int = 1
    staff: bool = False
    seq: int = 0


@dataclass
class ReceiptLine:
    sku: str
    name: str
    qty: int
    unit_price: float
    confidence: float
    evidence_ids: list[str] = field(default_factory=list)


@dataclass
class Receipt:
    session_id: str
    stamp_ns: int
    status: int
    status_reason: str
    revision: int
    lines: list[ReceiptLine]
    total: float
    currency: str
    confidence: float

    def as_json(self) -> dict:
        """The command-line contract's receipt object (DESIGN.md: replay --json)."""
        return {
            "session_id": self.session_id,
            "status": STATUS_NAMES[self.status],
            "status_reason": self.status_reason,
            "final_stamp_ns": self.stamp_ns,
            "total": round(self.total, 2),
            "confidence": round(self.confidence, 6),
            "lines": [{"sku": ln.sku, "name": ln.name, "qty": ln.qty, "unit_price": ln.unit_price,
                       "confidence": round(ln.confidence, 6), "evidence_ids": list(ln.evidence_ids)}
                      for ln in self.lines],
        }
