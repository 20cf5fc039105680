"""The approach Python concurrency tutorials teach: asyncio + aiohttp, one coroutine per URL,
bounded by asyncio.Semaphore(N), rows written to CSV. A peer for bench/compare.sh.

    python3 aiohttp_fetch.py URLS.txt OUT.csv [CONCURRENCY]
"""

import asyncio
import csv
import sys
import time

import aiohttp


async def fetch(session, semaphore, url, writer):
    async with semaphore:
        started = time.perf_counter()
        try:
            async with session.get(url) as response:
                await response.read()
                writer.writerow([url, response.status, f"{time.perf_counter() - started:.6f}", ""])
        except Exception as error:  # noqa: BLE001 - every URL gets a row, whatever failed
            writer.writerow([url, "", "", repr(error)])


async def main(path, out, concurrency):
    semaphore = asyncio.Semaphore(concurrency)
    with open(path) as lines:
        urls = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    timeout = aiohttp.ClientTimeout(total=10)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        with open(out, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["url", "status", "time_total", "error"])
            await asyncio.gather(*(fetch(session, semaphore, url, writer) for url in urls))


if __name__ == "__main__":
    concurrency = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    asyncio.run(main(sys.argv[1], sys.argv[2], concurrency))
