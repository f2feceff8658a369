"""Run a standalone sandbox until Ctrl-C: `python -m controller.sandbox --help`.

Handy for manual play: it prints the `export` lines that point boto3, the
AWS CLI and the `controller` CLI at it. Time is the real clock here, so a
task with SANDBOX_DURATION_SECONDS=30 really runs for 30 seconds (it moves
on whenever someone sends a request).
"""

from __future__ import annotations

import argparse
import shlex
import signal
import threading
from collections.abc import Sequence

from controller.clock import SystemClock
from controller.sandbox.server import Sandbox


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m controller.sandbox",
        description="A local AWS (moto + ECS fidelity patches + simulated agent).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000, help="0 picks a free port")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--cluster", help="create this ECS cluster")
    parser.add_argument("--instances", type=int, default=0, help="container instances in it")
    parser.add_argument("--instance-cpu", type=int, default=2048)
    parser.add_argument("--instance-memory", type=int, default=4096)
    parser.add_argument("--asg", help="create this Auto Scaling group, joining the cluster")
    parser.add_argument("--asg-min", type=int, default=0)
    parser.add_argument("--asg-max", type=int, default=4)
    parser.add_argument("--asg-desired", type=int, default=0)
    parser.add_argument("--registration-delay", type=float, default=30.0, metavar="SECONDS")
    parser.add_argument("--log-group", action="append", default=[], help="repeatable")
    parser.add_argument("--forget-after", type=float, default=3600.0, metavar="SECONDS")
    arguments = parser.parse_args(argv)
    if (arguments.instances or arguments.asg) and not arguments.cluster:
        parser.error("--instances and --asg need --cluster")
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
