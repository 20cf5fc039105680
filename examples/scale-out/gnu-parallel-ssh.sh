#!/usr/bin/env bash
# Fetch one list on a handful of machines over ssh with GNU parallel: shard K runs on one host,
# reading the list from the shared directory (or copy it there first), writing its own file;
# then the files are merged here.
#
#   ./gnu-parallel-ssh.sh urls.txt host1 host2 host3 host4
#
# Needs: fetch on every host's PATH, ssh keys, and a directory all hosts see at the same path
# (NFS), or use parallel's --transferfile/--return to ship the list and the results.
# Limits: --per-host-concurrency and --per-host-rate hold across all machines (every URL of a
# host is fetched by one machine); -c and --rate are per machine: divide by the number of hosts.
set -euo pipefail
list=$(realpath "${1:?usage: gnu-parallel-ssh.sh URLS.txt HOST...}")
shift
hosts=("$@")
shards=${#hosts[@]}
out=$(dirname "$list")/out
mkdir -p "$out"

# One job per shard, one job slot per host ("1/host"), so shard K runs on exactly one machine.
seq 0 $((shards - 1)) | parallel --jobs "$shards" --sshlogin "$(printf '1/%s,' "${hosts[@]}")" \
    fetch --shard {}/"$shards" --ordered --resume --quiet \
        --concurrency 50 --per-host-concurrency 2 --per-host-rate 1/s --max-time 55m \
        --output "$out/part-{}.csv" "$list"

fetch --merge "$out"/part-*.csv -o "$out/all.csv"
