"""Where receipts go wrong: every ground-truth shelf action matched to the detected shelf event and
to the session it was billed to, with each error put in one class.

    . scripts/env.sh && python bench/fusion_errors.py SCENARIO.yaml [--seeds N] [--keep DIR]

Classes: `missed` (no shelf event for a true action), `product` (event found, wrong product or
quantity), `payer` (right product, billed to another visit), `extra` (an event nobody made), and
per visit whether the final receipt was exact and whether it went to review. Writes
out/bench/fusion_errors_<scenario>.json and prints a summary. A diagnostic, not a metric: the
metrics are `storefuse eval`'s.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def analyse(gt: dict, result) -> dict:
    from storefuse_core.evaluation import match
    finals = result.finals_json()
    pairs, _ = match(gt, finals)
    visit_of_session = {r["session_id"]: v["visit_id"] for v, r in pairs if r is not None}
    member_visit = {m: v["visit_id"] for v in gt["visits"] for m in v["members"]}
    rows = list(result.ledger_rows)
    billed = {}                      # event id -> (visit, sku, qty, kind of row, confidence, attribution)
    for key, session, _stamp, kind, body in rows:
        if key.startswith(("event/", "cart/", "window/")):      # amended by the carts' word, by the recheck
            billed[body["event_id"]] = (visit_of_session.get(session, session[:8] if session else ""),
                                        body.get("sku"), body.get("qty"), "line" if kind == "amend" else kind,
                                        body.get("confidence"), body.get("attribution"))
    events = sorted(result.shelf_events, key=lambda e: e.start_ns)
    used: set[str] = set()
    out = []
    for a in gt["events"]:
        if a.get("staff"):
            continue
        shelf = a["plates"][0].rsplit("P", 1)[0] if a["plates"] else ""     # a layout names plates <shelf>P<n>
        best = None
        for e in events:
            if e.event_id in used or e.shelf_id != shelf:
                continue
            dt = abs(e.start_ns - a["t_ns"]) / 1e9 + (0.0 if set(e.plate_ids) & set(a["plates"]) else 2.0)
            if dt < 4.0 and (best is None or dt < best[0]):
                best = (dt, e)
        payer_visit = member_visit.get(a["payer"], a["payer"])
        rec = {"t_s": (a["t_ns"] - gt["t0_ns"]) / 1e9, "shopper": a["shopper"], "visit": payer_visit,
               "kind": a["kind"], "sku": a["sku"], "qty": a["qty"], "plates": a["plates"],
               "misplaced": a.get("misplaced", False)}
        if best is None:
            rec["class"] = "missed"
        else:
            e = best[1]
            used.add(e.event_id)
            visit, sku, qty, kind, conf, attr = billed.get(e.event_id, ("", None, None, "none", None, None))
            rec.update(event=e.event_id, billed_visit=visit, billed_sku=sku, billed_qty=qty, row=kind,
                       confidence=conf, attribution=attr, delta=round(e.delta_grams, 1))
            if kind != "line":
                rec["class"] = f"row:{kind}"
            elif sku != a["sku"] or abs(qty) != a["qty"]:
                rec["class"] = "product"
            elif visit != payer_visit:
                rec["class"] = "payer"
            else:
                rec["class"] = "ok"
        out.append(rec)
    extra = [{"event": e.event_id, "shelf": e.shelf_id, "delta": round(e.delta_grams, 1),
              "billed": billed.get(e.event_id)} for e in events if e.event_id not in used]
    visits = []
    for v, r in pairs:
        truth = {ln["sku"]: ln["qty"] for ln in v["lines"]}
        got = {} if r is None else {ln["sku"]: ln["qty"] for ln in r["lines"] if ln["qty"] > 0}
        visits.append({"visit": v["visit_id"], "exact": truth == got,
                       "status": None if r is None else r["status"],
                       "confidence": None if r is None else r["confidence"]})
    return {"actions": out, "extra": extra, "visits": visits}


def simulated(scenario: Path, seed: int, folder: Path) -> tuple[dict, Path]:
    """(ground truth, run folder) of one seed of a scenario, simulated into folder/<name>-<seed>
    unless it is there already (a --keep folder reused)."""
    from storefuse_core.simulation.offline import run_offline
    from storefuse_core.simulation.scenario import load_scenario
    out = folder / f"{scenario.stem}-{seed}"
    if (out / "ground_truth.json").exists():
        return json.loads((out / "ground_truth.json").read_text()), out
    return run_offline(load_scenario(scenario, seed), out), out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", type=Path)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--keep", type=Path, default=None, help="keep (and reuse) the simulated bags here")
    ap.add_argument("--no-cart-evidence", action="store_true", help="replay without the smart carts' word (issue 6)")
    args = ap.parse_args()
    from storefuse_core.replay import replay_bag
    from storefuse_core.simulation.scenario import load_scenario
    base = load_scenario(args.scenario)
    report = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.seeds):
            seed = base.seed + i
            gt, out = simulated(args.scenario, seed, args.keep or Path(tmp))
            result = replay_bag(out / "bag", cart_evidence=not args.no_cart_evidence)
            report.append({"seed": seed, **analyse(gt, result)})
    classes = Counter(a["class"] for r in report for a in r["actions"])
    visits = [v for r in report for v in r["visits"]]
    summary = {"scenario": args.scenario.stem, "seeds": args.seeds, "actions": sum(classes.values()),
               "classes": dict(classes), "extra_events": sum(len(r["extra"]) for r in report),
               "visits": len(visits), "exact": sum(v["exact"] for v in visits),
               "reviewed": sum(v["status"] == "NEEDS_REVIEW" for v in visits),
               "wrong_unreviewed": sum((not v["exact"]) and v["status"] != "NEEDS_REVIEW" for v in visits)}
    suffix = "_no_carts" if args.no_cart_evidence else ""
    path = ROOT / "out" / "bench" / f"fusion_errors_{args.scenario.stem}{suffix}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"summary": summary, "runs": report}, indent=1))
    print(json.dumps(summary), file=sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
