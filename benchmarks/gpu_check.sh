#!/usr/bin/env bash
# GPU figures in one prepared run, for a machine with one NVIDIA GPU (never needed by the project):
#   1. vLLM's CUDA build serving the bundled model with the shipped adapter (assistant serve-model --install --gpu);
#   2. one session alone and 20 sessions at once through it (benchmarks.answer_speed, benchmarks.chat_load);
#   3. the QLoRA recipe's training time (its adapter record) and peak GPU memory (nvidia-smi sampled every 0.5 s).
# Writes JSON under $OUT (default ./gpu-figures). Run from the checkout:  bash benchmarks/gpu_check.sh
set -euo pipefail
OUT=${OUT:-gpu-figures}
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 ASSISTANT_ENGINE__MEMORY_FRACTION=${ASSISTANT_ENGINE__MEMORY_FRACTION:-0.5}
[ -x .venv/bin/python ] || python3.11 -m venv .venv
.venv/bin/pip install -q -e ".[dev,gpu]"
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
.venv/bin/assistant ingest samples/handbook
.venv/bin/assistant serve-model --install --gpu --print          # vLLM's CUDA build in its own venv
.venv/bin/assistant serve-model > "$OUT/engine.log" 2>&1 &
engine=$!
trap 'kill $engine 2>/dev/null || true' EXIT
until curl -sf http://127.0.0.1:8000/v1/models > /dev/null; do sleep 2; kill -0 $engine; done
.venv/bin/python -m benchmarks.answer_speed --engine-url http://127.0.0.1:8000/v1 --json "$OUT/answer-speed-gpu.json"
kill $engine; wait $engine || true
.venv/bin/python -m benchmarks.chat_load --engine --json "$OUT/chat-load-engine-gpu.json"
.venv/bin/assistant tune build-data --recipe tuning/recipes/handbook-gpu.yaml
nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 500 > "$OUT/train-gpu-memory-mib.txt" &
sampler=$!
started=$(date +%s)
.venv/bin/assistant tune train --recipe tuning/recipes/handbook-gpu.yaml | tee "$OUT/train-qlora.log"
echo "QLoRA training: $(( $(date +%s) - started )) s wall, peak GPU memory $(sort -n "$OUT/train-gpu-memory-mib.txt" | tail -1) MiB" | tee "$OUT/train-qlora-summary.txt"
kill $sampler
echo "figures in $OUT"
