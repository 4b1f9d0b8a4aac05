"""Keeping shoppers' identities apart when they meet.

Two tracks that come within arm's length can swap people (the cameras see one blob, or the
assignment picks the other). Each session keeps a colour reference, learnt only while its shopper
walks alone; when a close pair has been apart again for a moment, the pair is checked against the
references and swapped back if the colours say so. When the colours cannot tell, both visits go to
review rather than risk billing one shopper for the other's items. Two visits that scan in at the
same gate within a moment of each other walk in as one crowd: which track is whose is a guess from
the start, so that pair is at risk until it has been checked.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from storefuse_core.vision import appearance_distance


@dataclass
class IdentityCheck:
    session_a: str
    session_b: str
    stamp_ns: int
    swapped: bool
    conclusive: bool
    keep_cost: float
    swap_cost: float


class IdentityGuard:
    def __init__(self, close_m: float = 0.8, apart_m: float = 1.4, settle_s: float = 1.0, margin: float = 0.08,
                 ref_alpha: float = 0.05, period_s: float = 0.1):
        self.close_m, self.apart_m, self.settle_ns = close_m, apart_m, int(settle_s * 1e9)
        self.margin, self.ref_alpha, self.period_ns = margin, ref_alpha, int(period_s * 1e9)
        self.refs: dict[str, np.ndarray] = {}
        self.at_risk: dict[tuple[str, str], int | None] = {}     # pair -> apart since (None: still close)
        self.last_ns: int | None = None
        self.swaps = 0
        self.entries: list[tuple[int, str, str]] = []      # (stamp, gate, session) of recent scans in
        self.last_track: dict[str, object] = {}             # session -> its track when last seen (one-shopper visits)

    def on_entry(self, stamp_ns: int, gate_id: str, session_id: str, together_s: float = 0.8) -> None:
        self.entries = [e for e in self.entries if stamp_ns - e[0] <= int(together_s * 1e9)]
        for _, gate, other in self.entries:
            if gate == gate_id and other != session_id:
                self.at_risk[tuple(sorted((other, session_id)))] = None
        self.entries.append((stamp_ns, gate_id, session_id))

    def observe(self, stamp_ns: int, tracks) -> list[IdentityCheck]:
        if self.last_ns is not None and stamp_ns - self.last_ns < self.period_ns:
            return []
        self.last_ns = stamp_ns
        bound = [t for t in tracks if t.session_id]
        if not bound:
            return []
        xy = np.array([[float(t.x[0]), float(t.x[1])] for t in bound])
        d = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
        np.fill_diagonal(d, np.inf)
        for i, j in zip(*np.nonzero(np.triu(d < self.close_m, 1))):
            a, b = sorted((bound[i].session_id, bound[j].session_id))
            if a != b:
                self.at_risk[(a, b)] = None
        risky = {s for pair in self.at_risk for s in pair}
        for i, t in enumerate(bound):       # references learn only from shoppers walking alone
            if t.appearance is None or t.session_id in risky or d[i].min() <= self.apart_m:
                continue
            ref = self.refs.get(t.session_id)
            self.refs[t.session_id] = t.appearance.copy() if ref is None else \
                (1 - self.ref_alpha) * ref + self.ref_alpha * t.appearance
        out = []
        index = {}
        for i, t in enumerate(bound):
            index.setdefault(t.session_id, []).append(i)
        for session, rows in index.items():
            if len(rows) == 1:
                self.last_track[session] = bound[rows[0]]
        for pair in sorted(self.at_risk):
            ia, ib = index.get(pair[0], []), index.get(pair[1], [])
            if len(ia) != 1 or len(ib) != 1:
                continue              # one of them is out of sight (or a party): wait
            i, j = ia[0], ib[0]
            if d[i, j] <= self.apart_m:
                self.at_risk[pair] = None
                continue
            since = self.at_risk[pair] = self.at_risk[pair] or stamp_ns
            if stamp_ns - since < self.settle_ns:
                continue
            del self.at_risk[pair]
            out.append(self._check(bound[i], bound[j], stamp_ns))
        return out

    def leaving(self, session_id: str, stamp_ns: int) -> list[IdentityCheck]:
        """A visit exits while still at risk with another (never seen apart): the last look at both
        shoppers, against the colours each had alone, says whether they kept their names; when it
        cannot say (or says they swapped, too late to undo), who was who is unknown."""
        out = []
        for pair in sorted(p for p in self.at_risk if session_id in p):
            del self.at_risk[pair]
            ta, tb = self.last_track.get(pair[0]), self.last_track.get(pair[1])
            if ta is not None and tb is not None and ta is not tb:
                check = self._compare(pair[0], pair[1], ta, tb, stamp_ns)
                if check.conclusive and not check.swapped:
                    out.append(check)
                    continue
            out.append(IdentityCheck(pair[0], pair[1], stamp_ns, False, False, 0.0, 0.0))
        self.last_track.pop(session_id, None)
        return out

    def _check(self, ta, tb, stamp_ns: int) -> IdentityCheck:
        a, b = ta.session_id, tb.session_id
        check = self._compare(a, b, ta, tb, stamp_ns)
        if check.swapped:
            ta.session_id, tb.session_id = b, a
            ta.identity, tb.identity = tb.identity, ta.identity
            self.swaps += 1
        return check

    def _compare(self, a: str, b: str, ta, tb, stamp_ns: int) -> IdentityCheck:
        """Do tracks ta (named a) and tb (named b) look like a's and b's references, or the other way round?"""
        ra, rb = self.refs.get(a), self.refs.get(b)
        if ta.appearance is None or tb.appearance is None or (ra is None and rb is None):
            return IdentityCheck(a, b, stamp_ns, False, False, 0.0, 0.0)
        # With one reference (the first of two who scanned in together had the gate to themselves
        # for a moment; the second never walked alone) the question is which of the two it is.
        keep = swap = 0.0
        if ra is not None:
            keep, swap = keep + appearance_distance(ta.appearance, ra), swap + appearance_distance(tb.appearance, ra)
        if rb is not None:
            keep, swap = keep + appearance_distance(tb.appearance, rb), swap + appearance_distance(ta.appearance, rb)
        swapped = swap + self.margin < keep
        return IdentityCheck(a, b, stamp_ns, swapped, abs(keep - swap) >= self.margin, keep, swap)
