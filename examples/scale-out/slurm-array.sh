#!/usr/bin/env bash
# Fetch one list on N Slurm array tasks: each takes the hosts of shard $SLURM_ARRAY_TASK_ID
# (set by Slurm) and writes its own file to shared storage; merge them when all are done.
#
#   sbatch slurm-array.sh urls.txt
#   # then, after the array finished (or chain it: sbatch --dependency=afterok:JOBID ...):
#   fetch --merge out/part-*.csv -o out/all.csv
#
# Limits: --per-host-concurrency and --per-host-rate hold for the whole array (every URL of a
# host is fetched by one task). -c and --rate are per task: divide the array-wide numbers by N.
#SBATCH --job-name=fetch-list
#SBATCH --array=0-7            # N = 8 shards: indexes 0..7
#SBATCH --cpus-per-task=1
#SBATCH --mem=256M
#SBATCH --time=01:00:00
#SBATCH --output=out/slurm-%A_%a.log
set -euo pipefail
list=${1:?usage: sbatch slurm-array.sh URLS.txt}
shards=8
mkdir -p out
exec fetch --shard "auto/$shards" --ordered --resume --quiet \
    --concurrency 25 --rate 12.5/s --per-host-concurrency 2 --per-host-rate 1/s \
    --max-time 55m \
    --summary-json "out/part-$SLURM_ARRAY_TASK_ID.json" \
    --output "out/part-$SLURM_ARRAY_TASK_ID.csv" \
    "$list"
