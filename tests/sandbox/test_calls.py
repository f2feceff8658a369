"""Patch h: every request the server handles is counted by (service, operation)."""

from __future__ import annotations

import threading
import urllib.request
from collections import Counter

from controller.sandbox import Sandbox


def test_calls_are_counted_per_service_and_operation(sandbox: Sandbox) -> None:
    ecs = sandbox.client("ecs")
    ecs.list_clusters()
    ecs.list_clusters()
    sandbox.client("autoscaling").describe_auto_scaling_groups()
    sandbox.client("logs").describe_log_groups()
    s3 = sandbox.client("s3")
    s3.create_bucket(Bucket="manifests")
    s3.put_object(Bucket="manifests", Key="jobs/a.yaml", Body=b"kind: JobRun\n")
    s3.list_objects_v2(Bucket="manifests", Prefix="jobs/")
    s3.get_object(Bucket="manifests", Key="jobs/a.yaml")["Body"].read()
    url = s3.generate_presigned_url("get_object", {"Bucket": "manifests", "Key": "jobs/a.yaml"})
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.read() == b"kind: JobRun\n"
    assert sandbox.calls == Counter(
        {
            ("ecs", "ListClusters"): 2,
            ("autoscaling", "DescribeAutoScalingGroups"): 1,
            ("logs", "DescribeLogGroups"): 1,
            ("s3", "CreateBucket"): 1,
            ("s3", "PutObject"): 1,
            ("s3", "ListObjectsV2"): 1,
            ("s3", "GetObject"): 2,
        }
    )


def test_the_sandbox_setup_calls_are_not_counted(sandbox: Sandbox) -> None:
    sandbox.create_cluster("batch")
    sandbox.add_container_instances("batch", 2)
    sandbox.create_auto_scaling_group("batch-asg", "batch", 0, 2, 1)
    sandbox.create_log_group("/ecs/jobs")
    assert sandbox.calls == Counter()


def test_reset_calls_starts_from_zero_and_calls_is_a_snapshot(sandbox: Sandbox) -> None:
    ecs = sandbox.client("ecs")
    ecs.list_clusters()
    snapshot = sandbox.calls
    sandbox.reset_calls()
    ecs.list_clusters()
    assert snapshot == Counter({("ecs", "ListClusters"): 1})
    assert sandbox.calls == Counter({("ecs", "ListClusters"): 1})


def test_an_uncounted_client_neither_counts_nor_meets_faults(sandbox: Sandbox) -> None:
    sandbox.inject_fault("ecs", "ListClusters", "ThrottlingException")
    sandbox.client("ecs", counted=False).list_clusters()
    assert sandbox.calls == Counter()


def test_a_test_can_wait_for_a_call_made_elsewhere(sandbox: Sandbox) -> None:
    assert sandbox.wait_for_calls("ecs", "ListClusters", timeout=0) is False
    caller = threading.Thread(target=sandbox.client("ecs").list_clusters)
    caller.start()
    assert sandbox.wait_for_calls("ecs", "ListClusters", timeout=30)
    caller.join(timeout=30)
    assert sandbox.wait_for_calls("ecs", "ListClusters", 2, timeout=0) is False


def test_call_times_are_kept_only_when_asked(sandbox: Sandbox) -> None:
    sandbox.client("ecs").list_clusters()
    assert sandbox.calls[("ecs", "ListClusters")] == 1
    assert sandbox.call_times == []
