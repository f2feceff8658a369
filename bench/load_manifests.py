"""Benchmark: load and validate 1,000 / 10,000 / 50,000 manifest files (issues 2, 18).

For each size and kind (JobRuns: a mix of EC2 and FARGATE with one to three
containers; CronJobs) it writes the files into a temporary directory and
measures, with the real directory source and loader: a cold load (empty
parse cache), a warm load (nothing changed: reading and hashing), and a
load after 1 % of the files changed; and, in the same run over the same
files, the floors: reading + SHA-256, and PyYAML's C loader. The cost per
manifest shows linearity down a column; "x floor" compares a cold load with
the C-YAML floor and a warm one with the read + hash floor. Peak RSS is the
process's high-water mark so far. Nothing is asserted.

    .venv/bin/python -m bench.load_manifests [SIZE ...]
"""

from __future__ import annotations

import hashlib
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from controller.model.loader import ManifestLoader
from controller.schemas import validators
from controller.sources.directory import DirectorySource

SIZES = (1_000, 10_000, 50_000)

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


def cron_manifest(i: int) -> str:
    """One generated CronJob `cron-<i>`: daily, at a minute of its own."""
    return (
        "apiVersion: ecs-job-controller/v1\n"
        "kind: CronJob\n"
        f"metadata: {{name: cron-{i}}}\n"
        "spec:\n"
        f'  schedule: "{i % 60} {i % 24} * * *"\n'
        "  timeZone: Europe/Berlin\n"
        "  concurrencyPolicy: Forbid\n"
        "  jobTemplate:\n"
        "    cluster: batch\n"
        "    launchType: EC2\n"
        "    backoffLimit: 1\n"
        "    taskDefinition:\n"
        f"      family: cron-fam-{i % 20}\n"
        "      containerDefinitions:\n"
        "        - name: app\n"
        "          image: busybox:1\n"
        "          cpu: 16\n"
        "          memory: 32\n"
        f'          command: ["report", "--part", "{i}"]\n'
    )


KINDS: dict[str, Callable[[int], str]] = {"JobRun": manifest, "CronJob": cron_manifest}


@dataclass
class Row:
    """One measured line of a table."""

    kind: str
    size: int
    label: str
    cpu: float
    wall: float
    #: the floor this row is compared with, if any
    floor: float | None = None
    rss_mib: float | None = None

    def cells(self) -> list[str]:
        """The row as table cells."""
        ratio = f"{self.cpu / self.floor:.2f}" if self.floor else ""
        rss = f"{self.rss_mib:.0f}" if self.rss_mib is not None else ""
        per = self.cpu / self.size * 1e6
        return [
            self.kind,
            f"{self.size:,}",
            self.label,
            f"{self.cpu:.2f}",
            f"{self.wall:.2f}",
            f"{per:,.0f}",
            ratio,
            rss,
        ]


HEADER = ["kind", "manifests", "pass", "CPU s", "wall s", "CPU us/manifest", "x floor", "RSS MiB"]


def print_rows(rows: list[Row]) -> None:
    """Print the rows as an aligned table."""
    table = [HEADER, *(r.cells() for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    for line in table:
        print("  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)))


@dataclass
class Timing:
    """CPU and wall seconds of a block, filled in when it ends."""

    cpu: float = 0.0
    wall: float = 0.0


@contextmanager
def timed() -> Iterator[Timing]:
    """Measure a block's CPU and wall seconds into the yielded Timing."""
    timing = Timing()
    cpu, wall = time.process_time(), time.perf_counter()
    yield timing
    timing.cpu, timing.wall = time.process_time() - cpu, time.perf_counter() - wall


def peak_rss_mib() -> float:
    """The peak RSS of this process so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_files(root: Path, size: int, write: Callable[[int], str]) -> list[Path]:
    """`size` manifest files in `root`, one document each."""
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(size):
        path = root / f"m-{i:05d}.yaml"
        path.write_text(write(i))
        paths.append(path)
    return paths


def floor_rows(kind: str, paths: list[Path]) -> tuple[Row, Row]:
    """The read + SHA-256 floor and the C-YAML parse floor over these files."""
    with timed() as read:
        for path in paths:
            hashlib.sha256(path.read_bytes()).hexdigest()
    texts = [path.read_text() for path in paths]
    with timed() as parse:
        for text in texts:
            list(yaml.load_all(text, Loader=yaml.CSafeLoader))
    size = len(paths)
    return (
        Row(kind, size, "floor: read + SHA-256", read.cpu, read.wall, rss_mib=peak_rss_mib()),
        Row(kind, size, "floor: C-YAML parse", parse.cpu, parse.wall, rss_mib=peak_rss_mib()),
    )


def edit_one_in_a_hundred(paths: list[Path]) -> None:
    """Change 1 % of the files (a label: the runs stay the same)."""
    for path in paths[::100]:
        path.write_text(path.read_text().replace("metadata: {", "metadata: {labels: {e: y}, "))


def measure(kind: str, size: int) -> list[Row]:
    """Every row of one kind at one size."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_files(Path(tmp) / "manifests", size, KINDS[kind])
        read_floor, parse_floor = floor_rows(kind, paths)
        source = DirectorySource(Path(tmp) / "manifests")
        loader = ManifestLoader(validators())
        rows = [read_floor, parse_floor]
        for label, floor in (("cold load", parse_floor), ("warm (unchanged)", read_floor)):
            rows.append(load(kind, size, label, source, loader, floor))
        edit_one_in_a_hundred(paths)
        rows.append(load(kind, size, "1 % changed", source, loader, read_floor))
    return rows


def load(
    kind: str, size: int, label: str, source: DirectorySource, loader: ManifestLoader, floor: Row
) -> Row:
    """One load of the whole source, measured."""
    with timed() as figures:
        snapshot = source.snapshot()
        result = loader.load(snapshot.files, snapshot.errors)
    if result.errors or len(result.desired) != size:
        raise SystemExit(f"the generated manifests did not load: {result.errors[:3]}")
    return Row(kind, size, label, figures.cpu, figures.wall, floor.cpu, peak_rss_mib())


def main() -> None:
    """Run the benchmark and print the table."""
    sizes = [int(a) for a in sys.argv[1:]] or list(SIZES)
    rows = [row for size in sizes for kind in KINDS for row in measure(kind, size)]
    print_rows(rows)
    print("\nx floor: a cold load against the C-YAML floor, the others against read + SHA-256")


if __name__ == "__main__":
    main()
