#!/usr/bin/env bash
# The prepared GPU run of issue 17 (point 5), for a GPU machine that has the bundle:
#   here:    bash scripts/gpu_bundle.sh packages/attention/bench/gpu_check.ts packages/train/bench/train.ts
#   there:   bash scripts/gpu_device_run.sh      (from the project root, .gpu carried along; writes to $OUT)
# 1. gpu_check: the correctness suite against cpu, then attention timings at n = 1024, 4096, 8192.
# 2. the training bench on webgpu: tokens/s per normaliser and the ratio to softmax (default model
#    and text at block size 256); the wasm numbers to compare with are the committed bench/train.json.
set -u
out=${OUT:-.}
bash .gpu/run.sh --json "$out/gpu_check.json" > "$out/gpu_check.log" 2>&1
echo "gpu_check: exit $?"; grep -v '^Warning' "$out/gpu_check.log" | tail -40
bash .gpu/run.sh train --backend webgpu --corpus experiments/data/corpus.txt --rounds 2 \
  --json "$out/train_webgpu.json" > "$out/train_webgpu.log" 2>&1
echo "train bench: exit $?"; grep -v '^Warning' "$out/train_webgpu.log" | tail -20
