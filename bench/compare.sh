#!/usr/bin/env bash
# fetch side by side with the tools people use instead, on the same lists, on this machine.
#
#     bench/compare.sh            # the full run (about 20 minutes on 2 cores)
#     bench/compare.sh --quick    # smaller lists, one round (about 2 minutes)
#
# Starts the project's own server (examples/serve) on 127.0.0.1 and never talks to anything
# else. Peers, installed here from the package registries when missing, or skipped with a
# message:
#   curl --parallel --parallel-max 50, a -K config and -w 'url,status,time_total' per URL (apt)
#   Python asyncio + aiohttp with asyncio.Semaphore(50), rows to CSV (pip, in a venv)
#   oha, or else wrk: the raw request-rate ceiling; they write no per-URL rows (cargo, apt)
# Workloads: W1 throughput (200,000 small pages), W2 latency-bound (2,000 pages delayed 100 ms:
# ideal 4.0 s at c=50), W3 memory (10,000 vs 1,000,000 URLs), and fetch's --rate 1000/s measured
# at the server. Tools run interleaved, in a rotating order, for ROUNDS rounds; the report takes
# medians. Results: target/bench/report.md (and results.jsonl, every run's raw figures).
#
# Environment: ROUNDS (3), CONCURRENCY (50), W1_URLS (200000), W2_URLS (2000), W2_DELAY_MS (100),
# W3_SMALL (10000), W3_BIG (1000000), PEERS ("curl python ceiling"), BENCH_DIR (target/bench).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# Everything here talks to 127.0.0.1 directly: a proxy from the environment must not be used.
unset http_proxy https_proxy all_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY

if [[ "${1:-}" == "--quick" ]]; then
    : "${ROUNDS:=1}" "${W1_URLS:=20000}" "${W3_SMALL:=10000}" "${W3_BIG:=100000}"
fi
ROUNDS=${ROUNDS:-3}
C=${CONCURRENCY:-50}
W1_URLS=${W1_URLS:-200000}
W2_URLS=${W2_URLS:-2000}
W2_DELAY_MS=${W2_DELAY_MS:-100}
W3_SMALL=${W3_SMALL:-10000}
W3_BIG=${W3_BIG:-1000000}
PEERS=${PEERS:-curl python ceiling}
out=${BENCH_DIR:-$root/target/bench}
target_dir=${CARGO_TARGET_DIR:-$root/target}
mkdir -p "$out"
results=$out/results.jsonl
: >"$results"

say() { printf '%s\n' "$*" >&2; }

# --- build ----------------------------------------------------------------------------------
say "--- building fetch and the test server (release)"
cargo build --release --locked --quiet --bin fetch --example serve
fetch_bin=$target_dir/release/fetch
serve_bin=$target_dir/release/examples/serve

# --- peers ----------------------------------------------------------------------------------
apt_install() {
    command -v apt-get >/dev/null || return 1
    local sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo -n"
    $sudo apt-get install -y -qq "$@" >/dev/null 2>&1
}

have_curl=""
if [[ " $PEERS " == *" curl "* ]]; then
    command -v curl >/dev/null || apt_install curl || true
    if command -v curl >/dev/null && curl --help all 2>/dev/null | grep -q -- --parallel-max; then
        have_curl=1
    else
        say "skipping curl: no curl with --parallel (7.66 or later) and it could not be installed"
    fi
fi

python_bin=""
if [[ " $PEERS " == *" python "* ]]; then
    venv=$out/venv
    if [[ ! -x $venv/bin/python ]]; then
        python3 -m venv "$venv" >/dev/null 2>&1 || true
    fi
    if [[ -x $venv/bin/python ]] && { "$venv/bin/python" -c 'import aiohttp' 2>/dev/null ||
        "$venv/bin/pip" install -q aiohttp >/dev/null 2>&1; }; then
        python_bin=$venv/bin/python
    else
        say "skipping Python: could not make a venv with aiohttp (python3 -m venv; pip install aiohttp)"
    fi
fi

ceiling=""
if [[ " $PEERS " == *" ceiling "* ]]; then
    oha_bin=$(command -v oha || true)
    [[ -n $oha_bin ]] || { [[ -x $HOME/.cargo/bin/oha ]] && oha_bin=$HOME/.cargo/bin/oha; } || true
    if [[ -z $oha_bin ]]; then
        say "--- installing oha (cargo install, a few minutes)"
        cargo install oha --locked --quiet --root "$out/tools" >/dev/null 2>&1 &&
            oha_bin=$out/tools/bin/oha || true
    fi
    if [[ -n $oha_bin ]]; then
        ceiling=oha
    elif command -v wrk >/dev/null || apt_install wrk; then
        ceiling=wrk
    else
        say "skipping the ceiling: neither oha (cargo install oha) nor wrk (apt) could be installed"
    fi
fi

# --- server and lists -----------------------------------------------------------------------
"$serve_bin" 0 >"$out/serve.log" 2>&1 &
serve_pid=$!
trap 'kill $serve_pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do
    grep -q 'serving on' "$out/serve.log" 2>/dev/null && break
    sleep 0.1
