"""Run a command and print its wall time and the peak memory of its whole process tree (workers included).

/usr/bin/time's "maximum resident set size" is one process's peak, not the sum over kit's decode workers or loader
processes; this samples every process of the tree 4 times a second and adds their proportional set sizes (PSS:
pages shared between processes, e.g. libraries of forked workers, are split among them, not counted twice).

Example:
    python docs/tools/peak_memory.py -- kit ingest pcam --raw data/pcam/raw --store data/pcam/pcam.h5
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        tree.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return tree


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def main(argv: list[str]) -> int:
    command = argv[argv.index("--") + 1 :] if "--" in argv else argv
    started = time.monotonic()
    proc = subprocess.Popen(command)
    peak_tree = peak_main = peak_procs = 0
    while proc.poll() is None:
        tree, pids, todo = _children(), [], [proc.pid]
        while todo:
            pid = todo.pop()
            pids.append(pid)
            todo += tree.get(pid, [])
        sizes = [_pss_kib(pid) for pid in pids]
        peak_tree, peak_main = max(peak_tree, sum(sizes)), max(peak_main, sizes[0])
        peak_procs = max(peak_procs, len(pids))
        time.sleep(0.25)
    summary = {
        "command": " ".join(command),
        "rc": proc.returncode,
        "wall_s": round(time.monotonic() - started, 1),
        "peak_tree_pss_mib": round(peak_tree / 1024, 1),
        "peak_main_pss_mib": round(peak_main / 1024, 1),
        "peak_processes": peak_procs,
    }
    print(json.dumps(summary), file=sys.stderr)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
