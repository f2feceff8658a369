"""Benchmark (issue 6): revisions per family after 100 spec changes, and the prune step's cost.

One manifest changes its image (and runId) 100 times; after each change a
pass starts the new run, and the clock moves past its end. The family also
holds two foreign revisions (no tags, another owner's tags). Prints the
ACTIVE revisions left (ours and foreign) and the AWS calls of a
steady-state pass, where pruning reads only the ledger.

    .venv/bin/python -m bench.prune [CHANGES] [KEEP]
"""

from __future__ import annotations

import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from bench.sandbox_world import Controller, job_manifest, start_world
from controller.plan.prune import PruneSettings


def main() -> None:
    """Run the spec changes and print the figures."""
    changes = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    keep = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sandbox = start_world(root, 0, 1, duration=1, instances=2)
        clock: Any = sandbox.clock
        try:
            ecs: Any = sandbox.client("ecs", counted=False)
            for tags in ([], [{"key": "ecs-job-controller/owner", "value": "other"}]):
                ecs.register_task_definition(
                    family="fam-0",
                    containerDefinitions=[{"name": "x", "image": "foreign", "memory": 32}],
                    **({"tags": tags} if tags else {}),
                )
            controller = Controller(root, clock)
            controller.context.prune = PruneSettings(keep_revisions=keep)
            manifest = root / "manifests" / "job.yaml"
            prune_calls: Counter[tuple[str, str]] = Counter()
            for change in range(changes):
                manifest.write_text(
                    job_manifest(
                        0,
                        "fam-0",
                        duration=1,
                        image_tag=str(change),
                        spec_lines=f"  runId: '{change}'\n",
                    )
                )
                figures, result = controller.measure(f"change {change}")
                assert result.applied.ok, result.applied.failed[:3]
                prune_calls[("ecs", "DeregisterTaskDefinition")] += figures.calls.get(
                    ("ecs", "DeregisterTaskDefinition"), 0
                )
                clock.advance(2)
            controller.measure("settle")
            steady, _ = controller.measure("steady state")
            active = ecs.list_task_definitions(familyPrefix="fam-0", status="ACTIVE")[
                "taskDefinitionArns"
            ]
            print(f"{changes} spec changes, --keep-revisions {keep}")
            print(f"  ACTIVE revisions in the family: {len(active)} (2 foreign + ours)")
            print(f"  DeregisterTaskDefinition calls in all: {prune_calls.most_common()}")
            print(f"  AWS calls of a steady-state pass: {dict(steady.calls)}")
        finally:
            sandbox.stop()


if __name__ == "__main__":
    main()
