"""Benchmark (issue 8): scheduling drift of `controller run` with an every-minute CronJob.

Starts the sandbox (real clock) and the real `controller run` as a child
process with the resync timer far away (`--resync-seconds 3600`), so every
start comes from the loop waking at the next occurrence. After the given
number of minutes it reads each run's RunTask time (the task's createdAt,
stamped by the sandbox when RunTask arrives) and subtracts the occurrence's
scheduled time (its run id). Prints median and max drift.

    .venv/bin/python -m bench.cron_drift [MINUTES]
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from controller.clock import SystemClock
from controller.plan.schedule import parse_occurrence_run_id
from controller.sandbox import Sandbox

CRON = """\
apiVersion: ecs-job-controller/v1
kind: CronJob
metadata: {name: every-minute}
spec:
  schedule: "* * * * *"
  concurrencyPolicy: Allow
  jobTemplate:
    cluster: batch
    launchType: EC2
    taskDefinition:
      family: every-minute
      cpu: "128"
      memory: "128"
      containerDefinitions:
        - name: app
          image: busybox
          environment: [{name: SANDBOX_DURATION_SECONDS, value: "5"}]
"""


def main() -> None:
    """Run the loop for a few minutes and print the drift figures."""
    minutes = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    with tempfile.TemporaryDirectory() as tmp, Sandbox(SystemClock()) as sandbox:
        root = Path(tmp)
        (root / "manifests").mkdir()
        (root / "manifests" / "cron.yaml").write_text(CRON)
        sandbox.create_cluster("batch")
        sandbox.add_container_instances("batch", 2)
        argv = [
            sys.executable, "-m", "controller",
            "--source", str(root / "manifests"),
            "--state", f"sqlite:{root / 'state.db'}",
            "run", "--resync-seconds", "3600", "--metrics-addr", "127.0.0.1:0",
        ]  # fmt: skip
        child = subprocess.Popen(
            argv, env=sandbox.subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            time.sleep(minutes * 60 + 5)  # a benchmark of real scheduling: it must wait
        finally:
            child.send_signal(signal.SIGTERM)
            child.wait(timeout=60)
        ecs: Any = sandbox.client("ecs", counted=False)
        arns = ecs.list_tasks(cluster="batch", desiredStatus="STOPPED")["taskArns"]
        arns += ecs.list_tasks(cluster="batch")["taskArns"]
        drifts = []
        for start in range(0, len(arns), 100):
            described = ecs.describe_tasks(
                cluster="batch", tasks=arns[start : start + 100], include=["TAGS"]
            )
            for task in described["tasks"]:
                tags = {t["key"]: t["value"] for t in task.get("tags", [])}
                scheduled = parse_occurrence_run_id(tags.get("ecs-job-controller/run-id", ""))
                if scheduled is None:
                    continue
                created = task["createdAt"].astimezone(UTC)
                drifts.append((created - scheduled).total_seconds())
        print(f"every-minute CronJob, {minutes} min of `controller run` (resync 3600 s)")
        if drifts:
            median = statistics.median(drifts)
            print(
                f"  occurrences started: {len(drifts)}; drift median {median:.2f} s,"
                f" max {max(drifts):.2f} s, min {min(drifts):.2f} s"
            )
        else:
            print("  no occurrence started")
        print(f"  measured at {datetime.now(UTC).isoformat()} on pid {os.getpid()}")


if __name__ == "__main__":
    main()
