"""Scoring receipts against ground truth (the 2020 AutoCheckout definition: a line is a hit when
product, quantity and payer are right).

Receipts are matched to true visits by their exit stamp (the final receipt is stamped with the exit
scan), then by order for receipts without an exit (end of bag).
"""
from __future__ import annotations


def _lines(lines) -> dict[str, int]:
    out: dict[str, int] = {}
    for ln in lines:
        out[ln["sku"]] = out.get(ln["sku"], 0) + int(ln["qty"])
    return {k: v for k, v in out.items() if v > 0}


def match(ground_truth: dict, receipts: list[dict], tolerance_ns: int = 1_000_000_000):
    """Pairs (visit, receipt or None), one per true visit, plus the receipts nobody matched."""
    free = list(receipts)
    pairs = []
    for visit in ground_truth["visits"]:
        best = None
        for r in free:
            stamp = r.get("final_stamp_ns")
            if stamp is not None and abs(stamp - visit["exit_ns"]) <= tolerance_ns:
                off = abs(stamp - visit["exit_ns"])
                if best is None or off < abs(best["final_stamp_ns"] - visit["exit_ns"]):
                    best = r
        if best is not None:
            free.remove(best)
        pairs.append((visit, best))
    return pairs, free


def score(ground_truth: dict, receipts: list[dict]) -> dict:
    pairs, extra = match(ground_truth, receipts)
    hits = predicted = actual = exact = reviews = unreviewed = unreviewed_exact = 0
    for visit, r in pairs:
        truth = _lines(visit["lines"])
        got = _lines(r["lines"]) if r else {}
        actual += sum(truth.values())
        predicted += sum(got.values())
        hits += sum(min(q, got.get(sku, 0)) for sku, q in truth.items())
        is_exact = r is not None and got == truth
        exact += is_exact
        if r is not None and r["status"] == "NEEDS_REVIEW":
            reviews += 1
        elif r is not None:
            unreviewed += 1
            unreviewed_exact += is_exact
    for r in extra:
        predicted += sum(_lines(r["lines"]).values())
    visits = len(pairs)
    precision = hits / predicted if predicted else 1.0
    recall = hits / actual if actual else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "visits": visits, "exact_receipts": exact, "unmatched_receipts": len(extra),
        "line_precision": round(precision, 6), "line_recall": round(recall, 6), "line_f1": round(f1, 6),
        "reviews_per_1000": round(1000.0 * reviews / visits, 3) if visits else 0.0,
        "unreviewed_exact": round(unreviewed_exact / unreviewed, 6) if unreviewed else 1.0,
    }


def pool(runs: list[tuple[dict, list[dict]]], tracking: list[dict] | None = None) -> dict:
    """Metrics over several runs (seeds), pooled as one long day; latencies only from live runs."""
    merged_gt = {"visits": []}
    merged = []
    for i, (gt, receipts) in enumerate(runs):
        offset = i * 10 ** 15          # keep runs apart when matching by exit stamp
        merged_gt["visits"] += [dict(v, exit_ns=v["exit_ns"] + offset) for v in gt["visits"]]
        merged += [dict(r, final_stamp_ns=r["final_stamp_ns"] + offset) for r in receipts]
    metrics = score(merged_gt, merged)
    metrics.update({"runs": len(runs), "latency_live_p50_ms": None, "latency_live_p99_ms": None,
                    "latency_final_p50_ms": None, "latency_final_p99_ms": None, "idf1": None, "mota": None})
    scored = [t for t in (tracking or []) if t.get("idf1") is not None]
    if scored:      # frame-weighted would need the counts; runs are similar in length
        metrics["idf1"] = round(sum(t["idf1"] for t in scored) / len(scored), 6)
        metrics["mota"] = round(sum(t["mota"] for t in scored) / len(scored), 6)
    return metrics


def tracking_metrics(ground_truth: dict, track_frames, max_dist_m: float = 1.0) -> dict:
    """IDF1 and MOTA (motmetrics) of tracks against the simulator's true trajectories.

    track_frames: [(stamp_ns, [(track_id, x, y), ...])] at camera frame times.
    """
    import motmetrics as mm
    import numpy as np
    acc = mm.MOTAccumulator(auto_id=True)
    trajs = {k: np.array(v, dtype=float) for k, v in ground_truth.get("trajectories", {}).items()}
    numbers: dict[str, int] = {}      # motmetrics (with pandas 3) wants numeric ids

    def num(key: str) -> int:
        return numbers.setdefault(key, len(numbers) + 1)
    for stamp, tracks in track_frames:
        ids, pts = [], []
        for sid, tr in trajs.items():
            if tr[0, 0] <= stamp <= tr[-1, 0]:
                ids.append(num("gt:" + sid))
                pts.append([np.interp(stamp, tr[:, 0], tr[:, 1]), np.interp(stamp, tr[:, 0], tr[:, 2])])
        hyp = [num("track:" + t[0]) for t in tracks]
        hpts = [[t[1], t[2]] for t in tracks]
        dist = mm.distances.norm2squared_matrix(np.array(pts).reshape(-1, 2), np.array(hpts).reshape(-1, 2),
                                                max_d2=max_dist_m ** 2)
        acc.update(ids, hyp, dist)
    if not track_frames:
        return {"idf1": None, "mota": None}
    summary = mm.metrics.create().compute(acc, metrics=["idf1", "mota"], name="run")
    return {"idf1": round(float(summary["idf1"].iloc[0]), 6), "mota": round(float(summary["mota"].iloc[0]), 6)}


def live_latencies(bag_path) -> dict:
    """Latencies of a live run, from its bag: every time is the recorder's receive time, so all
    are on one clock. Final: exit scan (GateEvent EXIT received) -> final receipt received. Live:
    shelf event received -> first live receipt carrying that event's line. The shelf event itself
    is published once the change has settled and held for the detector's confirm window."""
    import numpy as np

    from storefuse_core import topics
    from storefuse_core.bag import read_bag
    from storefuse_core.convert import stamp_ns

    exits, events, finals, lines = {}, {}, [], {}
    wanted = [topics.GATE_EVENTS, topics.SHELF_EVENTS, topics.RECEIPTS_LIVE, topics.RECEIPTS_FINAL]
    for m in read_bag(bag_path, wanted):
        if m.topic == topics.GATE_EVENTS and m.msg.direction == 1:
            exits.setdefault(stamp_ns(m.msg.header.stamp), m.log_ns)
        elif m.topic == topics.SHELF_EVENTS:
            events.setdefault(m.msg.event_id, m.log_ns)
        elif m.topic == topics.RECEIPTS_FINAL:
            finals.append((stamp_ns(m.msg.header.stamp), m.log_ns))
        elif m.topic == topics.RECEIPTS_LIVE:
            for ln in m.msg.lines:
                for ev in ln.evidence_ids:
                    lines.setdefault(ev, m.log_ns)
    final_ms = [(log - exits[stamp]) / 1e6 for stamp, log in finals if stamp in exits]
    live_ms = [(lines[ev] - log) / 1e6 for ev, log in events.items() if ev in lines]

    def pct(values, q):
        return round(float(np.percentile(values, q)), 1) if values else None
    return {"latency_live_p50_ms": pct(live_ms, 50), "latency_live_p99_ms": pct(live_ms, 99),
            "latency_final_p50_ms": pct(final_ms, 50), "latency_final_p99_ms": pct(final_ms, 99)}
