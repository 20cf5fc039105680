#!/usr/bin/env bash
# Extraction cost: the same list of 100 KB HTML pages fetched with title extraction off and on
# (and with a CSS selector, which parses whole pages), interleaved, several rounds, medians.
# Everything runs against the project's own server on 127.0.0.1.
#
#     bench/extract.sh [URLS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
urls=${1:-20000}
rounds=${2:-5}
port=18183

cargo build --release --quiet --bin fetch --example serve
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
"$target"/release/examples/serve "$port" > /dev/null 2>&1 &
sleep 0.5
seq 1 "$urls" | sed "s|^|http://127.0.0.1:$port/html/100000/|" > "$work/list.txt"

run() { # label, args...
    local label=$1; shift
    /usr/bin/time -f "$label %e %U %S" -a -o "$work/times" \
        "$target"/release/fetch -q -o "$work/out.csv" "$@" "$work/list.txt"
    local rows; rows=$(($(wc -l < "$work/out.csv") - 1))
    [ "$rows" -eq "$urls" ] || { echo "$label wrote $rows rows, expected $urls" >&2; exit 1; }
}
for _ in $(seq "$rounds"); do
    run "no-title" --no-title
    run "title" 
    run "title+select" --select 'p=p'
done
python3 - "$work/times" "$urls" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    label, wall, user, system = line.split()
    runs[label].append((float(wall), float(user) + float(system)))
urls = int(sys.argv[2])
base = statistics.median(w for w, _ in runs["no-title"])
print(f"| extraction | wall (median) | URLs/s | CPU s | vs no-title |")
print(f"| --- | --- | --- | --- | --- |")
for label, values in runs.items():
    wall = statistics.median(w for w, _ in values)
    cpu = statistics.median(c for _, c in values)
    print(f"| {label} | {wall:.2f} s | {urls / wall:,.0f} | {cpu:.2f} | {base / wall:.0%} |")
PY
