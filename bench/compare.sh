#!/usr/bin/env bash
# fetch side by side with the tools people use instead, on the same lists, on this machine.
#
#     bench/compare.sh            # the full run (about 12 minutes on 2 cores)
#     bench/compare.sh --quick    # smaller lists, one round (about 2 minutes)
#
# Starts its own servers on loopback and never talks to anything else: the project's server
# (examples/serve) on 127.0.0.1, nginx over TLS (bench/nginx.sh: a certificate made at run time),
# and for W5 a DNS server on 127.0.0.53 (bench/dns_server.py). Peers, installed here from the
# package registries when missing, or skipped with a message:
#   curl --parallel --parallel-max 50, a -K config and -w 'url,status,time_total' per URL (apt)
#   Python asyncio + aiohttp with asyncio.Semaphore(50), rows to CSV (pip, in a venv)
#   oha, or else wrk: the raw request-rate ceiling; they write no per-URL rows (cargo, apt)
# Workloads:
#   W1  throughput: 200,000 small pages from examples/serve
#   W2  latency-bound: 2,000 pages delayed 100 ms (ideal 4.0 s at c=50)
#   W3  memory: 10,000 vs 1,000,000 URLs
#   W4a 50,000 URLs to one HTTPS host, nginx offering HTTP/2; W4b the same over HTTP/1.1
#   W5  2,000 HTTPS hosts x 5 URLs (names *.dnsbench.test resolved by the local DNS server, in a
#       private mount namespace whose /etc/resolv.conf points at it: needs root and unshare);
#       for memory, fetch alone: W5-big, 50,000 hosts x 5, against W5-deep, 2,000 hosts x 125
#       (the same number of URLs over 25 times fewer hosts)
#   mixed: 400 small pages alone, then with twenty 8 MiB gzip bodies among them (5 %): the
#       small pages' latency p50/p90 in each (MIX_ROUNDS interleaved runs, fetch alone)
# and fetch's --rate 1000/s measured at the server. Every row-writing tool's rows are counted and
# checked for status 200; nginx counts the connections it accepts (one TLS handshake each).
# Tools run interleaved, in a rotating order, for ROUNDS rounds; the report takes medians.
# Results: target/bench/report.md (and results.jsonl, every run's raw figures).
#
# Environment: ROUNDS (3), CONCURRENCY (50), W1_URLS (200000), W2_URLS (2000), W2_DELAY_MS (100),
# W3_SMALL (10000), W3_BIG (1000000), W4_URLS (50000), W5_HOSTS (2000), W5_BIG_HOSTS (50000),
# W5_PER_HOST (5), MIX_ROUNDS (11), PEERS ("curl python ceiling"), WORKLOADS ("W1 W2 W3 W4 W5
# mixed rate"), BENCH_DIR (target/bench).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# Everything here talks to 127.0.0.1 directly: a proxy from the environment must not be used.
unset http_proxy https_proxy all_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY

if [[ "${1:-}" == "--quick" ]]; then
    : "${ROUNDS:=1}" "${W1_URLS:=20000}" "${W3_SMALL:=10000}" "${W3_BIG:=100000}"
    : "${W4_URLS:=10000}" "${W5_HOSTS:=500}" "${W5_BIG_HOSTS:=5000}" "${MIX_ROUNDS:=3}"
fi
ROUNDS=${ROUNDS:-3}
C=${CONCURRENCY:-50}
W1_URLS=${W1_URLS:-200000}
W2_URLS=${W2_URLS:-2000}
W2_DELAY_MS=${W2_DELAY_MS:-100}
W3_SMALL=${W3_SMALL:-10000}
W3_BIG=${W3_BIG:-1000000}
W4_URLS=${W4_URLS:-50000}
W5_HOSTS=${W5_HOSTS:-2000}
W5_BIG_HOSTS=${W5_BIG_HOSTS:-50000}
W5_PER_HOST=${W5_PER_HOST:-5}
MIX_ROUNDS=${MIX_ROUNDS:-11}
PEERS=${PEERS:-curl python ceiling}
WORKLOADS=${WORKLOADS:-W1 W2 W3 W4 W5 mixed rate}
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

