"""Runs one command and prints what it cost, as JSON: wall seconds, user and system CPU seconds,
peak resident memory in KiB (of the command's largest process). Used by bench/compare.sh.

    python3 measure.py -- COMMAND [ARGS...]   (stdout of COMMAND goes to $MEASURE_STDOUT or
                                               /dev/null)
"""

import json
import os
import resource
import subprocess
import sys
import time

command = sys.argv[sys.argv.index("--") + 1 :]
stdout_path = os.environ.get("MEASURE_STDOUT", os.devnull)
with open(stdout_path, "wb") as stdout:
    started = time.perf_counter()
    code = subprocess.call(command, stdout=stdout)
    wall = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(
    json.dumps(
        {
            "wall": wall,
            "user": usage.ru_utime,
            "sys": usage.ru_stime,
            "rss_kib": usage.ru_maxrss,
            "exit": code,
        }
    )
)
