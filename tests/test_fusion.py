"""Fusion rules against hand-computed values."""

from __future__ import annotations

import pytest

from papersift.index.fusion import convex, rrf


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


def test_convex_normalises_each_list() -> None:
    bm25 = [("a", 20.0), ("b", 10.0), ("c", 0.0)]
    dense = [("b", 0.9), ("c", 0.5), ("a", 0.1)]
    fused = dict(convex([bm25, dense], [0.5, 0.5]))
    assert fused["a"] == pytest.approx(0.5 * 1.0 + 0.5 * 0.0)
    assert fused["b"] == pytest.approx(0.5 * 0.5 + 0.5 * 1.0)
    assert fused["c"] == pytest.approx(0.5 * 0.0 + 0.5 * 0.5)
    assert convex([[], [("z", 3.0)]], [0.5, 0.5]) == [("z", 0.5)]
