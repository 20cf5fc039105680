"""Turns bench/compare.sh's raw figures into the report: medians per tool and workload, ratios
of fetch to each peer, and the targets, each marked met or not.

    python3 report.py results.jsonl arrivals.txt W2_URLS W2_DELAY_MS CONCURRENCY
"""

import json
import platform
import statistics
import sys
from collections import defaultdict

results_path, arrivals_path = sys.argv[1], sys.argv[2]
w2_urls, w2_delay_ms, concurrency = (int(x) for x in sys.argv[3:6])

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
    rate = median([r["rate"] for r in got]) if "rate" in got[0] else urls / wall
    rows_ok = all(r["rows"] == urls for r in got) if got[0]["rows"] is not None else None
    return {
        "urls": urls,
        "rounds": len(got),
        "wall": wall,
        "rate": rate,
        "cpu": cpu,
        "cpu_us": cpu / urls * 1e6,
        "rss_mb": max(r["rss_kib"] for r in got) / 1024,
        "rows_ok": rows_ok,
        "rows": [r["rows"] for r in got],
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
print("| workload | tool | URLs | wall s | URLs/s | CPU s | CPU µs/URL | peak RSS MB | one row per URL |")
print("|---|---|---:|---:|---:|---:|---:|---:|---|")
for workload in ["W1", "W2", "W3-small", "W3-big"]:
    for tool in tools:
        s = summary(workload, tool)
        if not s:
            continue
        rows = {True: "yes", False: f"NO {s['rows']}", None: "n/a"}[s["rows_ok"]]
        print(
            f"| {workload} | {names[tool]} | {s['urls']:,} | {s['wall']:.2f} | {s['rate']:,.0f} "
            f"| {s['cpu']:.2f} | {s['cpu_us']:.1f} | {s['rss_mb']:.1f} | {rows} |"
        )

print("\nRatios (fetch / peer):\n")
for workload in ["W1", "W2"]:
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
