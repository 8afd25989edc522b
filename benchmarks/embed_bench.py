"""Embedder speed and dense-retrieval quality on SciFact (BEIR format), one line per variant.

Run from the repo root:  HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/embed_bench.py [--variants a,b] [--data DIR]

For each variant: documents/s embedding title + " " + text for the 5,183-doc corpus (tokenisation
included, model load excluded), p50 ms of one embed_query call, and exact-cosine nDCG@10 / Recall@100
on the 300 test queries. nDCG uses trec_eval's gain (the qrels grade) over log2(rank + 1).

`--speed N` measures throughput only: papers/s embedding title + abstract of the first N papers of
the arXiv listing snapshot (../shared/data/arxiv_daily), after a warm-up batch, and `--device cuda`
runs the model on onnxruntime's CUDA provider (benchmarks/gpu_embed.sh runs both devices).
The last line printed is a JSON summary.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from papersift.index.embed import make_embedder

DEFAULT_DATA = Path("../shared/data/scifact")
ARXIV = Path(__file__).resolve().parents[2] / "shared/data/arxiv_daily/arxiv_daily_2025-2026.jsonl.gz"
DEFAULT_VARIANTS = "hash,static:minilm,minilm-onnx-int8@64,minilm-onnx-int8@128,minilm-onnx-int8,minilm-onnx"


def load_scifact(root: Path) -> tuple[list[str], list[str], dict[str, str], dict[str, dict[str, int]]]:
    """Return (doc ids, doc texts, test query id -> text, qrels query -> {doc: grade})."""
    ids, texts = [], []
    with (root / "beir_format" / "corpus.jsonl").open(encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            ids.append(str(d["_id"]))
            texts.append(f"{d.get('title', '')} {d.get('text', '')}".strip())
    qrels: dict[str, dict[str, int]] = {}
    with (root / "beir_qrels" / "test.tsv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    queries = {}
    with (root / "beir_format" / "queries.jsonl").open(encoding="utf-8") as f:
        for line in f:
            q = json.loads(line)
            if str(q["_id"]) in qrels:
                queries[str(q["_id"])] = q["text"]
    return ids, texts, queries, qrels


def ndcg_at_k(ranked: list[str], rels: dict[str, int], k: int = 10) -> float:
    dcg = sum(rels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted(rels.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: list[str], rels: dict[str, int], k: int = 100) -> float:
    relevant = {d for d, g in rels.items() if g > 0}
    return len(relevant.intersection(ranked[:k])) / len(relevant) if relevant else 0.0


def evaluate(spec: str, ids: list[str], texts: list[str], queries: dict[str, str], qrels: dict) -> dict:
    t0 = time.perf_counter()
    emb = make_embedder(spec)
    load_s = time.perf_counter() - t0
    emb.embed_documents(texts[:16])  # warm-up: first-run allocations are not throughput
    t0 = time.perf_counter()
    doc_vecs = emb.embed_documents(texts)
    embed_s = time.perf_counter() - t0
    qids = list(queries)
    q_times, q_vecs = [], []
    for qid in qids:
        t = time.perf_counter()
        q_vecs.append(emb.embed_query(queries[qid]))
        q_times.append((time.perf_counter() - t) * 1000)
    scores = np.stack(q_vecs) @ doc_vecs.T
    top = np.argsort(-scores, axis=1)[:, :100]
    ndcg, rec = [], []
    for row, qid in zip(top, qids, strict=True):
        ranked = [ids[i] for i in row]
        ndcg.append(ndcg_at_k(ranked, qrels[qid]))
        rec.append(recall_at_k(ranked, qrels[qid]))
    return {
        "variant": emb.name,
        "spec": spec,
        "dim": emb.dim,
        "docs_per_s": round(len(texts) / embed_s, 1),
        "query_ms_p50": round(statistics.median(q_times), 2),
        "ndcg@10": round(float(np.mean(ndcg)), 4),
        "recall@100": round(float(np.mean(rec)), 4),
        "load_s": round(load_s, 1),
        "n_docs": len(texts),
        "n_queries": len(qids),
    }


def load_abstracts(n: int, path: Path = ARXIV) -> list[str]:
    """Title + abstract of the first n papers of the arXiv listing snapshot (cycled when n exceeds it)."""
    texts: list[str] = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            texts.append(f"{r.get('title', '')} {r.get('abstract', '')}".strip())
            if len(texts) >= n:
                break
    return [texts[i % len(texts)] for i in range(n)]


def speed(spec: str, texts: list[str], device: str, batch_tokens: int | None) -> dict:
    """Papers/s of embed_documents over `texts` (model load and one warm-up batch excluded)."""
    kwargs = {"batch_tokens": batch_tokens} if batch_tokens else {}
    t0 = time.perf_counter()
    emb = make_embedder(spec, device=device, **kwargs)
    load_s = time.perf_counter() - t0
    emb.embed_documents(texts[:64])
    t0 = time.perf_counter()
    vectors = emb.embed_documents(texts)
    took = time.perf_counter() - t0
    assert vectors.shape == (len(texts), emb.dim)
    return {
        "variant": emb.name,
        "device": device,
        "papers": len(texts),
        "papers_per_s": round(len(texts) / took, 1),
        "seconds": round(took, 1),
        "load_s": round(load_s, 2),
        "batch_tokens": getattr(emb, "batch_tokens", None),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="SciFact dir (with beir_format/, beir_qrels/)")
    ap.add_argument("--variants", default=DEFAULT_VARIANTS, help="comma-separated embedder specs, e.g. st:packaged")
    ap.add_argument("--speed", type=int, metavar="N", help="only papers/s on N arXiv abstracts (no nDCG)")
    ap.add_argument("--arxiv", type=Path, default=ARXIV, help="arXiv listing JSON lines (gzip) for --speed")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where the ONNX model runs")
    ap.add_argument("--batch-tokens", type=int, help="padded tokens per batch (default: chosen for the device)")
    args = ap.parse_args(argv)
    if args.speed:
        texts = load_abstracts(args.speed, args.arxiv)
        runs = [speed(s.strip(), texts, args.device, args.batch_tokens) for s in args.variants.split(",") if s.strip()]
        for r in runs:
            print(f"{r['variant']:<24} {r['device']:<5} papers/s {r['papers_per_s']:>8.1f}  ({r['papers']} papers)")
        print(json.dumps({"dataset": "arxiv-abstracts", "results": runs}))
        return 0
    ids, texts, queries, qrels = load_scifact(args.data)
    print(f"SciFact: {len(ids)} docs, {len(queries)} test queries", file=sys.stderr)
    results = []
    for spec in [s.strip() for s in args.variants.split(",") if s.strip()]:
        r = evaluate(spec, ids, texts, queries, qrels)
        results.append(r)
        print(
            f"{r['variant']:<24} docs/s {r['docs_per_s']:>8.1f}  query ms p50 {r['query_ms_p50']:>7.2f}  "
            f"nDCG@10 {r['ndcg@10']:.4f}  R@100 {r['recall@100']:.4f}  (load {r['load_s']}s)",
            flush=True,
        )
    print(json.dumps({"dataset": "scifact-test", "results": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
