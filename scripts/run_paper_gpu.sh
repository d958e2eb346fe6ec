#!/usr/bin/env bash
# Paper-size training runs of the `paper` profile (every notebook's runs, or those on the given
# data sets) on one GPU: WORKERS processes share the GPU (python3 -m ibcore.prefetch). Records
# land in results/paper as each run ends; a rerun skips them, an interrupted run resumes from
# its checkpoint. `timeout` stops the whole process group after LIMIT seconds.
# Usage: WORKERS=8 LIMIT=480 bash scripts/run_paper_gpu.sh [DATASETS...]
set -u
cd "$(dirname "$0")/.."
WORKERS=${WORKERS:-8}
LIMIT=${LIMIT:-480}
DATASETS=${*:-mnist synthetic}
mkdir -p logs
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
timeout "$LIMIT" python3 -m ibcore.prefetch --profile paper --device cuda --workers "$WORKERS" \
  --datasets $DATASETS > logs/prefetch_gpu.log 2>&1
grep -E "done in|failed|runs" logs/prefetch_gpu.log || true
