#!/usr/bin/env bash
# The dlib metrics' timing of issue 14 (docs/BENCHMARKS.md), from the repository root:
#   bash benchmarks/dlib_eval.sh RUN [OUT_DIR]
# Evaluates RUN's checkpoint on its dataset's test split with the five dlib metrics: once with an
# empty cache (the real faces are analysed too), then twice warm. Prints wall and CPU seconds per
# pass; each pass's metrics.json (with per-metric seconds) lands in OUT_DIR/<pass>. Every socket
# connection is refused inside the evaluating process, so a download attempt would fail the run.
set -eu
run="$1"
out="${2:-eval-dlib}"
metrics=landmarks68,face_verification,face_retrieval,face_matching,face_frechet
export OMP_WAIT_POLICY=PASSIVE WAV2PIX_ZOO_CACHE="$out/cache"
rm -rf "$WAV2PIX_ZOO_CACHE"
offline='import runpy, socket, sys
def refuse(*args, **kwargs):
    raise OSError("network access refused by benchmarks/dlib_eval.sh")
socket.socket.connect = socket.create_connection = socket.getaddrinfo = refuse
sys.argv = ["main.py", *sys.argv[1:]]
runpy.run_path("main.py", run_name="__main__")'
TIMEFORMAT="%R s wall, %U s user, %S s sys"
for pass in cold warm1 warm2; do
  echo "== $pass (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  time python -c "$offline" evaluate --checkpoint "$run" --metrics "$metrics" --out "$out/$pass" --quiet > /dev/null
done
