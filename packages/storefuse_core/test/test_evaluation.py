"""Scoring receipts against ground truth (AutoCheckout 2020: product, quantity and payer right)."""
from __future__ import annotations

import pytest

from storefuse_core.evaluation import match, pool, score

S = 1_000_000_000


def visit(vid, exit_s, **lines):
    return {"visit_id": vid, "exit_ns": int(exit_s * S),
            "lines": [{"sku": k, "qty": q} for k, q in lines.items()]}


def receipt(exit_s, status="FINAL", **lines):
    return {"final_stamp_ns": int(exit_s * S), "status": status,
            "lines": [{"sku": k, "qty": q} for k, q in lines.items()]}


GT = {"visits": [visit("alice", 30, A=2, B=1), visit("bob", 60, C=1)]}


def test_perfect_receipts():
    m = score(GT, [receipt(30.2, A=2, B=1), receipt(60, C=1)])
    assert m == {"visits": 2, "exact_receipts": 2, "unmatched_receipts": 0, "line_precision": 1.0,
                 "line_recall": 1.0, "line_f1": 1.0, "reviews_per_1000": 0.0, "unreviewed_exact": 1.0}


def test_wrong_quantity_counts_partial_hits():
    m = score(GT, [receipt(30, A=1, B=1), receipt(60, C=1)])
    assert m["exact_receipts"] == 1
    assert m["line_precision"] == 1.0
    assert m["line_recall"] == pytest.approx(3 / 4)
    assert m["line_f1"] == pytest.approx(2 * 0.75 / 1.75, abs=1e-6)


def test_wrong_payer_is_a_miss_and_a_false_line():
    m = score(GT, [receipt(30, A=2, B=1, C=1), receipt(60)])
    assert m["exact_receipts"] == 0
    assert m["line_precision"] == pytest.approx(3 / 4)
    assert m["line_recall"] == pytest.approx(3 / 4)


def test_missing_and_extra_receipts():
    m = score(GT, [receipt(30, A=2, B=1), receipt(200, D=5)])
    assert m["exact_receipts"] == 1 and m["unmatched_receipts"] == 1
    assert m["line_recall"] == pytest.approx(3 / 4)
    assert m["line_precision"] == pytest.approx(3 / 8)


def test_matching_is_by_nearest_exit_within_a_second():
    gt = {"visits": [visit("a", 10, A=1), visit("b", 10.5, B=1)]}
    pairs, extra = match(gt, [receipt(10.45, B=1), receipt(10.05, A=1)])
    assert [(v["visit_id"], r["lines"][0]["sku"]) for v, r in pairs] == [("a", "A"), ("b", "B")]
    assert extra == []
    pairs, extra = match(gt, [receipt(12, A=1)])
    assert [r for _, r in pairs] == [None, None] and len(extra) == 1


def test_reviews_and_unreviewed_exactness():
    m = score(GT, [receipt(30, "NEEDS_REVIEW", A=1), receipt(60, C=1)])
    assert m["reviews_per_1000"] == 500.0
    assert m["unreviewed_exact"] == 1.0          # the one receipt that went out unreviewed was right
    m = score(GT, [receipt(30, "REVIEWED", A=2, B=1), receipt(60, C=2)])
    assert m["reviews_per_1000"] == 0.0 and m["unreviewed_exact"] == 0.5


def test_zero_quantity_lines_are_ignored_and_repeated_skus_summed():
    m = score(GT, [receipt(30, A=2, B=1, Z=0), {"final_stamp_ns": 60 * S, "status": "FINAL",
                                                 "lines": [{"sku": "C", "qty": 1}, {"sku": "C", "qty": 0}]}])
    assert m["exact_receipts"] == 2


def test_pool_keeps_runs_apart():
    run1 = (GT, [receipt(30, A=2, B=1), receipt(60, C=1)])
    run2 = (GT, [receipt(30, A=2), receipt(60, C=1)])
    m = pool([run1, run2])
    assert m["runs"] == 2 and m["visits"] == 4 and m["exact_receipts"] == 3
    assert m["unmatched_receipts"] == 0
    for key in ("latency_live_p50_ms", "latency_live_p99_ms", "latency_final_p50_ms", "latency_final_p99_ms",
                "idf1", "mota"):
        assert key in m and m[key] is None


def test_empty_ground_truth():
    m = score({"visits": []}, [])
    assert m["visits"] == 0 and m["line_precision"] == 1.0 and m["line_recall"] == 1.0
