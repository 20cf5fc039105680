"""Turns bench/compare.sh's raw figures into the report: medians per tool and workload, ratios
of fetch to each peer, and the targets, each marked met or not.

    python3 report.py results.jsonl arrivals.txt W2_URLS W2_DELAY_MS CONCURRENCY W5_HOSTS W5_BIG_HOSTS
"""

import json
import platform
import statistics
import sys
from collections import defaultdict

results_path, arrivals_path = sys.argv[1], sys.argv[2]
w2_urls, w2_delay_ms, concurrency, w5_hosts, w5_big_hosts = (int(x) for x in sys.argv[3:8])

runs = defaultdict(list)
with open(results_path) as f:
    for line in f:
        run = json.loads(line)
        runs[(run["workload"], run["tool"])].append(run)


def median(values):
    return statistics.median(values) if values else float("nan")


def summary(workload, tool):
    got = runs.get((workload, tool), [])
    if not got:
        return None
    urls = got[0]["urls"]
    wall = median([r["wall"] for r in got])
    cpu = median([r["user"] + r["sys"] for r in got])
    # URLs over the wall time of the whole command, for every tool that runs a fixed number of
    # URLs: start-up (reading the trust store, the list) and exit (writing the output out) are
    # part of what a user waits for. oha's own requests/s leaves both out, so it is kept only
    # to show beside it; wrk runs for a fixed time and has only its own figure.
    rate = median([r["rate"] for r in got]) if "rate" in got[0] else urls / wall
    own_rate = median([r["own_rate"] for r in got]) if "own_rate" in got[0] else None
    # A row for every URL, and every one a 200 (a row saying a request failed is a row lost).
    rows_ok = (all(r["rows"] == urls and r["ok"] == urls for r in got)
               if got[0]["rows"] is not None else None)
    return {
        "urls": urls,
        "rounds": len(got),
        "wall": wall,
        "rate": rate,
        "own_rate": own_rate,
        "cpu": cpu,
        "cpu_us": cpu / urls * 1e6,
        "rss_mb": max(r["rss_kib"] for r in got) / 1024,
        "rss_median_mb": median([r["rss_kib"] for r in got]) / 1024,
        "rows_ok": rows_ok,
        "rows": [(r["rows"], r["ok"]) for r in got],
        "accepts": median([r["accepts"] for r in got]) if "accepts" in got[0] else None,
    }


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def cores():
    import os

    return os.cpu_count()


tools = ["fetch", "curl", "python", "oha", "wrk"]
names = {
    "fetch": "fetch",
    "curl": "curl --parallel",
    "python": "Python asyncio + aiohttp",
    "oha": "oha (ceiling, no rows)",
    "wrk": "wrk (ceiling, no rows)",
}

