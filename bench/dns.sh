#!/usr/bin/env bash
# DNS benchmark: resolver threads and throughput on many distinct host names.
#
# Starts a DNS server on 127.0.0.53 that answers *.dnsbench.test after a delay, then runs
# examples/dns_threads.rs in a private mount namespace whose /etc/resolv.conf points at it (the
# machine's own file is untouched).
# Needs root (for port 53 and unshare). Nothing leaves 127.0.0.0/8.
#
#     bench/dns.sh [NAMES] [CONCURRENCY] [DELAY_MS]
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
names=${1:-2000}
concurrency=${2:-500}
delay=${3:-100}

cargo build --release --quiet --example dns_threads
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

python3 bench/dns_server.py --delay-ms "$delay" > "$work/dns.log" 2>&1 &
sleep 1
printf 'nameserver 127.0.0.53\noptions timeout:5 attempts:1\n' > "$work/resolv.conf"

echo "DNS delay ${delay} ms per query; $(nproc) cores"
echo "| resolver | names | concurrency | wall | names/s | extra threads (peak) | failed |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for resolver in gai-unbounded gai-bounded hickory; do
    unshare --mount sh -c "mount --bind '$work/resolv.conf' /etc/resolv.conf && \
        '$target'/release/examples/dns_threads $resolver $names $concurrency"
done
