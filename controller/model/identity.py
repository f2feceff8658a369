"""The AWS identity of what the controller creates (DESIGN.md §4).

Every task and revision carries the owner's tags, every task the owner's
`startedBy`, and every RunTask a client token derived from the run key and
attempt: together they let a pass (or a new process) recognise its own work
in ECS, adopt it after a crash instead of starting it twice, and leave
everyone else's objects alone. They live in one module because changing any
of them changes what "ours" means.
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


def started_by(owner: str) -> str:
    """The RunTask startedBy value of an owner (ECS allows 36 characters)."""
    return f"ejc/{owner}"


def client_token(owner: str, key: RunKey, attempt: int) -> str:
    """The deterministic RunTask clientToken: sha256("<owner>/<name>/<runId>/<attempt>")."""
    text = f"{owner}/{key.name}/{key.run_id}/{attempt}"
    return hashlib.sha256(text.encode()).hexdigest()