# --- servers and lists ----------------------------------------------------------------------
pids=()
cleanup() {
    kill "${pids[@]}" 2>/dev/null || true
    nginx_stop 2>/dev/null || true
}
trap cleanup EXIT
"$serve_bin" 0 >"$out/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
    grep -q 'serving on' "$out/serve.log" 2>/dev/null && break
    sleep 0.1
done
base=$(sed -n 's/^serving on //p' "$out/serve.log")
[[ $base == http://127.0.0.1:* ]] || { say "the test server did not start"; exit 1; }
say "--- server at $base"

wants() { [[ " $WORKLOADS " == *" $1 "* ]]; }

# nginx over TLS for W4 and W5.
# shellcheck source=bench/nginx.sh
source "$root/bench/nginx.sh"
have_nginx=""
if wants W4 || wants W5; then
    command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || apt_install nginx-light || true
    if nginx_start "$out/nginx"; then
        have_nginx=1
        say "--- nginx at https://127.0.0.1:$NGINX_H2 (HTTP/2) and :$NGINX_H1 (HTTP/1.1)"
    else
        say "skipping W4 and W5: nginx could not be started (apt-get install nginx-light)"
    fi
fi

# W5's names resolve through a local DNS server that a private mount namespace's resolv.conf
# points at: root is needed for port 53 and for unshare.
have_dns=""
if wants W5 && [[ -n $have_nginx ]]; then
    if [[ $(id -u) -eq 0 ]] && command -v unshare >/dev/null; then
        python3 "$root/bench/dns_server.py" --delay-ms 0 >"$out/dns.log" 2>&1 &
        pids+=($!)
        for _ in $(seq 50); do
            grep -q 'dns server' "$out/dns.log" 2>/dev/null && break
            sleep 0.1
        done
        printf 'nameserver 127.0.0.53\noptions timeout:5 attempts:2\n' >"$out/resolv.conf"
        if grep -q 'dns server' "$out/dns.log"; then
            have_dns=1
        else
            say "skipping W5: the DNS server did not start on 127.0.0.53:53 (is another one there?):"
            tail -n 1 "$out/dns.log" >&2
        fi
    else
        say "skipping W5: it needs root and unshare (for a DNS server on port 53)"
    fi
fi

make_list() { # NAME COUNT PATH-PREFIX
    local file=$out/$1.txt
    [[ -s $file && $(wc -l <"$file") -eq $2 ]] ||
        seq 1 "$2" | sed "s|^|$base/$3|" >"$file"
    # The port changes from run to run: rewrite the address in place if needed.
    sed -i "s|^http://127.0.0.1:[0-9]*/|$base/|" "$file"
    printf '%s' "$file"
}

make_nginx_list() { # NAME COUNT PORT
    seq 1 "$2" | sed "s|^|https://127.0.0.1:$3/w4/|" >"$out/$1.txt"
    printf '%s' "$out/$1.txt"
}

make_hosts_list() { # NAME HOSTS PER-HOST: each host's URLs together, as most lists are
    seq 0 $(($2 - 1)) | awk -v port="$NGINX_H1" -v n="$3" '{
        for (i = 0; i < n; i++) printf "https://h%d.dnsbench.test:%s/w5/%d\n", $1, port, i }' \
        >"$out/$1.txt"
    printf '%s' "$out/$1.txt"
}

curl_config() { # LIST -> a curl -K config next to it
    local config=${1%.txt}.curl
    awk '{ printf "url = \"%s\"\noutput = \"/dev/null\"\n", $0 }' "$1" >"$config"
    printf '%s' "$config"
}

# --- measuring --------------------------------------------------------------------------------
count_rows() { # FILE STATUS-COLUMN: CSV records after the header, and those with status 200
    python3 -c '
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
print(len(rows), sum(1 for r in rows if r[sys.argv[2]] == "200"))' "$1" "$2"
}

record() { # TOOL WORKLOAD URLS ROUND MEASURE-JSON [EXTRA-JSON]
    python3 -c '
import json, sys
tool, workload, urls, rnd, measured = sys.argv[1:6]
extra = json.loads(sys.argv[6]) if len(sys.argv) > 6 else {}
print(json.dumps({"tool": tool, "workload": workload, "urls": int(urls), "round": int(rnd),
                  "rows": None, "ok": None, **json.loads(measured), **extra}))' "$@" >>"$results"
}

measure() { # STDOUT-FILE COMMAND... -> JSON on stdout
    MEASURE_STDOUT=$1 python3 "$root/bench/measure.py" -- "${@:2}"
}

# Per workload: what the tools need beyond the list. `wrap` runs a command in W5's namespace;
# `tls` names the CA file; `oha_target` is the URL oha hammers, `oha_extra` its options;
# `count_accepts` asks nginx how many connections each run opened.
wrap=()
tls=""
oha_target=$base/page/ceiling
oha_extra=()
count_accepts=""

run_tool() { # TOOL WORKLOAD LIST ROUND
    local tool=$1 workload=$2 list=$3 round=$4 urls rows ok measured extra accepts_before=0
    local rowfile=$out/rows.out ca_fetch=() ca_curl=() ca_oha=()
    urls=$(wc -l <"$list")
    rm -f "$rowfile"
    if [[ -n $tls ]]; then
        ca_fetch=(--cacert "$tls")
        ca_curl=(--cacert "$tls")
        ca_oha=(--cacert "$tls")
    fi
    [[ -z $count_accepts ]] || accepts_before=$(nginx_accepts)
    case $tool in
    fetch)
        measured=$(measure /dev/null "${wrap[@]}" "$fetch_bin" -q -c "$C" "${ca_fetch[@]}" "$list" \
            -o "$rowfile")
        read -r rows ok < <(count_rows "$rowfile" status)
        ;;
    curl)
        local config
        config=${list%.txt}.curl
        # The list is rewritten each run (the port changes): so is its config.
        [[ $config -nt $list ]] || config=$(curl_config "$list")
        measured=$(measure "$rowfile" "${wrap[@]}" curl --parallel --parallel-max "$C" -s \
            --no-progress-meter "${ca_curl[@]}" -K "$config" -w '%{url},%{http_code},%{time_total}\n')
        sed -i '1i url,status,time_total' "$rowfile"
        read -r rows ok < <(count_rows "$rowfile" status)
        ;;
    python)
        measured=$(measure /dev/null "$python_bin" "$root/bench/aiohttp_fetch.py" "$list" "$rowfile" "$C")
        read -r rows ok < <(count_rows "$rowfile" status)
        ;;
    oha)
        measured=$(measure "$rowfile" "$oha_bin" -n "$urls" -c "$C" --no-tui --output-format json \
            "${ca_oha[@]}" "${oha_extra[@]}" "$oha_target")
        extra=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
