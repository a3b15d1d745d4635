#!/usr/bin/env bash
# The GPU training check of the training issue, as one script for a lent CUDA machine:
#   bash benchmarks/gpu_train.sh DATA [OUT_DIR] [STEPS]
# DATA is a youtubers-layout folder (e.g. a copy of ../shared/data/youtubers carried with the
# tree). Runs `--preset wav2pix` with --amp at 64 and 128 px for STEPS steps (default 300), and
# keeps for each size: summary.json (peak memory), stats.jsonl (pairs/s), the last sample sheet.
set -u
data="${1:?usage: gpu_train.sh DATA [OUT_DIR] [STEPS]}"
out="${2:-${OUT:-train-gpu}}"
steps="${3:-300}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >&2 || true
runs="${TMPDIR:-/tmp}/gpu-train-runs"  # run folders stay out of OUT: only the 8 result files return
for size in 64 128; do
  name="wav2pix-${size}-amp"
  echo "== $name" >&2
  timeout 280 python main.py train --preset wav2pix --dataset youtubers --data "$data" --size "$size" \
    --amp --device cuda --max-steps "$steps" --epochs 1000 --runs-dir "$runs" --save-path "$name" \
    --num-workers 8 --quiet > "$out/$name.log" 2>&1 || echo "failed: $name (see $out/$name.log)" >&2
  run="$runs/$name"
  cp "$run/summary.json" "$out/$name-summary.json" 2>/dev/null
  cp "$run/stats.jsonl" "$out/$name-stats.jsonl" 2>/dev/null
  cp "$(ls "$run"/samples/*.png 2>/dev/null | tail -1)" "$out/$name-samples.png" 2>/dev/null
done
