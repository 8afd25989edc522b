"""Write tests/fixtures/embed_reference.npz: sample texts and their all-MiniLM-L6-v2 vectors.

The vectors are the yardstick any shipped model file must match (cosine >= 0.99, see
tests/test_embed_reference.py), so they were made once with the models of the day and are not
regenerated when the shipped file changes. Needs the `st` extra (torch, sentence-transformers).
Run from the repo root:  HF_HUB_OFFLINE=1 python tools/make_embed_reference.py [--int8-from SPEC]

Texts: titles, two-sentence windows and whole abstracts (some past 256 tokens, so truncation is
covered) of 20 papers of the bundled sample, plus a few short and odd strings.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
from pathlib import Path

import numpy as np

from papersift.index.embed import make_embedder

SAMPLE = Path("src/papersift/data/sample/arxiv_daily_sample.jsonl.gz")
OUT = Path("tests/fixtures/embed_reference.npz")
ODD = ["x", "GPU", "Ωmega-3 & β-blockers: a 2×2 trial", "what is attention?", "  spaced   out  "]


def sample_texts(n_papers: int = 20, seed: int = 13) -> list[str]:
    """Reproducible mix of titles, abstract windows and whole abstracts from the bundled sample."""
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    rng = random.Random(seed)
    texts: list[str] = []
    for r in rng.sample(rows, n_papers):
        sentences = r["abstract"].split(". ")
        texts += [r["title"], ". ".join(sentences[:2]), r["abstract"]]
    return texts + ODD


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--int8-from", default="minilm-onnx-int8", help="embedder spec of the int8 reference")
    args = ap.parse_args()
    texts = sample_texts()
    fp32 = make_embedder("st:packaged").embed_documents(texts)
    int8 = make_embedder(args.int8_from).embed_documents(texts)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, texts=np.array(texts), fp32=fp32.astype(np.float16), int8=int8.astype(np.float16))
    cos = (fp32 * int8).sum(1)
    print(f"{len(texts)} texts; int8 vs fp32 cosine min {cos.min():.4f} mean {cos.mean():.4f} -> {OUT}")


if __name__ == "__main__":
    main()
