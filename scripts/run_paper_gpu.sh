#!/usr/bin/env bash
# Paper-size training runs of the `paper` profile (Table 1 MNIST cells, beta sweep, CE
# information plane) on one GPU: SHARDS worker processes share the GPU, each taking every
# SHARDS-th run. Records land in results/paper as each run ends; a rerun skips them.
# Usage: SHARDS=8 LIMIT=480 bash scripts/run_paper_gpu.sh [DATASETS...]
set -u
cd "$(dirname "$0")/.."
SHARDS=${SHARDS:-8}
LIMIT=${LIMIT:-480}
DATASETS=${*:-mnist}
mkdir -p logs
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
for k in $(seq 0 $((SHARDS - 1))); do
  timeout "$LIMIT" python3 -m ibcore.table1 --profile paper --notebooks table1 info_plane beta_sweep \
    --datasets $DATASETS --device cuda --shard "$k/$SHARDS" > "logs/shard$k.log" 2>&1 &
done
wait
cat logs/shard*.log | grep -v "^\s*$" | grep -E "%|shard|Error|error" || true
