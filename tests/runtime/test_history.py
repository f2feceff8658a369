"""The lost-ledger guard's reads: every family and cluster read at once, each cluster in order."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from controller.aws.ecs import DescribedRevision
from controller.errors import TerminalError
from controller.model.identity import TAG_OWNER
from controller.model.loader import ManifestLoader
from controller.model.manifest import DesiredSet
from controller.runtime.history import OwnerHistory, owner_history
from controller.schemas import validators
from controller.workers import Workers


def job_run(name: str, family: str, cluster: str) -> str:
    return (
        "apiVersion: ecs-job-controller/v1\n"
        "kind: JobRun\n"
        f"metadata: {{name: {name}}}\n"
        "spec:\n"
        f"  cluster: {cluster}\n"
        "  taskDefinition:\n"
        f"    family: {family}\n"
        "    containerDefinitions: [{name: app, image: busybox, memory: 128}]\n"
    )


def desired(*runs: tuple[str, str, str]) -> DesiredSet:
    files = {
        f"{name}.yaml": job_run(name, family, cluster).encode() for name, family, cluster in runs
    }
    loaded = ManifestLoader(validators()).load(files)
    assert not loaded.errors
    return loaded.desired


@dataclass
class MeetingEcs:
    """ECS whose first `parties` reads wait for each other: they only return if they overlap."""

    parties: int
    barrier: threading.Barrier = field(init=False)
    listings: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.barrier = threading.Barrier(self.parties, timeout=10)
        self._lock = threading.Lock()
        self._met = 0

    def _meet(self) -> None:
        with self._lock:
            self._met += 1
            meeting = self._met <= self.parties
        if meeting:
            self.barrier.wait()  # BrokenBarrierError after 10 s if the reads ran one by one

    def list_active_revisions(self, family: str) -> list[str]:
        self._meet()
        return [f"arn:aws:ecs:us-east-1:1:task-definition/{family}:1"]

    def describe_revision(self, arn: str) -> DescribedRevision:
        family = arn.rsplit("/", 1)[1].partition(":")[0]
        owner = "them" if family == "theirs" else "me"
        return DescribedRevision(arn, family, 1, "ACTIVE", {}, {TAG_OWNER: owner})

    def list_tasks(self, cluster: str, started_by: str, desired_status: str) -> list[str]:
        del started_by
        with self._lock:
            self.listings.append((cluster, desired_status))
        if desired_status == "RUNNING":
            self._meet()
        if cluster == "gone":
            raise TerminalError("ClusterNotFoundException")
        return [f"task/{cluster}/1"]  # the same task in both listings: counted once


def test_families_and_clusters_are_read_concurrently_and_counted_once() -> None:
    wanted = desired(("a", "fam-a", "batch"), ("b", "fam-b", "batch"), ("c", "theirs", "other"))
    ecs: Any = MeetingEcs(parties=5)  # 3 families + 2 clusters, all in flight at once
    workers = Workers(8)
    try:
        history = owner_history(ecs, wanted, "me", workers)
    finally:
        workers.close()
    assert history == OwnerHistory(revisions=2, tasks=2)
    # Per cluster, RUNNING then STOPPED: a task stopping meanwhile is in one of them.
    for cluster in ("batch", "other"):
        assert [s for c, s in ecs.listings if c == cluster] == ["RUNNING", "STOPPED"]


def test_a_cluster_that_does_not_exist_has_no_tasks() -> None:
    wanted = desired(("a", "fam-a", "gone"))
    ecs: Any = MeetingEcs(parties=1)
    assert owner_history(ecs, wanted, "me") == OwnerHistory(revisions=1, tasks=0)
