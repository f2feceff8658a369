"""Run a standalone sandbox until Ctrl-C: `python -m controller.sandbox --help`.

Handy for manual play: it prints the `export` lines that point boto3, the
AWS CLI and the `controller` CLI at it. `--help` documents every option and
the `SANDBOX_*` variables that script the tasks. Time is the real clock here, so a
task with SANDBOX_DURATION_SECONDS=30 really runs for 30 seconds (it moves
on whenever someone sends a request).

`--latency-ms` and `--throttle` (defaults: `SANDBOX_LATENCY_MS`,
`SANDBOX_THROTTLE`) make it as slow and as strict as AWS; their syntax is in
`--help`, `latency.py` and `throttle.py`. Throttling refills in real time here.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import threading
from collections.abc import Sequence

from controller.clock import SystemClock
from controller.sandbox.latency import LATENCY_VARIABLE, Latency
from controller.sandbox.server import Sandbox
from controller.sandbox.throttle import THROTTLE_VARIABLE, Throttle

#: What `--help` ends with: how the tasks started in the sandbox behave.
_TASK_KNOBS = """\
Tasks started in the sandbox are scripted by environment variables of their
container definitions (or RunTask containerOverrides); real ECS gives them
no meaning:
  SANDBOX_DURATION_SECONDS  how long the container runs (default 1)
  SANDBOX_EXIT_CODE         its exit code (default 0), or a comma list, one per
                            attempt: "3,0" fails the first attempt, then succeeds
  SANDBOX_STOP_CODE         stop the task for an infrastructure reason instead,
                            e.g. TaskFailedToStart or SpotInterruption

The sandbox itself can be as slow and as strict as AWS (--latency-ms and
--throttle, whose defaults are these variables):
  SANDBOX_LATENCY_MS  milliseconds added to every call, before it is served and
                      without holding up other calls: "150", or per scope,
                      "150,ecs:RunTask:300,DescribeTasks:80" (a scope is a
                      service, an operation, or service:operation)
  SANDBOX_THROTTLE    token buckets, SCOPE[+SCOPE...]:BURST:REFILL-PER-SECOND,
                      e.g. "ecs:RunTask:100:20" (Fargate's task launches), or
                      "ecs" for ECS's published buckets (RunTask+StopTask 100/40,
                      DescribeTasks+ListTasks 100/20, ...); an empty bucket
                      answers 400 ThrottlingException "Rate exceeded", as ECS
                      does, and refills in real time

At start it prints the export lines (endpoint, region, dummy credentials)
that point boto3, the AWS CLI and the controller at it. For example:
  python -m controller.sandbox --cluster batch --instances 2 --log-group /ecs/batch
  SANDBOX_LATENCY_MS=ecs:150 python -m controller.sandbox --throttle ecs --cluster batch
"""


def argument_parser() -> argparse.ArgumentParser:
    """The command line of `python -m controller.sandbox`, every option with its help."""
    parser = argparse.ArgumentParser(
        prog="python -m controller.sandbox",
        description=(
            "A local AWS (moto's server + ECS fidelity patches + a simulated ECS agent)\n"
            "for trying the controller without an AWS account; serves until Ctrl-C or SIGTERM."
        ),
        epilog=_TASK_KNOBS,
        formatter_class=argparse.RawDescriptionHelpFormatter,  # keeps the epilog's layout
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    add("--port", type=int, default=5000, help="port; 0 picks a free one (default %(default)s)")
    add("--region", default="us-east-1", help="the AWS region it serves (default %(default)s)")
    add("--cluster", help="create this ECS cluster")
    add("--instances", type=int, default=0, help="container instances to register in --cluster")
    add(
        "--instance-cpu",
        type=int,
        default=2048,
        help="CPU units per instance (default %(default)s)",
    )
    add("--instance-memory", type=int, default=4096, help="MiB per instance (default %(default)s)")
    add("--asg", help="create this Auto Scaling group, its instances joining --cluster")
    add("--asg-min", type=int, default=0, help="MinSize of --asg (default %(default)s)")
    add("--asg-max", type=int, default=4, help="MaxSize of --asg (default %(default)s)")
    add("--asg-desired", type=int, default=0, help="DesiredCapacity of --asg (default %(default)s)")
    add(
        "--registration-delay",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long a new --asg instance takes to join the cluster (default %(default)s)",
    )
    add("--log-group", action="append", default=[], help="create this log group (repeatable)")
    add(
        "--forget-after",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="how long ECS still describes a stopped task (default %(default)s, as ECS does)",
    )
    add(
        "--latency-ms",
        default=os.environ.get(LATENCY_VARIABLE, ""),
        metavar="SPEC",
        help=f"latency of each call, as {LATENCY_VARIABLE} below (default ${LATENCY_VARIABLE})",
    )
    add(
        "--throttle",
        default=os.environ.get(THROTTLE_VARIABLE, ""),
        metavar="SPEC",
        help=f"token buckets, as {THROTTLE_VARIABLE} below (default ${THROTTLE_VARIABLE})",
    )
    return parser


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    parser = argument_parser()
    arguments = parser.parse_args(argv)
    if (arguments.instances or arguments.asg) and not arguments.cluster:
        parser.error("--instances and --asg need --cluster")
    try:
        Latency.parse(arguments.latency_ms)
    except ValueError as error:
        parser.error(f"--latency-ms: {error}")
    try:
        Throttle.parse(arguments.throttle)
    except ValueError as error:
        parser.error(f"--throttle: {error}")
    return arguments


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGINT or SIGTERM."""
    arguments = parse_arguments(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    sandbox = Sandbox(
        SystemClock(),
        arguments.region,
        forget_after_seconds=arguments.forget_after,
        host=arguments.host,
        port=arguments.port,
        latency=arguments.latency_ms,
        throttle=arguments.throttle,
    )
    with sandbox:
        if arguments.cluster:
            sandbox.create_cluster(arguments.cluster)
        if arguments.instances:
            sandbox.add_container_instances(
                arguments.cluster,
                arguments.instances,
                cpu=arguments.instance_cpu,
                memory=arguments.instance_memory,
            )
        if arguments.asg:
            sandbox.create_auto_scaling_group(
                arguments.asg,
                arguments.cluster,
                arguments.asg_min,
                arguments.asg_max,
                arguments.asg_desired,
                instance_cpu=arguments.instance_cpu,
                instance_memory=arguments.instance_memory,
                registration_delay_seconds=arguments.registration_delay,
            )
        for group in arguments.log_group:
            sandbox.create_log_group(group)
        print(f"# ecs-job-controller sandbox at {sandbox.endpoint_url}; Ctrl-C stops it.")
        print("# Tasks obey SANDBOX_DURATION_SECONDS, SANDBOX_EXIT_CODE, SANDBOX_STOP_CODE.")
        if sandbox.latency or sandbox.throttle:
            print(f"# Latency (ms): {sandbox.latency}; throttling: {sandbox.throttle}.")
        for name, value in sandbox.env().items():
            print(f"export {name}={shlex.quote(value)}")
        print(flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
