"""The sandbox server: start, stop, reset, environment for subprocesses, patch removal."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.ecs.models import ecs_backends
from moto.ecs.responses import EC2ContainerServiceResponse
from moto.moto_api import state_manager

from controller.clock import FakeClock
from controller.sandbox import Sandbox
from controller.sandbox.patches import ACCOUNT_ID

ORIGINAL_RUN_TASK = EC2ContainerServiceResponse.run_task


def test_a_subprocess_with_subprocess_env_talks_to_the_sandbox() -> None:
    with Sandbox(FakeClock()) as sandbox:
        sandbox.create_cluster("batch")
        script = (
            "import boto3, json; "
            "print(json.dumps(boto3.client('ecs').list_clusters()['clusterArns']))"
        )
        base = {**os.environ, "AWS_PROFILE": "does-not-exist", "AWS_ENDPOINT_URL_ECS": "http://x"}
        result = subprocess.run(
            [sys.executable, "-c", script],
            env=sandbox.subprocess_env(base),
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        assert json.loads(result.stdout) == [f"arn:aws:ecs:us-east-1:{ACCOUNT_ID}:cluster/batch"]
        assert sandbox.calls[("ecs", "ListClusters")] == 1


def test_env_points_boto3_at_the_sandbox_and_away_from_home_configuration() -> None:
    with Sandbox(FakeClock(), region="eu-west-1") as sandbox:
        env = sandbox.env()
        assert env["AWS_ENDPOINT_URL"] == sandbox.endpoint_url
        assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
        assert env["AWS_DEFAULT_REGION"] == "eu-west-1"
        assert env["AWS_ACCESS_KEY_ID"] == env["AWS_SECRET_ACCESS_KEY"] == "testing"
        assert env["AWS_CONFIG_FILE"] == env["AWS_SHARED_CREDENTIALS_FILE"] == os.devnull
        stripped = sandbox.subprocess_env({"AWS_PROFILE": "x", "PATH": "/bin"})
        assert "AWS_PROFILE" not in stripped
        assert stripped["PATH"] == "/bin"


def test_stop_restores_moto_and_wipes_its_state() -> None:
    transition = state_manager.get_transition("ecs::task")
    with Sandbox(FakeClock()) as sandbox:
        sandbox.create_cluster("batch")
        assert EC2ContainerServiceResponse.run_task is not ORIGINAL_RUN_TASK
        backend = ecs_backends[ACCOUNT_ID]["us-east-1"]
        assert "run_task" in vars(backend)  # patched on the instance
    assert EC2ContainerServiceResponse.run_task is ORIGINAL_RUN_TASK
    assert "run_task" not in vars(backend)
    assert "batch" not in ecs_backends[ACCOUNT_ID]["us-east-1"].clusters
    assert state_manager.get_transition("ecs::task") == transition


def test_sandboxes_follow_one_another_but_never_overlap() -> None:
    first = Sandbox(FakeClock()).start()
    try:
        first.create_cluster("one")
        with pytest.raises(RuntimeError, match="another Sandbox"):
            Sandbox(FakeClock()).start()
    finally:
        first.stop()
    with Sandbox(FakeClock()) as second:
        assert second.client("ecs").list_clusters()["clusterArns"] == []


def test_reset_wipes_state_and_keeps_serving_on_the_same_port() -> None:
    with Sandbox(FakeClock()) as sandbox:
        url = sandbox.endpoint_url
        sandbox.create_cluster("batch")
        sandbox.client("ecs").list_clusters()
        sandbox.reset()
        assert sandbox.endpoint_url == url
        assert sandbox.calls == {}
        assert sandbox.client("ecs").list_clusters()["clusterArns"] == []
        # The patches are back after the reset.
        assert "run_task" in vars(ecs_backends[ACCOUNT_ID]["us-east-1"])


def test_moto_api_reset_over_http_keeps_the_patches() -> None:
    with Sandbox(FakeClock()) as sandbox:
        sandbox.create_cluster("batch")
        request = urllib.request.Request(f"{sandbox.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
        ecs = sandbox.client("ecs")
        assert ecs.list_clusters()["clusterArns"] == []
        sandbox.create_cluster("batch")
        ecs.register_task_definition(
            family="job", containerDefinitions=[{"name": "a", "image": "x", "memory": 64}]
        )
        with pytest.raises(ClientError, match="No Container Instances"):
            ecs.run_task(cluster="batch", taskDefinition="job")


def test_a_busy_port_fails_start_instead_of_hanging() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(OSError, match="cannot serve"):
            Sandbox(FakeClock(), port=port).start()
    with Sandbox(FakeClock()) as sandbox:  # nothing was left running
        assert sandbox.endpoint_url


def test_the_standalone_command_serves_until_interrupted() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "controller.sandbox",
            "--port",
            "0",
            "--cluster",
            "c",
            "--instances",
            "2",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        exports = {}
        for line in process.stdout:
            if not line.strip():
                break
            if line.startswith("export "):
                name, value = line.removeprefix("export ").strip().split("=", 1)
                exports[name] = value
        ecs = boto3.client(
            "ecs",
            endpoint_url=exports["AWS_ENDPOINT_URL"],
            region_name=exports["AWS_DEFAULT_REGION"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        assert len(ecs.list_container_instances(cluster="c")["containerInstanceArns"]) == 2
        process.send_signal(subprocess.signal.SIGINT)  # type: ignore[attr-defined]
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
