"""Fusion rules against hand-computed values."""

from __future__ import annotations

import pytest

from papersift.index.fusion import rrf, zscore_convex


def test_rrf_matches_the_formula() -> None:
    bm25 = [("a", 9.0), ("b", 5.0), ("c", 1.0)]
    dense = [("c", 0.9), ("a", 0.8)]
    fused = dict(rrf([bm25, dense], k=60))
    assert fused["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert fused["b"] == pytest.approx(1 / 62)
    assert fused["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert [d for d, _ in rrf([bm25, dense], k=60)] == ["a", "c", "b"]


def test_rrf_weights_and_ties_are_deterministic() -> None:
    assert rrf([[("x", 1.0)], [("y", 1.0)]]) == rrf([[("x", 1.0)], [("y", 1.0)]])
    assert rrf([[("x", 1.0)], [("y", 1.0)]])[0][0] == "x"  # tie broken by id
    assert rrf([[("x", 1.0)], [("y", 1.0)]], weights=[1.0, 2.0])[0][0] == "y"


def test_zscore_convex_standardises_each_signal_over_the_candidates() -> None:
    bm25 = {"a": 20.0, "b": 10.0}  # "c" came from the dense list only: it gets BM25's floor, 10
    whole = {"a": 0.1, "b": 0.9, "c": 0.5}
    fused = dict(zscore_convex([bm25, whole], [0.5, 0.5], ["a", "b", "c"]))
    z_bm25 = {"a": 2 / 2**0.5, "b": -1 / 2**0.5, "c": -1 / 2**0.5}  # [20, 10, 10]: mean 13.3, std 4.71
    z_whole = {"a": -(1.5**0.5), "b": 1.5**0.5, "c": 0.0}  # [0.1, 0.9, 0.5]: mean 0.5, std 0.327
    for doc in "abc":
        assert fused[doc] == pytest.approx(0.5 * z_bm25[doc] + 0.5 * z_whole[doc], abs=1e-6)
    assert [d for d, _ in zscore_convex([bm25, whole], [1.0, 0.0], ["c", "b", "a"])] == ["a", "b", "c"]
    assert zscore_convex([bm25], [1.0], []) == []
    assert zscore_convex([{}, {"x": 1.0}], [0.5, 0.5], ["x"]) == [("x", 0.0)]  # constant signal: z = 0