print(json.dumps({"own_rate": d["summary"]["requestsPerSec"], "ok": d["statusCodeDistribution"].get("200", 0)}))' "$rowfile")
        ;;
    wrk)
        measured=$(measure "$rowfile" wrk -t 2 -c "$C" -d 5s "$oha_target")
        extra=$(awk '/Requests\/sec/ { printf "{\"rate\": %s}", $2 }' "$rowfile")
        ;;
    esac
    [[ $tool == oha || $tool == wrk ]] || extra="{\"rows\": $rows, \"ok\": $ok}"
    if [[ -n $count_accepts ]]; then
        # Less one: the stub_status request that reads the count is a connection too.
        extra=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d["accepts"]=int(sys.argv[2]); print(json.dumps(d))' \
            "$extra" $(($(nginx_accepts) - accepts_before - 1)))
    fi
    record "$tool" "$workload" "$urls" "$round" "$measured" "$extra"
    say "    $tool: $(python3 -c '
import json, sys
d, e = json.loads(sys.argv[1]), json.loads(sys.argv[2])
line = "%.2f s wall, %.2f s CPU, %.1f MB" % (d["wall"], d["user"] + d["sys"], d["rss_kib"] / 1024)
if "rows" in e: line += ", %d rows (%d with 200)" % (e["rows"], e["ok"])
if "rate" in e: line += ", %.0f requests/s" % e["rate"]
if "own_rate" in e: line += ", %.0f requests/s by its own clock" % e["own_rate"]
if "accepts" in e: line += ", %d connections accepted" % e["accepts"]
print(line)' "$measured" "$extra")"
}

