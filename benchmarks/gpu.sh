#!/usr/bin/env bash
# The GPU run in one command: model-stage latencies of the default model and of a FIND-T-sized random
# model (640 px), in each half precision the device has, then the perception graph and the memory.
#
#   bash benchmarks/gpu.sh                  # on a machine with CUDA: fp16 and bf16, about 3-5 minutes
#   bash benchmarks/gpu.sh --device cpu --quick   # the same steps on this CPU, small (the tests run this)
#
# Every figure is one JSON line on stdout (the benchmarks' own lines); progress goes to stderr. Run it
# from a set-up checkout (make setup), or with PYTHON pointing at an interpreter that has find_ros.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
DEVICE=auto
QUICK=0
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "gpu.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

if [ "$DEVICE" = auto ]; then
  DEVICE=$("$PYTHON" -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
fi
if [ "$DEVICE" = cpu ]; then
  DTYPES=(fp32)
else
  DTYPES=(fp16 bf16)
fi
if [ "$QUICK" = 1 ]; then
  RUNS=1; SIZE=160x120; SECONDS_PER_RUN=6; MEMORY_SIZES=2000
else
  RUNS=10; SIZE=640x480; SECONDS_PER_RUN=30; MEMORY_SIZES=10000,100000
fi
say() { printf '[gpu.sh] %s\n' "$*" >&2; }

"$PYTHON" - "$DEVICE" <<'EOF' >&2
import sys, torch
device = sys.argv[1]
name = torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu"
print(f"[gpu.sh] torch {torch.__version__}, device {device} ({name})")
EOF

for dtype in "${DTYPES[@]}"; do
  say "model stages ($dtype, $SIZE, $RUNS runs): default and FIND-T-sized"
  "$PYTHON" "$ROOT/benchmarks/model_latency.py" --json --configs default,find-t --device "$DEVICE" \
    --dtype "$dtype" --runs "$RUNS" --size "$SIZE"
done

say "perception graph (${SECONDS_PER_RUN}s at 30 Hz, $SIZE)"
"$PYTHON" "$ROOT/benchmarks/perception.py" --json --seconds "$SECONDS_PER_RUN" --size "$SIZE" --random

say "localization memory ($MEMORY_SIZES entries)"
"$PYTHON" "$ROOT/benchmarks/memory.py" --sizes "$MEMORY_SIZES" --queries 100
say "done"
