#!/usr/bin/env bash
# What `--robots` costs on lists of many hosts: peak memory as the number of distinct hosts
# grows, and how many robots.txt requests are made when a host's URLs come back later in the
# list (the rules cache).
#
# Host names h<N>.dnsbench.test all resolve to 127.0.0.1 through a local DNS server
# (bench/dns_server.py, no delay) that a private mount namespace's /etc/resolv.conf points at
# (the machine's own file is untouched); pages and robots.txt come from examples/serve on
# 127.0.0.1. Needs root (for port 53 and unshare). Nothing leaves 127.0.0.0/8.
#
#     bench/robots.sh [HOSTS...]       # default: 2000 20000 100000
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
counts=("$@")
[[ ${#counts[@]} -gt 0 ]] || counts=(2000 20000 100000)
per_host=${PER_HOST:-2}

cargo build --release --locked --quiet --bin fetch --example serve
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

python3 bench/dns_server.py --delay-ms 0 >"$work/dns.log" 2>&1 &
"$target/release/examples/serve" 0 >"$work/serve.log" 2>&1 &
for _ in $(seq 100); do
    grep -q "serving on" "$work/serve.log" 2>/dev/null && grep -q "dns server" "$work/dns.log" &&
        break
    sleep 0.05
done
port=$(sed -n 's/^serving on http:\/\/127.0.0.1://p' "$work/serve.log")
printf 'nameserver 127.0.0.53\noptions timeout:5 attempts:2\n' >"$work/resolv.conf"

# run NAME LIST ARGS...: fetch --robots in the namespace; prints wall, peak RSS and the
# summary's robots figures; every row must be a 200.
run() {
    local name=$1 list=$2
    shift 2
    unshare --mount sh -c "mount --bind '$work/resolv.conf' /etc/resolv.conf && \
        /usr/bin/time -f '%e %M' -o '$work/time' '$target/release/fetch' -q -c 200 \
        --summary-json '$work/$name.json' $* '$list' -o '$work/$name.csv'"
    local bad
    bad=$(awk -F, 'NR > 1 && $3 != "200"' "$work/$name.csv" | wc -l)
    [[ $bad -eq 0 ]] || { echo "$name: $bad rows without a 200" >&2; exit 1; }
    python3 - "$work/$name.json" "$work/time" <<'EOF'
import json, sys
summary = json.load(open(sys.argv[1]))
wall, rss = open(sys.argv[2]).read().split()
r = summary["robots"] or {"requests": "-", "found": "-"}
print(f"{summary['rows']} | {wall} s | {int(rss) / 1024:.1f} MB | {r['requests']} | {r['found']}")
EOF
}

echo "| list | rows | wall | peak RSS | robots.txt requests | origins found |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
for hosts in "${counts[@]}"; do
    # Grouped: each host's URLs together, as most lists are.
    seq 0 $((hosts - 1)) | awk -v port="$port" -v n="$per_host" '{
        for (i = 0; i < n; i++) printf "http://h%d.dnsbench.test:%s/page/%d\n", $1, port, i }' \
        >"$work/grouped.txt"
    echo "| $hosts hosts × $per_host, grouped, without --robots | $(run plain "$work/grouped.txt") |"
    echo "| $hosts hosts × $per_host, grouped | $(run grouped "$work/grouped.txt" --robots) |"
    # Scattered: the same URLs shuffled, so a host's URLs come back after it was forgotten.
    shuf --random-source=<(yes) "$work/grouped.txt" >"$work/scattered.txt"
    echo "| $hosts hosts × $per_host, scattered | $(run scattered "$work/scattered.txt" --robots) |"
done