tools=(fetch)
[[ -n $have_curl ]] && tools+=(curl)
[[ -n $python_bin ]] && tools+=(python)

rounds() { # WORKLOAD LIST TOOL...
    local workload=$1 list=$2
    local order=("${@:3}")
    for round in $(seq 1 "$ROUNDS"); do
        say "  round $round"
        for tool in "${order[@]}"; do
            run_tool "$tool" "$workload" "$list" "$round"
        done
        order=("${order[@]:1}" "${order[0]}") # rotate, so no tool always goes first
    done
}

with_ceiling=("${tools[@]}")
[[ -n $ceiling ]] && with_ceiling+=("$ceiling")
fetch_and_curl=(fetch)
[[ -n $have_curl ]] && fetch_and_curl+=(curl)
fetch_curl_oha=("${fetch_and_curl[@]}")
[[ $ceiling == oha ]] && fetch_curl_oha+=(oha)

# --- workloads --------------------------------------------------------------------------------
if wants W1; then
    say "--- W1: $W1_URLS small pages, c=$C, $ROUNDS rounds"
    rounds W1 "$(make_list w1 "$W1_URLS" page/w1-)" "${with_ceiling[@]}"
fi

if wants W2; then
    say "--- W2: $W2_URLS pages delayed ${W2_DELAY_MS} ms, c=$C, $ROUNDS rounds"
    rounds W2 "$(make_list w2 "$W2_URLS" "delay/$W2_DELAY_MS/w2-")" "${tools[@]}"
fi

if wants W3; then
    say "--- W3: memory, $W3_SMALL vs $W3_BIG URLs, 3 rounds of fetch, one of each peer"
    w3_small=$(make_list w3-small "$W3_SMALL" page/w3-)
    w3_big=$(make_list w3-big "$W3_BIG" page/w3-)
    for tool in "${tools[@]}"; do
        # The target is on fetch's peak RSS, whose one-round baseline moves by about 1 MB from
        # run to run (15.4-16.7 MB for the small list): a median of three. The peers' memory
        # only illustrates, and their big list takes minutes.
        w3_rounds=1
        [[ $tool == fetch ]] && w3_rounds=3
        for round in $(seq "$w3_rounds"); do
            run_tool "$tool" W3-small "$w3_small" "$round"
            run_tool "$tool" W3-big "$w3_big" "$round"
        done
    done
fi

if wants W4 && [[ -n $have_nginx ]]; then
    # oha has no per-URL list: it requests one URL -n times, which nginx answers alike.
    tls=$NGINX_CA
    count_accepts=1
    say "--- W4a: $W4_URLS URLs, one HTTPS host, nginx with HTTP/2, c=$C, $ROUNDS rounds"
    oha_target=https://127.0.0.1:$NGINX_H2/ceiling
    oha_extra=(--http2)
    rounds W4a "$(make_nginx_list w4a "$W4_URLS" "$NGINX_H2")" "${fetch_curl_oha[@]}"
    say "--- W4b: $W4_URLS URLs, one HTTPS host, nginx with HTTP/1.1 only, c=$C, $ROUNDS rounds"
    oha_target=https://127.0.0.1:$NGINX_H1/ceiling
    oha_extra=()
    rounds W4b "$(make_nginx_list w4b "$W4_URLS" "$NGINX_H1")" "${fetch_curl_oha[@]}"
    tls=""
    count_accepts=""
    oha_target=$base/page/ceiling
fi

