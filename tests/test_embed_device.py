"""PAPERSIFT_EMBED_DEVICE=cuda on a machine without a usable GPU: a clear refusal, never a quiet CPU run.

This machine has no GPU and the CPU onnxruntime, so onnxruntime has no CUDA provider; the other
refusal (onnxruntime-gpu installed, its provider failing to start) is the same check on the
session's providers (papersift/index/embed_onnx.py) and cannot be reached here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from papersift.cli import main
from papersift.index.embed import EmbedDeviceUnavailable, make_embedder

from .conftest import SAMPLE
from .test_embed import needs_ort

pytestmark = needs_ort


def _has_cuda() -> bool:
    import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


@pytest.fixture(autouse=True)
def _no_gpu() -> None:
    if _has_cuda():
        pytest.skip("onnxruntime here has a CUDA provider: these tests check the machine without one")


def test_asking_for_cuda_without_a_gpu_names_the_fix() -> None:
    with pytest.raises(EmbedDeviceUnavailable) as info:
        make_embedder("minilm-onnx-int8", device="cuda")
    message = str(info.value)
    assert "PAPERSIFT_EMBED_DEVICE=cuda" in message
    assert "papersift[gpu]" in message
    assert "PAPERSIFT_EMBED_DEVICE=cpu" in message


def test_an_unknown_device_is_refused() -> None:
    with pytest.raises(EmbedDeviceUnavailable, match="one of cpu, cuda"):
        make_embedder("minilm-onnx-int8", device="tpu")


@pytest.mark.parametrize("args", [["search", "diffusion"], ["index"]])
def test_cli_commands_fail_with_the_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]) -> None:
    home = tmp_path / "h"
    monkeypatch.setenv("PAPERSIFT_EMBEDDER", "minilm-onnx-int8")
    assert CliRunner().invoke(main, ["--home", str(home), "ingest", str(SAMPLE), "-q", "--no-index"]).exit_code == 0
    monkeypatch.setenv("PAPERSIFT_EMBED_DEVICE", "cuda")
    result = CliRunner().invoke(main, ["--home", str(home), *args])
    assert result.exit_code == 1, result.output
    assert "error: PAPERSIFT_EMBED_DEVICE=cuda, but this onnxruntime" in result.stderr
    assert "Traceback" not in result.output


def test_serve_refuses_to_start(tmp_path: Path) -> None:
    """The site's index thread would only log the failure: serve must exit before it listens."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERSIFT_")}
    env.update(PAPERSIFT_EMBED_DEVICE="cuda", PAPERSIFT_EMBEDDER="minilm-onnx-int8", PAPERSIFT_PORT="0")
    exe = Path(sys.executable).with_name("papersift")
    out = subprocess.run(
        [str(exe), "--home", str(tmp_path / "h"), "serve"], capture_output=True, text=True, timeout=60, env=env
    )
    assert out.returncode == 1, out.stderr
    assert "error: PAPERSIFT_EMBED_DEVICE=cuda" in out.stderr
    assert "serving" not in out.stderr
