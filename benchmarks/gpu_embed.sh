#!/usr/bin/env bash
# Papers/s embedding arXiv abstracts with the shipped MiniLM on the CPU and on a CUDA GPU, side by side.
#
#   bash benchmarks/gpu_embed.sh [N]        # N abstracts, default 20000; run from anywhere
#
# Creates a venv (default /tmp/papersift-gpu-venv, $GPU_VENV to change) holding papersift with the
# `gpu` extra: onnxruntime-gpu INSTEAD of onnxruntime (the two cannot share a venv). The CUDA 12 and
# cuDNN 9 libraries onnxruntime-gpu loads come from the system, or from NVIDIA's pip wheels when
# GPU_PIP_CUDA=1 (onnxruntime-gpu[cuda,cudnn], several GB). Without a usable GPU the CUDA column says why
# and the script exits 1 after printing the CPU figure. Needs ../shared/data/arxiv_daily beside the
# repo, or ARXIV=path/to/listing.jsonl.gz.
set -euo pipefail
N=${1:-20000}
REPO=$(cd "$(dirname "$0")/.." && pwd)
VENV=${GPU_VENV:-/tmp/papersift-gpu-venv}
ARXIV=${ARXIV:-$REPO/../shared/data/arxiv_daily/arxiv_daily_2025-2026.jsonl.gz}
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}

if [ ! -x "$VENV/bin/pip" ]; then
  echo "creating $VENV" >&2
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade 'pip>=24'
fi
echo "installing papersift[gpu] from $REPO into $VENV" >&2
"$VENV/bin/pip" install -q -c "$REPO/constraints.txt" "$REPO[gpu]"
if [ "${GPU_PIP_CUDA:-0}" = 1 ]; then
  "$VENV/bin/pip" install -q -c "$REPO/constraints.txt" "onnxruntime-gpu[cuda,cudnn]"
fi
if "$VENV/bin/pip" show -q onnxruntime >/dev/null 2>&1; then
  echo "error: $VENV has onnxruntime besides onnxruntime-gpu; they overwrite each other: use a fresh venv" >&2
  exit 1
fi

bench() {  # $1 = device; prints the JSON summary line, or an error line
  cd "$REPO" && HF_HUB_OFFLINE=1 "$VENV/bin/python" benchmarks/embed_bench.py \
    --speed "$N" --variants minilm-onnx-int8 --device "$1" --arxiv "$ARXIV" 2>&1 | tail -1
}
CPU=$(bench cpu || true)
CUDA=$(bench cuda || true)
"$VENV/bin/python" - "$CPU" "$CUDA" <<'PY'
import json, sys

def row(line: str) -> dict:
    try:
        return json.loads(line)["results"][0]
    except (ValueError, KeyError, IndexError):
        return {"error": line.strip()[-300:]}

cpu, cuda = row(sys.argv[1]), row(sys.argv[2])
for name, r in (("cpu", cpu), ("cuda", cuda)):
    if "error" in r:
        print(f"{name:<5} failed: {r['error']}")
    else:
        print(f"{name:<5} {r['papers_per_s']:>9.1f} papers/s  {r['papers']} abstracts in {r['seconds']} s  (batch {r['batch_tokens']} tokens)")
ratio = round(cuda["papers_per_s"] / cpu["papers_per_s"], 2) if "error" not in cpu and "error" not in cuda else None
print(json.dumps({"cpu_papers_per_s": cpu.get("papers_per_s"), "cuda_papers_per_s": cuda.get("papers_per_s"), "speedup": ratio}))
sys.exit(0 if ratio else 1)
PY