if wants W5 && [[ -n $have_dns ]]; then
    # One host per name, each over HTTP/1.1: no tool can share a connection between hosts.
    tls=$NGINX_CA
    count_accepts=1
    # Each tool runs with /etc/resolv.conf pointing at the local DNS server (its own mount).
    wrap=(unshare --mount sh -c 'mount --bind "$0" /etc/resolv.conf && exec "$@"' "$out/resolv.conf")
    say "--- W5: $W5_HOSTS HTTPS hosts x $W5_PER_HOST URLs, c=$C, $ROUNDS rounds"
    rounds W5 "$(make_hosts_list w5 "$W5_HOSTS" "$W5_PER_HOST")" "${fetch_and_curl[@]}"
    # Memory as the hosts grow, the URLs held equal: W5-big's hosts, and W5's hosts with as
    # many URLs each as make the same total (a longer run holds a little more whatever the
    # hosts, as W3 shows).
    # Peak RSS varies by a megabyte or two from run to run: rounds, interleaved, and medians.
    deep=$((W5_BIG_HOSTS * W5_PER_HOST / W5_HOSTS))
    say "--- W5-big: $W5_BIG_HOSTS HTTPS hosts x $W5_PER_HOST URLs, against W5-deep: $W5_HOSTS" \
        "hosts x $deep URLs (as many URLs), fetch, $ROUNDS rounds"
    w5_big=$(make_hosts_list w5-big "$W5_BIG_HOSTS" "$W5_PER_HOST")
    w5_deep=$(make_hosts_list w5-deep "$W5_HOSTS" "$deep")
    for round in $(seq 1 "$ROUNDS"); do
        run_tool fetch W5-big "$w5_big" "$round"
        run_tool fetch W5-deep "$w5_deep" "$round"
    done
    tls=""
    count_accepts=""
    wrap=()
fi

# mixed: the small pages' latency, alone and with large compressed bodies among them. Each
# variant is a list of 400 small pages with one large body after every 20 (5 %).
mixed_run() { # NAME LIST ROUND: fetch once; record the small pages' p50 and p90 latency
    "$fetch_bin" -q -c "$C" "$2" -o "$out/mixed.csv"
    record fetch "$1" "$(wc -l <"$2")" "$3" '{"wall": 0, "user": 0, "sys": 0, "rss_kib": 0}' \
        "$(python3 -c '
import csv, json, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
small = [float(r["latency_ms"]) for r in rows if "/page/" in r["url"]]
print(json.dumps({"rows": len(rows), "ok": sum(r["status"] == "200" for r in rows),
                  "p50": statistics.median(small), "p90": statistics.quantiles(small, n=10)[8]}))' \
        "$out/mixed.csv")"
}
if wants mixed; then
    say "--- mixed: 400 small pages, alone and with 20 large compressed bodies, $MIX_ROUNDS rounds"
    seq 0 399 | sed "s|^|$base/page/m|" >"$out/mixed-small.txt"
    for variant in "bomb/8:mixed-bomb" "gzpage/8:mixed-gzpage" "size/1700000:mixed-plain"; do
        awk -v base="$base" -v path="${variant%%:*}" \
            '{ print } NR % 20 == 10 { printf "%s/%s/b%d\n", base, path, NR }' \
            "$out/mixed-small.txt" >"$out/${variant#*:}.txt"
    done
    for round in $(seq 1 "$MIX_ROUNDS"); do
        for name in mixed-small mixed-bomb mixed-gzpage mixed-plain; do
            mixed_run "$name" "$out/$name.txt" "$round"
        done
    done
fi

arrivals=$out/arrivals.txt
: >"$arrivals"
if wants rate; then
    say "--- rate: fetch --rate 1000/s over 10,000 URLs, arrivals timed at the server"
    get() { python3 -c 'import sys, urllib.request as u; sys.stdout.write(u.urlopen(sys.argv[1]).read().decode())' "$1"; }
    get "$base/stamps" >/dev/null
    stamp_list=$(make_list stamp 10000 stamp/)
    "$fetch_bin" -q -c "$C" --rate 1000/s "$stamp_list" -o "$out/rate.csv"
    get "$base/stamps" >"$arrivals"
fi

python3 "$root/bench/report.py" "$results" "$arrivals" "$W2_URLS" "$W2_DELAY_MS" "$C" \
    "$W5_HOSTS" "$W5_BIG_HOSTS" | tee "$out/report.md"