print(f"Machine: {cpu_model()}, {cores()} cores, {platform.system()} {platform.release()}")
print(f"Concurrency {concurrency}; medians over the rounds run; CPU = user + system seconds.\n")
workloads = ["W1", "W2", "W3-small", "W3-big", "W4a", "W4b", "W5", "W5-deep", "W5-big"]
if any(summary(w, t) for w in workloads for t in tools):
    print("| workload | tool | URLs | wall s | URLs/s | CPU s | CPU µs/URL | peak RSS MB | connections | every row a 200 |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
for workload in workloads:
    for tool in tools:
        s = summary(workload, tool)
        if not s:
            continue
        rows = {True: "yes", False: f"NO {s['rows']}", None: "n/a"}[s["rows_ok"]]
        accepts = "" if s["accepts"] is None else f"{s['accepts']:,.0f}"
        print(
            f"| {workload} | {names[tool]} | {s['urls']:,} | {s['wall']:.2f} | {s['rate']:,.0f} "
            f"| {s['cpu']:.2f} | {s['cpu_us']:.1f} | {s['rss_mb']:.1f} | {accepts} | {rows} |"
        )
own = [(w, s) for w in workloads if (s := summary(w, "oha")) and s["own_rate"]]
if own:
    listing = ", ".join(f"{w} {s['own_rate']:,.0f}" for w, s in own)
    print(f"\nURLs/s is URLs over each command's wall time, start to exit, for every tool above. "
          f"oha's own figure, which leaves out its start-up and exit: {listing} requests/s.")

mixed = {}
for name in ["mixed-small", "mixed-bomb", "mixed-gzpage", "mixed-plain"]:
    got = runs.get((name, "fetch"), [])
    if got:
        mixed[name] = {
            "p50": median([r["p50"] for r in got]),
            "p90": median([r["p90"] for r in got]),
            "rounds": len(got),
            "rows_ok": all(r["rows"] == r["urls"] == r["ok"] for r in got),
        }
if mixed:
    labels = {
        "mixed-small": "400 small pages alone",
        "mixed-bomb": "with 20 gzip bombs (8 MiB inflated, 8 KiB on the wire)",
        "mixed-gzpage": "with 20 gzip HTML pages (8 MiB inflated, 1.6 MiB on the wire)",
        "mixed-plain": "with 20 uncompressed 1.7 MB bodies (the same wire size, nothing to decode)",
    }
    print("\nThe small pages' latency_ms, fetch alone (medians over the rounds):\n")
    print("| list | small-page p50 ms | small-page p90 ms | rounds |")
    print("|---|---:|---:|---:|")
    for name, m in mixed.items():
        print(f"| {labels[name]} | {m['p50']:.2f} | {m['p90']:.2f} | {m['rounds']} |")

print("\nRatios (fetch / peer):\n")
for workload in ["W1", "W2", "W4a", "W4b", "W5"]:
    mine = summary(workload, "fetch")
    for tool in tools[1:]:
        peer = summary(workload, tool)
        if not (mine and peer):
            continue
        print(
            f"- {workload} vs {names[tool]}: URLs/s ×{mine['rate'] / peer['rate']:.2f}, "
            f"CPU per URL ×{mine['cpu_us'] / peer['cpu_us']:.2f}"
        )

print("\nTargets:\n")


def target(text, ok):
    print(f"- [{'x' if ok else ' '}] {text}")


w1 = summary("W1", "fetch")
if w1:
    for tool, factor in [("curl", 3.0), ("oha", 0.75), ("wrk", 0.75)]:
        peer = summary("W1", tool)
        if peer:
            ratio = w1["rate"] / peer["rate"]
            target(f"W1: fetch ≥ {factor}× {names[tool]} URLs/s (×{ratio:.2f})", ratio >= factor)
    peers = [summary(w, t) for w in ["W1"] for t in tools[1:]]
    peers = [(t, p) for t, p in zip(tools[1:], peers) if p]
    lowest = all(w1["cpu_us"] < p["cpu_us"] for _, p in peers)
    listing = ", ".join(f"{names[t]} {p['cpu_us']:.1f}" for t, p in peers)
    target(f"W1: CPU per URL below every peer's (fetch {w1['cpu_us']:.1f} µs; {listing})", lowest)
w2 = summary("W2", "fetch")
if w2:
    ideal = w2_urls / concurrency * w2_delay_ms / 1000
    target(f"W2: wall ≤ 1.02 × ideal {ideal:.2f} s (fetch {w2['wall']:.3f} s, ×{w2['wall'] / ideal:.3f})",
           w2["wall"] <= 1.02 * ideal)
small, big = summary("W3-small", "fetch"), summary("W3-big", "fetch")
if small and big:
    growth = big["rss_mb"] / small["rss_mb"]
    target(f"W3: peak RSS for {big['urls']:,} URLs within 10 % of {small['urls']:,} and under 40 MB "
           f"({small['rss_mb']:.1f} → {big['rss_mb']:.1f} MB, ×{growth:.2f})",
           growth <= 1.10 and big["rss_mb"] < 40)

for workload in ["W4a", "W4b"]:
    mine = summary(workload, "fetch")
    if not mine:
        continue
    for tool, factor in [("curl", 3.0), ("oha", 1.2)]:
        peer = summary(workload, tool)
        if peer:
            ratio = mine["rate"] / peer["rate"]
            target(f"{workload}: fetch ≥ {factor}× {names[tool]} URLs/s (×{ratio:.2f})", ratio >= factor)
    peers = [(t, summary(workload, t)) for t in ["curl", "oha"]]
    peers = [(t, p) for t, p in peers if p]
    listing = ", ".join(f"{names[t]} {p['cpu_us']:.1f}" for t, p in peers)
    target(f"{workload}: CPU per URL below curl's and oha's (fetch {mine['cpu_us']:.1f} µs; {listing})",
           all(mine["cpu_us"] < p["cpu_us"] for _, p in peers))
w5, w5_big = summary("W5", "fetch"), summary("W5-big", "fetch")
if w5:
    curl = summary("W5", "curl")
    if curl:
        ratio = w5["rate"] / curl["rate"]
        target(f"W5: fetch ≥ 2.5× curl URLs/s (×{ratio:.2f})", ratio >= 2.5)
    per_host = w5["accepts"] / w5_hosts
    target(f"W5: fewer than 1.2 TLS handshakes per host ({w5['accepts']:,.0f} connections for "
           f"{w5_hosts:,} hosts, {per_host:.2f} each)", per_host < 1.2)
    target(f"W5: peak RSS ≤ 40 MB ({w5['rss_mb']:.1f} MB)", w5["rss_mb"] <= 40)
w5_deep = summary("W5-deep", "fetch")
if w5_deep and w5_big:
    deep_mb, big_mb = w5_deep["rss_median_mb"], w5_big["rss_median_mb"]
    growth = big_mb / deep_mb
    target(f"W5: peak RSS flat from {w5_hosts:,} to {w5_big_hosts:,} hosts, {w5_big['urls']:,} URLs "
           f"each way: medians within 10 % ({deep_mb:.1f} → {big_mb:.1f} MB, ×{growth:.2f}), "
           f"every round ≤ 40 MB (highest {w5_big['rss_mb']:.1f} MB)",
           growth <= 1.10 and w5_big["rss_mb"] <= 40)
lost = [(w, t) for w in workloads for t in tools
        if (s := summary(w, t)) and s["rows_ok"] is False]
checked = [(w, t) for w in workloads for t in tools if (s := summary(w, t)) and s["rows_ok"]]
if checked or lost:
    target("no row lost: every row-writing tool wrote one row per URL, each a 200"
           + (f" (lost: {', '.join(f'{t} on {w}' for w, t in lost)})" if lost else ""), not lost)
if "mixed-small" in mixed and "mixed-bomb" in mixed:
    alone, bombs = mixed["mixed-small"]["p90"], mixed["mixed-bomb"]["p90"]
    target(f"mixed: the small pages' p90 with 5 % gzip bombs within 1.5× of the list alone "
           f"({alone:.2f} → {bombs:.2f} ms, ×{bombs / alone:.2f})", bombs <= 1.5 * alone)

try:
    with open(arrivals_path) as f:
        arrivals = sorted(int(x) for x in f if x.strip())
except OSError:
    arrivals = []
if len(arrivals) > 1:
    span = (arrivals[-1] - arrivals[0]) / 1e6
    achieved = (len(arrivals) - 1) / span
    most, start = 0, 0
    for end, at in enumerate(arrivals):
        while at - arrivals[start] >= 1_000_000:
            start += 1
        most = max(most, end - start + 1)
    target(f"--rate 1000/s: {achieved:.1f}/s achieved at the server (within 2 %), at most {most} "
           f"requests in any 1-second window (≤ 1000), {len(arrivals):,} requests",
           abs(achieved - 1000) <= 20 and most <= 1000)
