"""Runs the `controller` CLI and reports its own CPU seconds and peak RSS at exit.

A parent cannot read a child's peak RSS reliably: Linux carries the forked
parent's high-water mark across exec into `ru_maxrss`. So the child reads its
own `VmHWM` (reset by exec) and writes `{"cpu": s, "rss_mib": n}` to the
file named by BENCH_USAGE_FILE.
"""

from __future__ import annotations

import atexit
import json
import os
import resource
from pathlib import Path

from controller.cli.commands import main


def _report() -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    status = Path("/proc/self/status").read_text(encoding="utf-8")
    hwm_kib = next(
        int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")
    )
    figures = {"cpu": usage.ru_utime + usage.ru_stime, "rss_mib": hwm_kib / 1024}
    with open(os.environ["BENCH_USAGE_FILE"], "w", encoding="utf-8") as out:  # noqa: PTH123
        json.dump(figures, out)


atexit.register(_report)
main()
