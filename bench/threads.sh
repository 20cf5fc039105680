#!/usr/bin/env bash
# One event loop (the default) against a pool of workers (--threads N), on the two workloads
# where the choice shows: small pages over kept-alive HTTP connections (CPU per request is
# all scheduling and parsing), and HTTPS with a new connection, so a full TLS handshake, for
# every URL (the server closes each connection after its response). Interleaved, several
# rounds, medians. Everything runs against the project's own server on 127.0.0.1.
#
#     bench/threads.sh [URLS] [ROUNDS] [THREADS]     # defaults: 100000 3 2
set -euo pipefail
cd "$(dirname "$0")/.."
unset http_proxy https_proxy all_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY
target=${CARGO_TARGET_DIR:-target}
urls=${1:-100000}
rounds=${2:-3}
threads=${3:-2}
tls_urls=$((urls / 20))

cargo build --release --quiet --bin fetch --example serve
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
"$target"/release/examples/serve 0 > "$work/http.log" 2>&1 &
"$target"/release/examples/serve 0 --tls > "$work/https.log" 2>&1 &
for _ in $(seq 50); do
    grep -q 'serving on' "$work/http.log" && grep -q 'serving on' "$work/https.log" && break
    sleep 0.1
done
http=$(sed -n 's/^serving on //p' "$work/http.log")
https=$(sed -n 's/^serving on //p' "$work/https.log")
seq 1 "$urls" | sed "s|^|$http/page/t|" > "$work/http.txt"
seq 1 "$tls_urls" | sed "s|^|$https/page/t|" > "$work/https.txt"

run() { # label, list, expected rows, args...
    local label=$1 list=$2 expected=$3; shift 3
    /usr/bin/time -f "$label $expected %e %U %S" -a -o "$work/times" \
        "$target"/release/fetch -q -c 50 -o "$work/out.csv" "$@" "$list"
    local rows; rows=$(($(wc -l < "$work/out.csv") - 1))
    [ "$rows" -eq "$expected" ] || { echo "$label wrote $rows rows, expected $expected" >&2; exit 1; }
}
for _ in $(seq "$rounds"); do
    run "http,1" "$work/http.txt" "$urls"
    run "http,$threads" "$work/http.txt" "$urls" --threads "$threads"
    run "https-handshake,1" "$work/https.txt" "$tls_urls" -k
    run "https-handshake,$threads" "$work/https.txt" "$tls_urls" -k --threads "$threads"
done
python3 - "$work/times" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    label, urls, wall, user, system = line.split()
    runs[label].append((int(urls), float(wall), float(user) + float(system)))
print("| workload | --threads | URLs | wall s (median) | URLs/s | CPU s | CPU µs/URL |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for label, values in runs.items():
    workload, threads = label.split(",")
    urls = values[0][0]
    wall = statistics.median(w for _, w, _ in values)
    cpu = statistics.median(c for _, _, c in values)
    print(f"| {workload} | {threads} | {urls:,} | {wall:.2f} | {urls / wall:,.0f} | {cpu:.2f} "
          f"| {cpu / urls * 1e6:.1f} |")
PY
