#!/usr/bin/env bash
# What `--state` costs: the same runs with and without it, against the project's own server on
# 127.0.0.1 (examples/serve, whose /page/ answers conditional requests with 304).
#
#     bench/state.sh            # about 6 minutes on 2 cores; report in target/bench/state.md
#     bench/state.sh --quick    # smaller lists, one round
#
# Workloads, interleaved (without, with) for ROUNDS rounds, medians reported:
#   first   URLS small pages, a fresh state file each round: every URL new
#   second  the same list on a state that knows every URL: the server answers 304 (the run
#           without --state gets the 200s it always gets)
#   memory  peak RSS of a first and a second run over SMALL, MID and BIG URLs, and the state
#           file's size per URL
# Every run's rows are counted (one per URL) and its exit code checked.
#
# Environment: ROUNDS (3), CONCURRENCY (50), URLS (200000), SMALL (10000), MID (100000),
# BIG (1000000), BENCH_DIR (target/bench).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
unset http_proxy https_proxy all_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY

if [[ "${1:-}" == "--quick" ]]; then
    : "${ROUNDS:=1}" "${URLS:=20000}" "${SMALL:=10000}" "${MID:=30000}" "${BIG:=100000}"
fi
ROUNDS=${ROUNDS:-3}
C=${CONCURRENCY:-50}
URLS=${URLS:-200000}
SMALL=${SMALL:-10000}
MID=${MID:-100000}
BIG=${BIG:-1000000}
out=${BENCH_DIR:-$root/target/bench}
target_dir=${CARGO_TARGET_DIR:-$root/target}
work=$out/state
mkdir -p "$work"
report=$out/state.md

say() { printf '%s\n' "$*" >&2; }

say "--- building fetch and the test server (release)"
cargo build --release --locked --quiet --bin fetch --example serve
fetch_bin=$target_dir/release/fetch
serve_bin=$target_dir/release/examples/serve

"$serve_bin" 0 >"$work/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    grep -q "serving on" "$work/serve.log" 2>/dev/null && break
    sleep 0.05
done
base=$(sed -n 's/^serving on //p' "$work/serve.log")
[[ -n $base ]] || { say "the server did not start"; exit 1; }

list() { # list N → path of a list of N unique /page/ URLs on this run's server
    local path=$work/urls-$1.txt
    [[ -f $path ]] || seq 1 "$1" | sed "s|^|$base/page/|" >"$path"
    printf '%s' "$path"
}
rm -f "$work"/urls-*.txt # made for another server's port

# run NAME LIST [fetch options...]: one timed run; prints "wall_s peak_rss_kb". Checks that
# every URL has its row, and that every row is a 200 or a 304.
run() {
    local name=$1 urls=$2
    shift 2
    local csv=$work/$name.csv
    /usr/bin/time -f '%e %M' -o "$work/time" \
        "$fetch_bin" -q -c "$C" "$@" "$urls" -o "$csv" || {
        say "$name: fetch failed"
        exit 1
    }
    local want rows
    want=$(wc -l <"$urls")
    rows=$(($(wc -l <"$csv") - 1))
    [[ $rows -eq $want ]] || { say "$name: $rows rows for $want URLs"; exit 1; }
    local bad
    bad=$(awk -F, 'NR > 1 && $3 != "200" && $3 != "304"' "$csv" | wc -l)
    [[ $bad -eq 0 ]] || { say "$name: $bad rows without a 200 or 304"; exit 1; }
    cat "$work/time"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

big_list=$(list "$URLS")
warm=$work/warm.db
rm -f "$warm" "$warm"-wal "$warm"-shm
say "--- preparing a state that knows every URL ($URLS)"
run prepare "$big_list" --state "$warm" >/dev/null

declare -A walls
for round in $(seq "$ROUNDS"); do
    say "--- round $round of $ROUNDS"
    for kind in first second; do
        order=("without" "with")
        ((round % 2)) || order=("with" "without")
        for variant in "${order[@]}"; do
            state=()
            if [[ $variant == with && $kind == first ]]; then
                rm -f "$work/fresh.db" "$work/fresh.db"-wal "$work/fresh.db"-shm
                state=(--state "$work/fresh.db")
            elif [[ $variant == with ]]; then
                state=(--state "$warm")
            fi
            read -r wall _ < <(run "$kind-$variant" "$big_list" "${state[@]}")
            walls[$kind-$variant]+="$wall "
            say "$kind $variant --state: $wall s"
        done
    done
done

# Memory: first and second runs over a small and a big list, each on its own state file.
declare -A rss
for n in "$SMALL" "$MID" "$BIG"; do
    urls=$(list "$n")
    db=$work/memory-$n.db
    rm -f "$db" "$db"-wal "$db"-shm
    read -r _ first < <(run "memory-first-$n" "$urls" --state "$db")
    read -r _ second < <(run "memory-second-$n" "$urls" --state "$db")
    read -r _ plain < <(run "memory-plain-$n" "$urls")
    size=$(stat -c %s "$db")
    rss[$n]="$plain $first $second $size"
    say "memory, $n URLs: without $plain KB, first $first KB, second $second KB; state $size bytes"
done

{
    echo "# --state: cost"
    echo
    echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, $(uname -sr)"
    echo "Command: bench/state.sh (ROUNDS=$ROUNDS, CONCURRENCY=$C, URLS=$URLS); medians"
    echo
    echo "| run | without --state | with --state | ratio (URLs/s with / without) |"
    echo "|---|---:|---:|---:|"
    for kind in first second; do
        w=$(tr ' ' '\n' <<<"${walls[$kind-without]}" | grep . | median)
        s=$(tr ' ' '\n' <<<"${walls[$kind-with]}" | grep . | median)
        label=$([[ $kind == first ]] && echo "first run (all new)" || echo "second run (all known; 304)")
        awk -v k="$label" -v w="$w" -v s="$s" -v n="$URLS" 'BEGIN {
            printf "| %s, %d URLs | %.2f s (%.0f URLs/s) | %.2f s (%.0f URLs/s) | ×%.2f |\n",
                k, n, w, n / w, s, n / s, w / s }'
    done
    echo
    echo "| URLs | peak RSS without | first run with --state | second run with --state | state file | per URL |"
    echo "|---:|---:|---:|---:|---:|---:|"
    for n in "$SMALL" "$MID" "$BIG"; do
        read -r plain first second size <<<"${rss[$n]}"
        awk -v n="$n" -v p="$plain" -v f="$first" -v s="$second" -v z="$size" 'BEGIN {
            printf "| %d | %.1f MB | %.1f MB | %.1f MB | %.1f MB | %.0f bytes |\n",
                n, p / 1024, f / 1024, s / 1024, z / 1048576, z / n }'
    done
} >"$report"
cat "$report"
