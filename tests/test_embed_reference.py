"""The int8 MiniLM shipped in papersift: today's vectors, without torch, without a build.

The reference vectors (tests/fixtures/embed_reference.npz, tools/make_embed_reference.py) were made
with the models papersift used before it shipped its own file: sentence-transformers fp32 and the
int8 export built at first run. The shipped file must stay within int8 rounding of both.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from papersift.index.embed import make_embedder

from .conftest import FIXTURES
from .test_embed import needs_ort

REFERENCE = FIXTURES / "embed_reference.npz"
SAMPLE_TEXTS = 60  # titles, two-sentence windows and abstracts of 20 sample papers; then 5 odd strings


@needs_ort
def test_shipped_model_matches_the_reference_vectors() -> None:
    ref = np.load(REFERENCE)
    texts = [str(t) for t in ref["texts"]]
    vectors = make_embedder("minilm-onnx-int8").embed_documents(texts)
    for name in ("fp32", "int8"):
        cos = (vectors * ref[name].astype(np.float32)).sum(axis=1)
        assert cos[:SAMPLE_TEXTS].min() >= 0.99, (name, cos[:SAMPLE_TEXTS].min())
        assert cos[:SAMPLE_TEXTS].mean() >= 0.994, (name, cos.mean())
        # one-token strings ("x") swing most under int8 activation rounding: the old export's own 'x'
        # was 0.9865 from fp32
        assert cos[SAMPLE_TEXTS:].min() >= 0.975, (name, cos[SAMPLE_TEXTS:])


@needs_ort
def test_the_graph_cuda_runs_matches_the_reference_on_the_cpu() -> None:
    """CUDA runs the shipped weights dequantised to a float graph (no int8 kernels there); the same
    graph on the CPU must give today's fp32 vectors within int8 weight rounding."""
    pytest.importorskip("onnx", reason="the gpu extra's onnx dequantises the weights")
    from papersift.index.embed_onnx import OnnxMiniLMEmbedder

    ref = np.load(REFERENCE)
    texts = [str(t) for t in ref["texts"]]
    vectors = OnnxMiniLMEmbedder(float_weights=True).embed_documents(texts)
    cos = (vectors * ref["fp32"].astype(np.float32)).sum(axis=1)
    assert cos.min() >= 0.995, cos.min()
    assert cos.mean() >= 0.999, cos.mean()


@needs_ort
def test_default_model_loads_without_torch_or_a_build(tmp_path: Path) -> None:
    """A fresh home embeds at once: no torch/transformers/onnx import, nothing written to the model cache."""
    home = tmp_path / "fresh-home"
    code = (
        "import sys\n"
        "from papersift.index.embed import make_embedder\n"
        f"e = make_embedder('minilm-onnx-int8', cache_dir=__import__('pathlib').Path({str(home)!r}) / 'models')\n"
        "v = e.embed_documents(['Aspirin lowers colon cancer risk.'])\n"
        "assert v.shape == (1, 384), v.shape\n"
        "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers', 'onnx') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=_env(home), check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    assert not (home / "models").exists()


def _env(home: Path) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERSIFT_")}
    return {**env, "PAPERSIFT_HOME": str(home), "HF_HUB_OFFLINE": "1"}


def test_packaged_files_are_declared_package_data() -> None:
    """The wheel carries the model: pyproject's package-data names data/minilm, and the NOTICE is there."""
    import tomllib

    from papersift.index.embed_onnx import SHIPPED_DIR

    root = Path(__file__).resolve().parent.parent
    data = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["papersift"]
    assert "data/minilm/*" in data
    assert {"model.int8.onnx", "tokenizer.json", "NOTICE", "manifest.json"} <= {p.name for p in SHIPPED_DIR.iterdir()}
    assert "Apache License" in (SHIPPED_DIR / "NOTICE").read_text()


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(pytest.main([__file__]))
