"""The AWS identity of what the controller creates, and the tags it obeys (DESIGN.md §4).

Every task and revision carries the owner's tags, every task the owner's
`startedBy`, and every RunTask a client token derived from the run key and
attempt: together they let a pass (or a new process) recognise its own work
in ECS, adopt it after a crash instead of starting it twice, and leave
everyone else's objects alone. The scale-in tags are the other direction: a
user marks an Auto Scaling group as one this owner may shrink. They live in
one module because changing any of them changes what "ours" means.
"""

from __future__ import annotations

import hashlib

from controller.model.manifest import RunKey

#: Tag keys the controller puts on tasks and revisions (DESIGN.md §4).
TAG_OWNER = "ecs-job-controller/owner"
TAG_KIND = "ecs-job-controller/kind"
TAG_RUN = "ecs-job-controller/run"
TAG_RUN_ID = "ecs-job-controller/run-id"
TAG_ATTEMPT = "ecs-job-controller/attempt"
TAG_SPEC_HASH = "ecs-job-controller/spec-hash"
#: On the tasks of one index of an indexed run: the index in decimal.
TAG_INDEX = "ecs-job-controller/index"

#: The environment variable every container of an index's tasks gets (the
#: name Kubernetes Indexed Jobs use), set by a containerOverride so that
#: every index shares one task-definition revision.
COMPLETION_INDEX_VARIABLE = "JOB_COMPLETION_INDEX"

#: Tags a user puts on an Auto Scaling group (the controller only reads them).
#: Scale-in is opt-in per group: the controller gives a group's idle
#: instances back only when this tag's value is its owner.
TAG_SCALE_IN = "ecs-job-controller/scale-in"
#: Optional: how long (whole seconds) an instance must stay empty before it is released.
TAG_SCALE_IN_IDLE_SECONDS = "ecs-job-controller/scale-in-idle-seconds"
#: Optional: how long (whole seconds) after a scale-out of the group no instance is released.
TAG_SCALE_IN_COOLDOWN_SECONDS = "ecs-job-controller/scale-in-cooldown-seconds"


def started_by(owner: str) -> str:
    """The RunTask startedBy value of an owner (ECS allows 36 characters)."""
    return f"ejc/{owner}"


def client_token(owner: str, key: RunKey, attempt: int) -> str:
    """The deterministic RunTask clientToken: sha256("<owner>/<name>/<runId>/<attempt>").

    For one index of an indexed run it is sha256("<owner>/<name>/<runId>#<index>/<attempt>"):
    each (run, index, attempt) has a token of its own.
    """
    text = f"{owner}/{key}/{attempt}"
    return hashlib.sha256(text.encode()).hexdigest()
