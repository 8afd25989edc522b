"""`papersift bench recommend` on a small slice of the arXiv listings: the summary line has every key the
issue asks for, and papersift's model finds far more of a reader's later papers than a random order."""

from __future__ import annotations

import json

from click.testing import CliRunner

from papersift.cli import main

from .conftest import shared


def test_bench_recommend_on_a_slice_prints_the_summary_and_beats_random() -> None:
    data = shared("arxiv_daily/arxiv_daily_2025-2026.jsonl.gz")
    args = ["bench", "recommend", "--data", str(data), "--since", "2025-12-10", "--until", "2026-01-20"]
    args += ["--readers", "25", "--min-before", "2", "--min-after", "2"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    summary = json.loads(lines[-1])
    assert summary["readers"] == 25
    assert set(summary["baselines"]) == {"random", "tf-idf centroid", "tf-idf SVM (arxiv-sanity)"}
    for figures in [summary, *summary["baselines"].values()]:
        assert 0.0 <= figures["recall@50"] <= 1.0 and 0.0 <= figures["p@10"] <= 1.0
    assert summary["recall@50"] >= 3 * max(summary["baselines"]["random"]["recall@50"], 0.01)
    assert any(line.lstrip().startswith("papersift") for line in lines)  # the table row
