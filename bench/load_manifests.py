"""Benchmark: load and validate N manifest files, cold and warm (issue 2).

Generates N JobRun files (a mix of EC2 and FARGATE, one to three containers)
into a temporary directory, then measures with the real directory source and
loader: a cold load (empty parse cache), a warm load (nothing changed: only
reading and hashing), and a warm load after 1 % of the files changed. Prints
files/s, CPU seconds and the process's peak RSS. Nothing is asserted.

    .venv/bin/python bench/load_manifests.py [N]
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

from controller.model.loader import ManifestLoader
from controller.schemas import validators
from controller.sources.directory import DirectorySource

TEMPLATE = """\
apiVersion: ecs-job-controller/v1
kind: JobRun
metadata:
  name: job-{i}
  labels: {{team: t{team}}}
spec:
  cluster: batch
  runId: "{i}"
  launchType: {launch}
{network}  backoffLimit: 2
  activeDeadlineSeconds: 3600
  taskDefinition:
    family: fam-{family}
    cpu: "256"
    memory: "512"
{compat}    containerDefinitions:
{containers}"""

CONTAINER = """\
      - name: c{n}
        image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/app:{i}
        command: ["run", "--shard", "{n}"]
        environment:
          - {{name: SHARD, value: "{n}"}}
          - {{name: JOB, value: "job-{i}"}}
        portMappings: [{{containerPort: {port}}}]
"""


def manifest(i: int) -> str:
    """One generated manifest."""
    fargate = i % 3 == 0
    network = (
        "  networkConfiguration:\n    awsvpcConfiguration: {subnets: [subnet-1]}\n"
        if fargate
        else ""
    )
    compat = "    requiresCompatibilities: [FARGATE]\n    networkMode: awsvpc\n" if fargate else ""
    containers = "".join(CONTAINER.format(n=n, i=i, port=8000 + n) for n in range(1 + i % 3))
    return TEMPLATE.format(
        i=i,
        team=i % 7,
        launch="FARGATE" if fargate else "EC2",
        network=network,
        family=i % 20,
        compat=compat,
        containers=containers,
    )


def measure(label: str, source: DirectorySource, loader: ManifestLoader) -> tuple[str, ...]:
    """Load once; return a table row."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    snapshot = source.snapshot()
    result = loader.load(snapshot.files, snapshot.errors)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    # Peak RSS of the whole process so far (tracemalloc would slow the
    # loader down several times and distort the timings).
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert not result.errors, result.errors[:3]
    files = result.files
    return (
        label,
        str(files),
        str(len(result.desired)),
        str(result.cache_hits),
        f"{wall:.2f}",
        f"{cpu:.2f}",
        f"{files / wall:,.0f}",
        f"{peak / 2**20:.1f}",
    )


def main() -> None:
    """Run the benchmark and print the table."""
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "manifests"
        root.mkdir()
        for i in range(count):
            (root / f"job-{i:05d}.yaml").write_text(manifest(i))
        source = DirectorySource(root)
        loader = ManifestLoader(validators())
        rows = [measure("cold", source, loader), measure("warm (unchanged)", source, loader)]
        for i in range(0, count, 100):
            (root / f"job-{i:05d}.yaml").write_text(
                manifest(i).replace("backoffLimit: 2", "backoffLimit: 3")
            )
        rows.append(measure("warm (1% changed)", source, loader))
    header = (
        "pass",
        "files",
        "manifests",
        "cache hits",
        "wall s",
        "CPU s",
        "files/s",
        "peak RSS MiB",
    )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
