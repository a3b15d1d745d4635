#!/usr/bin/env bash
# Every GPU check the project owes, as one prepared script for a lent CUDA machine (issue 20):
#   bash benchmarks/gpu_checks.sh DATA [OUT_DIR]
# DATA is a youtubers-layout folder carried with the tree (../shared does not travel; a subset
# under 64 MiB, e.g. the test split plus a third of train). OUT_DIR defaults to $OUT.
# A dry run on the CPU with tiny sizes checks the script itself before device time is spent:
#   DEVICE=cpu TINY=1 bash benchmarks/gpu_checks.sh ../shared/data/youtubers /tmp/gpu-dry
# Each step has its own time limit and writes its log under OUT_DIR; a failing step is reported
# and the next one still runs. The summary is OUT_DIR/summary.txt.
set -u
data="${1:?usage: gpu_checks.sh DATA [OUT_DIR]}"
out="${2:-${OUT:-gpu-checks}}"
device="${DEVICE:-cuda}"
tiny="${TINY:-0}"
mkdir -p "$out"
runs="${TMPDIR:-/tmp}/gpu-check-runs"
rm -rf "$runs"
export OMP_WAIT_POLICY=PASSIVE
summary="$out/summary.txt"
: > "$summary"
nvidia-smi --query-gpu=name,memory.total,driver_version,utilization.gpu --format=csv >> "$summary" 2>&1 || true

step() {  # step NAME SECONDS COMMAND...: run, log, and note the outcome
  local name="$1" seconds="$2"; shift 2
  local started=$SECONDS
  timeout "$seconds" "$@" > "$out/$name.log" 2>&1
  local code=$?
  echo "$name: exit $code in $((SECONDS - started)) s" | tee -a "$summary"
}

if [ "$tiny" = 1 ]; then
  small=(--arg dataset.num_identities=3 --arg dataset.clips_per_identity=8 --batch-size 4 --clip-seconds 0.25)
  amp=()
  bench_args=(--batch-size 8 --repeats 1 --warmup 1 --arg dataset.num_identities=3 --arg dataset.clips_per_identity=8)
else
  small=(--batch-size 64)
  amp=(--amp)
  bench_args=(--batch-size 64 --repeats 5)
fi

# 1. the CUDA tests
[ "$device" = cuda ] && step pytest-gpu 120 python -m pytest -m gpu -q

# 2. two training steps of every stage of every preset, at 64 and 128, with --amp
presets=$(python main.py list preset --json | python -c "import json,sys; print(' '.join(c['name'] for c in json.load(sys.stdin)['preset']))")
for preset in $presets; do
  for size in 64 128; do
    step "preset-$preset-$size" 90 python main.py train --preset "$preset" --size "$size" --device "$device" \
      "${amp[@]}" --max-steps 4 --epochs 2 --runs-dir "$runs" --save-path "$preset-$size" --quiet "${small[@]}"
  done
done

# 3. bench: the default model and wav2pix's, at 64 and 128, with and without --amp
for model in "default:" "wav2pix:--encoder segan --generator dcgan"; do
  label="${model%%:*}"; flags="${model#*:}"
  for size in 64 128; do
    for precision in float32 amp; do
      extra=(); [ "$precision" = amp ] && [ "$tiny" != 1 ] && extra=(--amp --skip-seed)
      name="bench-$label-$size-$precision"
      step "$name" 120 bash -c 'json="$1"; shift; "$@" > "$json"' _ "$out/$name.json" \
        python main.py bench --device "$device" $flags --size "$size" "${extra[@]}" "${bench_args[@]}" --json
    done
  done
done

# 4. two processes under torchrun on this device (NCCL on CUDA), then resume
nproc=2
step torchrun 150 python -m torch.distributed.run --standalone --nproc_per_node "$nproc" main.py train \
  --device "$device" --max-steps 4 --runs-dir "$runs" --save-path ddp --quiet "${small[@]}"
step torchrun-resume 150 python -m torch.distributed.run --standalone --nproc_per_node "$nproc" main.py train \
  --device "$device" --resume "$runs/ddp" --max-steps 8 --quiet

# 5. a short youtubers run at 64 with --amp, then generate and evaluate on the device
yt_steps=$([ "$tiny" = 1 ] && echo 2 || echo 300)
step youtubers-train 200 python main.py train --dataset youtubers --data "$data" --size 64 --device "$device" \
  "${amp[@]}" --max-steps "$yt_steps" --epochs 1000 --runs-dir "$runs" --save-path yt64 --quiet
step youtubers-generate 60 python main.py generate --checkpoint "$runs/yt64" --dataset youtubers --data "$data" \
  --split test --device "$device" --out "$runs/yt64-faces"
step youtubers-evaluate 150 python main.py evaluate --checkpoint "$runs/yt64" --device "$device" \
  --metrics identity_accuracy,recall_at_k --out "$runs/yt64-eval" --quiet

# 6. the diffusion preset: training pairs/s at batch 64 and sampling ms per face (issue 22)
diffusion_args=(--batch-size 64 --train-steps 20 --faces 16); [ "$tiny" = 1 ] && diffusion_args=(--batch-size 4 --train-steps 1 --faces 1 --steps 2 --repeats 1)
step diffusion-speed 150 bash -c 'json="$1"; shift; "$@" > "$json"' _ "$out/diffusion-speed.json" \
  python benchmarks/diffusion_speed.py --device "$device" "${amp[@]}" "${diffusion_args[@]}" --json
cp "$runs/yt64/evaluation/metrics.json" "$out/yt64-metrics.json" 2>/dev/null
cp "$runs/yt64-eval/metrics.json" "$out/yt64-metrics.json" 2>/dev/null
cat "$summary"
