#!/usr/bin/env bash
# The GPU benchmark of issue 9, as one script for a lent CUDA machine:
#   bash benchmarks/gpu_bench.sh [OUT_DIR]
# For each encoder, at 64 and 128 px, with and without --amp: `python main.py bench --json` on
# CUDA, one JSON file per run under OUT_DIR (default: $OUT, else bench-gpu/). The loader is timed
# once per size (the first run); the seed-style step is timed only without --amp (it is float32
# by definition, so the --amp runs would time the same thing again).
set -u
out="${1:-${OUT:-bench-gpu}}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu.csv" 2>&1 || true
for size in 64 128; do
  loader=()
  for encoder in segan wave_cnn spectrogram; do
    for amp in "" "--amp"; do
      seed=()
      [ -n "$amp" ] && seed=(--skip-seed)
      name="${encoder}-${size}${amp:+-amp}"
      echo "== $name" >&2
      timeout 300 python main.py bench --device cuda --encoder "$encoder" --size "$size" \
        --batch-size 64 $amp "${seed[@]}" "${loader[@]}" --json > "$out/$name.json" 2> "$out/$name.err" \
        || echo "failed: $name (see $out/$name.err)" >&2
      loader=(--skip-loader)
    done
  done
done
python - "$out" <<'EOF'
import json, pathlib, sys
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.json")):
    try:
        r = json.loads(path.read_text())
    except ValueError:
        continue
    seed = r.get("seed", {}).get("pairs_per_s")
    print(f"{path.stem:24s} ours {r['ours']['pairs_per_s']:9.0f} pairs/s"
          f"  seed {seed or float('nan'):8.0f}  peak {r['memory'].get('peak_cuda_bytes', 0) / 2**30:6.2f} GiB"
          f"  util {100 * r['flops']['ours_utilisation']:5.1f}%")
EOF
