"""The loader judges each file and document alone and reports PATH:LINE: message."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from controller.model.decode import MAX_FILE_BYTES
from controller.model.loader import ManifestLoader, parse_file
from controller.model.manifest import ConcurrencyPolicy, CronJob, JobRun, RunKey
from controller.model.taskdef import task_cpu_units, task_memory_mib, to_register_input
from controller.schemas import validators
from controller.sources.directory import DirectorySource, read_paths

GOOD = textwrap.dedent(
    """\
    apiVersion: ecs-job-controller/v1
    kind: JobRun
    metadata: {name: good}
    spec:
      cluster: batch
      taskDefinition:
        family: good
        containerDefinitions:
          - {name: app, image: busybox, memory: 128}
    """
)


def job(name: str, spec_extra: str = "") -> str:
    """A valid JobRun document; `spec_extra` lines (two-space indented) join its spec."""
    return (
        "apiVersion: ecs-job-controller/v1\n"
        "kind: JobRun\n"
        f"metadata: {{name: {name}}}\n"
        "spec:\n"
        "  cluster: batch\n"
        f"{spec_extra}"
        "  taskDefinition:\n"
        f"    family: {name}\n"
        "    containerDefinitions:\n"
        "      - {name: app, image: busybox, memory: 128}\n"
    )


def messages(files: dict[str, str | bytes]) -> list[str]:
    loader = ManifestLoader(validators())
    raw = {p: (c.encode() if isinstance(c, str) else c) for p, c in files.items()}
    return [str(e) for e in loader.load(raw).errors]


def test_valid_jobrun_builds_the_model() -> None:
    result = ManifestLoader(validators()).load({"m/good.yaml": GOOD.encode()})
    assert result.errors == ()
    run = result.desired.job_runs["good"]
    assert isinstance(run, JobRun)
    assert run.key == RunKey("good", "1")
    assert run.spec.cluster == "batch"
    assert run.spec.family == "good"
    assert run.source.path == "m/good.yaml"
    assert run.source.line == 1


def test_yaml_syntax_error_is_reported_with_its_line_and_other_files_still_load() -> None:
    broken = "apiVersion: ecs-job-controller/v1\nkind: JobRun\nmetadata: {name: [x\n"
    errors = messages({"a.yaml": broken, "b.yaml": GOOD})
    assert len(errors) == 1
    assert errors[0].startswith("a.yaml:")
    assert "YAML syntax error" in errors[0]
    result = ManifestLoader(validators()).load({"a.yaml": broken.encode(), "b.yaml": GOOD.encode()})
    assert list(result.desired.job_runs) == ["good"]
    assert result.incomplete


def test_documents_before_a_syntax_error_still_load() -> None:
    text = GOOD + "---\nfoo: [\n"
    result = ManifestLoader(validators()).load({"a.yaml": text.encode()})
    assert list(result.desired.job_runs) == ["good"]
    assert len(result.errors) == 1
    assert result.errors[0].line == 12


def test_schema_violation_names_the_json_pointer_and_the_line() -> None:
    text = job("typo", spec_extra="  backofLimit: 2\n")
    errors = messages({"t.yaml": text})
    assert len(errors) == 1
    assert errors[0].startswith("t.yaml:6: /spec/backofLimit: ")
    assert "backofLimit" in errors[0]


def test_wrong_type_deep_in_the_task_definition_points_at_the_field() -> None:
    text = textwrap.dedent(
        """\
        apiVersion: ecs-job-controller/v1
        kind: JobRun
        metadata: {name: deep}
        spec:
          cluster: batch
          taskDefinition:
            family: deep
            containerDefinitions:
              - name: app
                image: busybox
                portMappings:
                  - containerPort: eighty
        """
    )
    errors = messages({"d.yaml": text})
    assert len(errors) == 1
    assert errors[0].startswith(
        "d.yaml:12: /spec/taskDefinition/containerDefinitions/0/portMappings/0/containerPort: "
    )


def test_each_document_of_a_file_is_judged_alone() -> None:
    text = job("one") + "---\n" + job("two", spec_extra="  count: 99\n") + "---\n" + job("three")
    result = ManifestLoader(validators()).load({"multi.yaml": text.encode()})
    assert sorted(result.desired.job_runs) == ["one", "three"]
    assert len(result.errors) == 1
    assert "/spec/count" in str(result.errors[0])
    assert ("JobRun", "two") in result.invalid_names


def test_duplicate_names_of_the_same_kind_name_both_files() -> None:
    errors = messages({"a.yaml": job("same"), "b.yaml": job("same"), "c.yaml": job("other")})
    assert len(errors) == 2
    assert all("duplicate JobRun metadata.name 'same'" in e for e in errors)
    assert all("a.yaml:1" in e and "b.yaml:1" in e for e in errors)


def test_a_name_is_unique_across_kinds_too() -> None:
    cron = textwrap.dedent(
        """\
        apiVersion: ecs-job-controller/v1
        kind: CronJob
        metadata: {name: same}
        spec:
          schedule: "@daily"
          jobTemplate:
            cluster: batch
            taskDefinitionRef: same:1
        """
    )
    loader = ManifestLoader(validators())
    result = loader.load({"a.yaml": job("same").encode(), "b.yaml": cron.encode()})
    assert len(result.errors) == 2
    assert all("used by both a JobRun and a CronJob" in e.message for e in result.errors)
    assert "same" not in result.desired.job_runs
    assert "same" not in result.desired.cron_jobs
    assert ("JobRun", "same") in result.invalid_names


def test_non_utf8_file_is_reported_with_the_line_of_the_bad_byte() -> None:
    data = GOOD.encode().replace(b"busybox", b"busy\xffbox")
    errors = messages({"bad.yaml": data})
    assert errors == ["bad.yaml:9: not UTF-8 text: invalid start byte"]


def test_file_over_one_mebibyte_is_refused() -> None:
    data = GOOD.encode() + b"#" * MAX_FILE_BYTES
    result = parse_file("big.yaml", data, validators())
    assert result.manifests == ()
    assert "larger than" in str(result.errors[0])


def test_billion_laughs_is_refused_without_expanding() -> None:
    bomb = ["apiVersion: ecs-job-controller/v1", "kind: JobRun", 'a0: &a0 ["lol"]']
    for i in range(1, 30):
        prev = f"*a{i - 1}"
        bomb.append(f"a{i}: &a{i} [{', '.join([prev] * 9)}]")
    errors = messages({"bomb.yaml": "\n".join(bomb) + "\n"})
    assert len(errors) == 1
    assert "alias bomb" in errors[0]


def test_recursive_alias_is_refused() -> None:
    errors = messages({"r.yaml": "a: &x [*x]\n"})
    assert len(errors) == 1
    assert "recursive" in errors[0] or "alias" in errors[0]


def test_small_aliases_are_fine() -> None:
    text = job("aliased").replace("containerDefinitions:", "containerDefinitions: &c") + "# end\n"
    assert messages({"a.yaml": text}) == []


def test_duplicate_mapping_keys_are_errors() -> None:
    text = GOOD.replace("  cluster: batch\n", "  cluster: batch\n  cluster: other\n")
    errors = messages({"k.yaml": text})
    assert errors == ["k.yaml:6: duplicate key 'cluster' in a mapping"]


def test_other_api_versions_and_non_mappings_are_ignored() -> None:
    other = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n---\n- a\n- b\n---\n"
    result = ManifestLoader(validators()).load({"k8s.yaml": other.encode()})
    assert result.errors == ()
    assert len(result.desired) == 0


def test_unknown_kind_with_our_api_version_is_an_error() -> None:
    text = "apiVersion: ecs-job-controller/v1\nkind: Job\nmetadata: {name: x}\nspec: {}\n"
    errors = messages({"u.yaml": text})
    assert errors == ["u.yaml:2: unknown kind 'Job' (known: JobRun, CronJob)"]


def test_task_definition_and_ref_together_or_neither_are_errors() -> None:
    both = job("both", spec_extra="  taskDefinitionRef: both:3\n")
    neither = (
        "apiVersion: ecs-job-controller/v1\nkind: JobRun\nmetadata: {name: n}\nspec: {cluster: c}\n"
    )
    errs = messages({"both.yaml": both, "neither.yaml": neither})
    assert len(errs) == 2
    assert all("exactly one of taskDefinition and taskDefinitionRef" in e for e in errs)


FARGATE_TD = "    networkMode: awsvpc\n    cpu: 256\n    memory: 512\n"
NETWORK = "  networkConfiguration: {awsvpcConfiguration: {subnets: [subnet-1]}}\n"


def test_fargate_without_network_configuration_is_an_error() -> None:
    fargate = td_job("f", td_extra=FARGATE_TD, spec_extra="  launchType: FARGATE\n")
    errs = messages({"f.yaml": fargate})
    assert len(errs) == 1
    assert "FARGATE needs networkConfiguration" in errs[0]
    strategy = "  capacityProviderStrategy: [{capacityProvider: FARGATE_SPOT, weight: 1}]\n"
    spot = td_job("s", td_extra=FARGATE_TD, spec_extra=strategy)
    assert "FARGATE needs" in messages({"s.yaml": spot})[0]


@pytest.mark.parametrize(
    ("schedule", "zone", "expected"),
    [
        ("61 * * * *", "UTC", "/spec/schedule: invalid cron schedule"),
        ("* * *", "UTC", "/spec/schedule: schedule '* * *' must have 5 fields"),
        ("*/30 * * * * *", "UTC", "/spec/schedule: schedule '*/30 * * * * *' must have 5 fields"),
        ("@daily", "Mars/Olympus", "/spec/timeZone: unknown IANA time zone 'Mars/Olympus'"),
    ],
)
def test_unparseable_schedule_or_time_zone(schedule: str, zone: str, expected: str) -> None:
    text = textwrap.dedent(
        f"""\
        apiVersion: ecs-job-controller/v1
        kind: CronJob
        metadata: {{name: c}}
        spec:
          schedule: "{schedule}"
          timeZone: {zone}
          jobTemplate:
            cluster: batch
            taskDefinitionRef: c
        """
    )
    errs = messages({"c.yaml": text})
    assert len(errs) == 1
    assert expected in errs[0]


def test_cron_job_model_has_defaults() -> None:
    text = textwrap.dedent(
        """\
        apiVersion: ecs-job-controller/v1
        kind: CronJob
        metadata: {name: c}
        spec:
          schedule: "@hourly"
          jobTemplate: {cluster: batch, taskDefinitionRef: c}
        """
    )
    result = ManifestLoader(validators()).load({"c.yaml": text.encode()})
    cron = result.desired.cron_jobs["c"]
    assert isinstance(cron, CronJob)
    assert cron.time_zone == "UTC"
    assert cron.concurrency_policy is ConcurrencyPolicy.FORBID
    assert cron.successful_runs_history_limit == 3


def test_success_container_must_exist() -> None:
    errs = messages({"s.yaml": job("s", spec_extra="  successContainers: [nope]\n")})
    assert len(errs) == 1
    assert "/spec/successContainers/0: no container named 'nope'" in errs[0]


def test_unchanged_files_are_not_parsed_again() -> None:
    loader = ManifestLoader(validators())
    files = {f"m{i}.yaml": job(f"m{i}").encode() for i in range(5)}
    first = loader.load(files)
    assert first.cache_hits == 0
    files["m0.yaml"] = job("m0", spec_extra="  count: 2\n").encode()
    second = loader.load(files)
    assert second.cache_hits == 4
    assert second.desired.job_runs["m0"].spec.count == 2


def test_an_invalid_edit_keeps_the_last_known_good_version() -> None:
    loader = ManifestLoader(validators())
    loader.load({"a.yaml": job("a").encode(), "b.yaml": job("b").encode()})
    broken = loader.load({"a.yaml": b"apiVersion: [", "b.yaml": job("b").encode()})
    assert sorted(broken.desired.job_runs) == ["a", "b"]
    assert broken.errors
    invalid = job("a", spec_extra="  count: 0\n").encode()
    schema_broken = loader.load({"a.yaml": invalid, "b.yaml": job("b").encode()})
    assert sorted(schema_broken.desired.job_runs) == ["a", "b"]
    assert schema_broken.desired.job_runs["a"].spec.count == 1
    deleted = loader.load({"b.yaml": job("b").encode()})
    assert sorted(deleted.desired.job_runs) == ["b"]


def test_directory_source_skips_dot_directories_and_refuses_escaping_symlinks(
    tmp_path: Path,
) -> None:
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    (root / ".git" / "x.yaml").write_text("not: ours")
    (root / "jobs").mkdir()
    (root / "jobs" / "a.yaml").write_text(job("a"))
    (root / "notes.txt").write_text("ignored")
    outside = tmp_path / "secret.yaml"
    outside.write_text(job("secret"))
    (root / "link.yaml").symlink_to(outside)
    (root / "inside.yml").symlink_to(root / "jobs" / "a.yaml")
    snapshot = DirectorySource(root).snapshot()
    assert sorted(snapshot.files) == [f"{root}/inside.yml", f"{root}/jobs/a.yaml"]
    assert [e.message for e in snapshot.errors] == ["symlink leaves the source root: skipped"]
    assert snapshot.errors[0].path == f"{root}/link.yaml"


def test_read_paths_accepts_files_and_directories(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.yaml").write_text(job("a"))
    (tmp_path / "b.yml").write_text(job("b"))
    files, errors, warnings = read_paths([str(tmp_path / "d"), str(tmp_path / "b.yml")])
    assert errors == []
    assert warnings == []
    assert len(files) == 2


def test_a_symlink_loop_is_read_once_and_reported_once(tmp_path: Path) -> None:
    root = tmp_path / "manifests"
    (root / "jobs").mkdir(parents=True)
    (root / "a.yaml").write_text(job("a"))
    (root / "jobs" / "b.yaml").write_text(job("b"))
    (root / "loop").symlink_to(".")
    (root / "jobs" / "up").symlink_to("..")
    snapshot = DirectorySource(root).snapshot()
    assert sorted(snapshot.files) == [f"{root}/a.yaml", f"{root}/jobs/b.yaml"]
    assert snapshot.errors == ()
    assert sorted(str(w) for w in snapshot.warnings) == [
        f"{root}/jobs/up: symlink loop, not followed",
        f"{root}/loop: symlink loop, not followed",
    ]
    loaded = ManifestLoader(validators()).load(snapshot.files, snapshot.errors, snapshot.warnings)
    assert loaded.errors == ()
    assert sorted(loaded.desired.job_runs) == ["a", "b"]
    assert not loaded.incomplete
    assert len(loaded.warnings) == 2


def test_a_directory_reached_twice_is_read_once_under_its_real_path(tmp_path: Path) -> None:
    root = tmp_path / "manifests"
    (root / "z-jobs").mkdir(parents=True)
    (root / "z-jobs" / "b.yaml").write_text(job("b"))
    (root / "a-alias").symlink_to("z-jobs")
    snapshot = DirectorySource(root).snapshot()
    assert sorted(snapshot.files) == [f"{root}/z-jobs/b.yaml"]
    assert [str(w) for w in snapshot.warnings] == [
        f"{root}/a-alias: symlink to a directory already read ({root}/z-jobs), not followed"
    ]


def test_a_symlink_into_a_dot_directory_is_followed(tmp_path: Path) -> None:
    """git-sync style: the checkout lives in a hidden directory, a link names it."""
    root = tmp_path / "repo"
    (root / ".worktrees" / "abc123").mkdir(parents=True)
    (root / ".worktrees" / "abc123" / "a.yaml").write_text(job("a"))
    (root / "current").symlink_to(".worktrees/abc123")
    snapshot = DirectorySource(root).snapshot()
    assert sorted(snapshot.files) == [f"{root}/current/a.yaml"]
    assert snapshot.warnings == ()


def td_job(name: str, td_extra: str = "", spec_extra: str = "", containers: str = "") -> str:
    """A JobRun with an inline taskDefinition: `td_extra` lines (4-space indented) join it."""
    return (
        "apiVersion: ecs-job-controller/v1\n"
        "kind: JobRun\n"
        f"metadata: {{name: {name}}}\n"
        "spec:\n"
        "  cluster: batch\n"
        f"{spec_extra}"
        "  taskDefinition:\n"
        f"    family: {name}\n"
        f"{td_extra}"
        "    containerDefinitions:\n"
    ) + (containers or "      - {name: app, image: busybox, memory: 128}\n")


@pytest.mark.parametrize(
    ("field", "written"),
    [
        ("memory", "lots"),
        ("memory", "512 MB"),
        ("memory", "1 GiB"),
        ("memory", "0.3 GB"),  # 307.2 MiB: not a whole number
        ("memory", "-512"),
        ("memory", "'0'"),
        ("cpu", "3 vCPUs"),
        ("cpu", "1 core"),
        ("cpu", "0.3 vCPU"),
        ("cpu", "1.5"),
        ("cpu", "64"),  # below ECS's 128 units
        ("cpu", "'200000'"),  # above its 196608
    ],
)
def test_task_cpu_and_memory_ecs_would_refuse_are_errors_at_their_pointer(
    field: str, written: str
) -> None:
    errs = messages({"t.yaml": td_job("t", td_extra=f"    {field}: {written}\n")})
    assert len(errs) == 1, errs
    assert errs[0].startswith(f"t.yaml:8: /spec/taskDefinition/{field}: "), errs


@pytest.mark.parametrize(
    ("cpu", "memory", "units", "mib"),
    [
        ("256", "512", "256", "512"),
        ("1 vCPU", "2 GB", "1024", "2048"),
        ("1 vcpu", "2GB", "1024", "2048"),
        ("1vCPU", "2 gb", "1024", "2048"),
        (".25 vcpu", ".5 gb", "256", "512"),
        ("0.5 vCPU", "0.5 GB", "512", "512"),
        ("128", "4", "128", "4"),
        ("192 vCPU", "1024", "196608", "1024"),
    ],
)
def test_task_cpu_and_memory_in_ecs_spellings_are_accepted(
    cpu: str, memory: str, units: str, mib: str
) -> None:
    text = td_job("t", td_extra=f"    cpu: {cpu}\n    memory: {memory}\n")
    result = ManifestLoader(validators()).load({"t.yaml": text.encode()})
    assert result.errors == ()
    td = result.desired.job_runs["t"].spec.task_definition
    assert td is not None
    assert (task_cpu_units(td["cpu"]), task_memory_mib(td["memory"])) == (int(units), int(mib))
    params = to_register_input(td)
    assert (params["cpu"], params["memory"]) == (units, mib)


@pytest.mark.parametrize(
    ("on_fargate", "td_extra", "expected"),
    [
        (
            "  launchType: FARGATE\n",
            "    cpu: 256\n    memory: 512\n",
            "9: /spec/taskDefinition: on FARGATE (launchType FARGATE) the task definition needs "
            "networkMode awsvpc",
        ),
        (
            "  launchType: FARGATE\n",
            "    networkMode: bridge\n    cpu: 256\n    memory: 512\n",
            "10: /spec/taskDefinition/networkMode: on FARGATE (launchType FARGATE) networkMode "
            "must be awsvpc, not 'bridge'",
        ),
        (
            "  capacityProviderStrategy: [{capacityProvider: FARGATE, weight: 1}]\n",
            "    networkMode: awsvpc\n",
            "9: /spec/taskDefinition: on FARGATE (capacity provider FARGATE) the task definition "
            "needs task-level cpu and memory",
        ),
        (
            "  launchType: EC2\n",
            "    requiresCompatibilities: [EC2, FARGATE]\n    networkMode: awsvpc\n    cpu: 256\n",
            "9: /spec/taskDefinition: on FARGATE (requiresCompatibilities FARGATE) the task "
            "definition needs task-level memory",
        ),
        (
            "  launchType: FARGATE\n",
            "    networkMode: awsvpc\n    cpu: 300\n    memory: 512\n",
            "11: /spec/taskDefinition/cpu: FARGATE has no task cpu 300 (it takes 256, 512, 1024, "
            "2048, 4096, 8192, 16384 units)",
        ),
        (
            "  launchType: FARGATE\n",
            "    networkMode: awsvpc\n    cpu: 256\n    memory: 4 GB\n",
            "12: /spec/taskDefinition/memory: FARGATE cpu 256 takes memory 512, 1024, 2048 MiB, "
            "not 4096",
        ),
        (
            "  launchType: FARGATE\n",
            "    networkMode: awsvpc\n    cpu: 1 vCPU\n    memory: 1536\n",
            "12: /spec/taskDefinition/memory: FARGATE cpu 1024 takes memory 2048..8192 MiB in "
            "steps of 1024, not 1536",
        ),
        (
            "  launchType: FARGATE\n",
            "    networkMode: awsvpc\n    cpu: 8 vCPU\n    memory: 18 GB\n",
            "12: /spec/taskDefinition/memory: FARGATE cpu 8192 takes memory 16384..61440 MiB in "
            "steps of 4096, not 18432",
        ),
        (
            "  launchType: FARGATE\n",
            "    networkMode: awsvpc\n    cpu: 512\n    memory: 1024\n"
            "    runtimePlatform: {operatingSystemFamily: WINDOWS_SERVER_2022_CORE}\n",
            "11: /spec/taskDefinition/cpu: Windows on FARGATE takes task cpu 1024, 2048, 4096, "
            "not 512",
        ),
    ],
)
def test_fargate_rules(on_fargate: str, td_extra: str, expected: str) -> None:
    text = td_job("f", td_extra=td_extra, spec_extra=on_fargate + NETWORK)
    errs = messages({"f.yaml": text})
    assert errs == [f"f.yaml:{expected}"]


@pytest.mark.parametrize(
    ("cpu", "memory"),
    [
        (256, 512),
        (256, 2048),
        (512, "4 GB"),
        ("1 vCPU", "8GB"),
        (2048, 16384),
        (4096, "30 GB"),
        ("8 vcpu", "60 GB"),
        (16384, "32 GB"),
        (16384, "120 GB"),
    ],
)
def test_every_documented_fargate_task_size_is_accepted(cpu: Any, memory: Any) -> None:
    td_extra = f"    networkMode: awsvpc\n    cpu: {cpu}\n    memory: {memory}\n"
    text = td_job("f", td_extra=td_extra, spec_extra="  launchType: FARGATE\n" + NETWORK)
    assert messages({"f.yaml": text}) == []


def test_awsvpc_needs_a_network_configuration_and_bridge_refuses_one() -> None:
    awsvpc = td_job("a", td_extra="    networkMode: awsvpc\n", spec_extra="  launchType: EC2\n")
    assert messages({"a.yaml": awsvpc}) == [
        "a.yaml:5: /spec: networkMode awsvpc needs networkConfiguration (awsvpc subnets)"
    ]
    bridge = td_job("b", spec_extra="  launchType: EC2\n" + NETWORK)
    assert messages({"b.yaml": bridge}) == [
        "b.yaml:7: /spec/networkConfiguration: networkConfiguration is only for networkMode "
        "awsvpc; the task has bridge (the default)"
    ]


def test_without_task_memory_every_container_needs_memory_or_a_reservation() -> None:
    containers = (
        "      - {name: app, image: busybox}\n"
        "      - {name: side, image: busybox, memoryReservation: 64}\n"
        "      - {name: zero, image: busybox, memory: 0}\n"
    )
    errs = messages({"m.yaml": td_job("m", containers=containers)})
    assert errs == [
        "m.yaml:9: /spec/taskDefinition/containerDefinitions/0: container 'app' needs memory "
        "or memoryReservation (MiB): the task sets no memory",
        "m.yaml:11: /spec/taskDefinition/containerDefinitions/2: container 'zero' needs memory "
        "or memoryReservation (MiB): the task sets no memory",
    ]
    assert (
        messages({"t.yaml": td_job("t", td_extra="    memory: 512\n", containers=containers)}) == []
    )


def test_a_memory_reservation_above_the_hard_limit_is_an_error() -> None:
    containers = "      - {name: app, image: busybox, memory: 128, memoryReservation: 256}\n"
    assert messages({"r.yaml": td_job("r", containers=containers)}) == [
        "r.yaml:9: /spec/taskDefinition/containerDefinitions/0/memoryReservation: "
        "memoryReservation 256 is larger than memory 128"
    ]


@pytest.mark.parametrize(
    ("head", "shown"),
    [
        ("apiVersion: ecs-job-controler/v1\nkind: JobRun\n", "'ecs-job-controler/v1'"),
        ("apiVersion: ecs-job-controller/v2\nkind: JobRun\n", "'ecs-job-controller/v2'"),
        ("apiVersion: ECS-Job-Controller/v1\nkind: JobRun\n", "'ECS-Job-Controller/v1'"),
        ("apiVersion: ecs-job-controller\nkind: CronJob\n", "'ecs-job-controller'"),
        ("apiVersion: ecsjob-controllers/v1\nkind: Thing\n", "'ecsjob-controllers/v1'"),
        ("apiVersion: v1\nkind: JobRun\n", "'v1'"),
        ("kind: JobRun\n", "(missing)"),
        ("apiVersion: 1\nkind: CronJob\n", "1"),
    ],
)
def test_an_api_version_that_is_almost_ours_is_a_warning(head: str, shown: str) -> None:
    text = "# a comment\n" + head + "metadata: {name: x}\nspec: {cluster: c}\n"
    result = ManifestLoader(validators()).load({"a.yaml": text.encode()})
    assert result.errors == ()
    assert len(result.desired) == 0
    line = 2  # the apiVersion's line, or where the document starts
    assert [str(w) for w in result.warnings] == [
        f"a.yaml:{line}: apiVersion {shown} is not ecs-job-controller/v1: document ignored"
    ]
    assert result.without_manifests == frozenset({"a.yaml"})


@pytest.mark.parametrize(
    "text",
    [
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
        "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: x}\n",  # Kubernetes' CronJob
        "apiVersion: apps/v1\nkind: Deployment\n",
        "apiVersion: tekton.dev/v1\nkind: JobRun\n",  # someone else's group
        "kind: ConfigMap\n",
        "- a\n- b\n",
        "just text\n",
    ],
)
def test_documents_of_other_tools_stay_silently_ignored(text: str) -> None:
    result = ManifestLoader(validators()).load({"o.yaml": text.encode(), "g.yaml": GOOD.encode()})
    assert result.errors == ()
    assert result.warnings == ()
    assert list(result.desired.job_runs) == ["good"]
    assert result.without_manifests == frozenset({"o.yaml"})


def test_three_edits_from_our_group_is_not_almost_ours() -> None:
    text = "apiVersion: esc-jbo-controller/v1\nkind: Thing\n"
    assert ManifestLoader(validators()).load({"a.yaml": text.encode()}).warnings == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            job("t", spec_extra="  backofLimit: 2\n"),
            "t.yaml:6: /spec/backofLimit: unknown field(s) 'backofLimit' (not allowed here; "
            "did you mean 'backoffLimit'?)",
        ),
        (
            job("t", spec_extra="  activeDeadline: 2\n  zzz: 1\n"),
            "t.yaml:6: /spec/activeDeadline: unknown field(s) 'activeDeadline', 'zzz' (not "
            "allowed here; did you mean 'activeDeadlineSeconds' for 'activeDeadline'?)",
        ),
        (
            job("t").replace("memory: 128}", "memory: 128, comand: [x]}"),
            "t.yaml:9: /spec/taskDefinition/containerDefinitions/0/comand: unknown field(s) "
            "'comand' (not allowed here; did you mean 'command'?)",
        ),
        (
            job("t", spec_extra="  zzz: 1\n"),
            "t.yaml:6: /spec/zzz: unknown field(s) 'zzz' (not allowed here)",
        ),
        (
            "apiVersion: ecs-job-controller/v1\nkind: CronJob\nmetadata: {name: c}\nspec:\n"
            "  schedule: '@daily'\n  sucessfulRunsHistoryLimit: 1\n"
            "  jobTemplate: {cluster: c, taskDefinitionRef: c, backoffLimitt: 1}\n",
            "t.yaml:6: /spec/sucessfulRunsHistoryLimit: unknown field(s) "
            "'sucessfulRunsHistoryLimit' (not allowed here; did you mean "
            "'successfulRunsHistoryLimit'?)",
        ),
    ],
)
def test_an_unknown_field_gets_a_did_you_mean_from_the_schema(text: str, expected: str) -> None:
    assert expected in messages({"t.yaml": text})


def test_a_did_you_mean_sees_through_the_shared_job_spec() -> None:
    text = (
        "apiVersion: ecs-job-controller/v1\nkind: CronJob\nmetadata: {name: c}\nspec:\n"
        "  schedule: '@daily'\n"
        "  jobTemplate: {cluster: c, taskDefinitionRef: c, backoffLimitt: 1}\n"
    )
    assert messages({"c.yaml": text}) == [
        "c.yaml:6: /spec/jobTemplate/backoffLimitt: unknown field(s) 'backoffLimitt' (not "
        "allowed here; did you mean 'backoffLimit'?)"
    ]


def test_an_odd_kind_or_api_version_in_other_yaml_never_raises() -> None:
    text = "kind: [JobRun]\n---\nkind: JobRun\napiVersion: {a: [" + "1, " * 100 + "2]}\n"
    result = ManifestLoader(validators()).load({"o.yaml": text.encode()})
    assert result.errors == ()
    (warning,) = result.warnings
    assert len(warning.message) < 150


def test_yaml_is_parsed_by_libyaml() -> None:
    """The C parser is what the load's cost was measured against (issue 18)."""
    import yaml

    from controller.model import yamldoc

    assert yaml.__with_libyaml__
    assert yamldoc._Loader is yaml.CSafeLoader


def test_a_shared_anchor_is_counted_expanded_and_a_document_without_one_in_one_walk() -> None:
    from controller.model.yamldoc import MAX_EXPANDED_NODES, parse_yaml_documents

    # 40 aliases of a 3,000-node list expand past the bound though the text is small.
    items = ", ".join("x" for _ in range(3000))
    bomb = f"a: &big [{items}]\n" + "".join(f"k{i}: *big\n" for i in range(40))
    [refused] = list(parse_yaml_documents("bomb.yaml", bomb))
    assert f"more than {MAX_EXPANDED_NODES} nodes" in str(refused)
    # The same list once, without aliases, is an ordinary document.
    [plain] = list(parse_yaml_documents("plain.yaml", f"a: [{items}]\n"))
    assert not isinstance(plain, Exception)
    assert len(plain.value["a"]) == 3000
    [duplicate] = list(parse_yaml_documents("dup.yaml", "a: 1\nb: &x {c: 1}\nd: *x\na: 2\n"))
    assert "duplicate key 'a'" in str(duplicate)