done
base=$(sed -n 's/^serving on //p' "$out/serve.log")
[[ $base == http://127.0.0.1:* ]] || { say "the test server did not start"; exit 1; }
say "--- server at $base"

make_list() { # NAME COUNT PATH-PREFIX
    local file=$out/$1.txt
    [[ -s $file && $(wc -l <"$file") -eq $2 ]] ||
        seq 1 "$2" | sed "s|^|$base/$3|" >"$file"
    # The port changes from run to run: rewrite the address in place if needed.
    sed -i "s|^http://127.0.0.1:[0-9]*/|$base/|" "$file"
    printf '%s' "$file"
}

curl_config() { # LIST -> a curl -K config next to it
    local config=${1%.txt}.curl
    awk '{ printf "url = \"%s\"\noutput = \"/dev/null\"\n", $0 }' "$1" >"$config"
    printf '%s' "$config"
}

# --- measuring --------------------------------------------------------------------------------
count_csv_rows() { # FILE: records after the header
    python3 -c 'import csv,sys; print(sum(1 for _ in csv.reader(open(sys.argv[1], newline=""))) - 1)' "$1"
}

record() { # TOOL WORKLOAD URLS ROUND ROWS MEASURE-JSON [EXTRA-JSON]
    python3 -c '
import json, sys
tool, workload, urls, rnd, rows, measured = sys.argv[1:7]
extra = json.loads(sys.argv[7]) if len(sys.argv) > 7 else {}
row = {"tool": tool, "workload": workload, "urls": int(urls), "round": int(rnd),
       "rows": int(rows) if rows else None, **json.loads(measured), **extra}
print(json.dumps(row))' "$@" >>"$results"
}

measure() { # STDOUT-FILE COMMAND... -> JSON on stdout
    MEASURE_STDOUT=$1 python3 "$root/bench/measure.py" -- "${@:2}"
}

run_tool() { # TOOL WORKLOAD LIST ROUND
    local tool=$1 workload=$2 list=$3 round=$4 urls rows="" measured rowfile=$out/rows.out
    urls=$(wc -l <"$list")
    rm -f "$rowfile"
    case $tool in
    fetch)
        measured=$(measure /dev/null "$fetch_bin" -q -c "$C" "$list" -o "$rowfile")
        rows=$(count_csv_rows "$rowfile")
        ;;
    curl)
        local config
        config=${list%.txt}.curl
        # The list is rewritten each run (the port changes): so is its config.
        [[ $config -nt $list ]] || config=$(curl_config "$list")
        measured=$(measure "$rowfile" curl --parallel --parallel-max "$C" -s --no-progress-meter -K "$config" \
            -w '%{url},%{http_code},%{time_total}\n')
        rows=$(wc -l <"$rowfile")
        ;;
    python)
        measured=$(measure /dev/null "$python_bin" "$root/bench/aiohttp_fetch.py" "$list" "$rowfile" "$C")
        rows=$(count_csv_rows "$rowfile")
        ;;
    oha)
        measured=$(measure "$rowfile" "$oha_bin" -n "$urls" -c "$C" --no-tui --output-format json \
            "$base/page/ceiling")
        record "$tool" "$workload" "$urls" "$round" "" "$measured" \
            "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(json.dumps({"rate": d["summary"]["requestsPerSec"]}))' "$rowfile")"
        return
        ;;
    wrk)
        measured=$(measure "$rowfile" wrk -t 2 -c "$C" -d 5s "$base/page/ceiling")
        record "$tool" "$workload" "$urls" "$round" "" "$measured" \
            "$(awk '/Requests\/sec/ { printf "{\"rate\": %s}", $2 }' "$rowfile")"
        return
        ;;
    esac
    record "$tool" "$workload" "$urls" "$round" "$rows" "$measured"
    say "    $tool: $(python3 -c '
import json, sys
d = json.loads(sys.argv[1])
print("%.2f s wall, %.2f s CPU, %.1f MB" % (d["wall"], d["user"] + d["sys"], d["rss_kib"] / 1024))' "$measured"), $rows rows"
}

tools=(fetch)
[[ -n $have_curl ]] && tools+=(curl)
[[ -n $python_bin ]] && tools+=(python)

rounds() { # WORKLOAD LIST [with-ceiling]
    local workload=$1 list=$2 ceiling_too=${3:-}
    local order=("${tools[@]}")
    [[ -n $ceiling_too && -n $ceiling ]] && order+=("$ceiling")
    for round in $(seq 1 "$ROUNDS"); do
        say "  round $round"
        for tool in "${order[@]}"; do
            run_tool "$tool" "$workload" "$list" "$round"
        done
        order=("${order[@]:1}" "${order[0]}") # rotate, so no tool always goes first
    done
}

# --- workloads --------------------------------------------------------------------------------
say "--- W1: $W1_URLS small pages, c=$C, $ROUNDS rounds"
rounds W1 "$(make_list w1 "$W1_URLS" page/w1-)" ceiling

say "--- W2: $W2_URLS pages delayed ${W2_DELAY_MS} ms, c=$C, $ROUNDS rounds"
rounds W2 "$(make_list w2 "$W2_URLS" "delay/$W2_DELAY_MS/w2-")"

say "--- W3: memory, $W3_SMALL vs $W3_BIG URLs, one round each"
w3_small=$(make_list w3-small "$W3_SMALL" page/w3-)
w3_big=$(make_list w3-big "$W3_BIG" page/w3-)
for tool in "${tools[@]}"; do
    run_tool "$tool" W3-small "$w3_small" 1
    run_tool "$tool" W3-big "$w3_big" 1
done

say "--- rate: fetch --rate 1000/s over 10,000 URLs, arrivals timed at the server"
get() { python3 -c 'import sys, urllib.request as u; sys.stdout.write(u.urlopen(sys.argv[1]).read().decode())' "$1"; }
get "$base/stamps" >/dev/null
stamp_list=$(make_list stamp 10000 stamp/)
"$fetch_bin" -q -c "$C" --rate 1000/s "$stamp_list" -o "$out/rate.csv"
get "$base/stamps" >"$out/arrivals.txt"

python3 "$root/bench/report.py" "$results" "$out/arrivals.txt" "$W2_URLS" "$W2_DELAY_MS" "$C" \
    | tee "$out/report.md"
