"""The `controller` command line (DESIGN.md §8): wiring only, no logic.

Each command builds its collaborators from the global options and hands
over to the module that does the work. Exit statuses follow the contract:
`validate` 0/1, `diff` 0/1/2, `reconcile` 0/1/2, usage errors 2.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass

import click

from controller import __version__
from controller.model.loader import ManifestLoader
from controller.model.manifest import Kind
from controller.schemas import load_schema, validators
from controller.sources.directory import read_paths

_OWNER_RE = re.compile(r"^[a-z0-9-]{1,32}$")


@dataclass(frozen=True)
class Settings:
    """The global options, after environment variables and defaults."""

    source: str
    state: str
    owner: str
    region: str | None


def _check_owner(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if not _OWNER_RE.match(value):
        raise click.BadParameter("must match [a-z0-9-]{1,32} (it goes into startedBy 'ejc/<owner>')")
    return value


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="controller")
@click.option(
    "--source",
    envvar="CONTROLLER_SOURCE",
    default="manifests/",
    show_default=True,
    help="Directory (a Git checkout) or s3://bucket/prefix/ holding the manifests.",
)
@click.option(
    "--state",
    envvar="CONTROLLER_STATE",
    default="sqlite:.controller/state.db",
    show_default=True,
    help="Ledger: sqlite:PATH or dynamodb://TABLE.",
)
@click.option(
    "--owner",
    envvar="CONTROLLER_OWNER",
    default="default",
    show_default=True,
    callback=_check_owner,
    help="This controller's identity; it only touches AWS objects tagged with it.",
)
@click.option(
    "--region",
    envvar="CONTROLLER_REGION",
    default=None,
    help="AWS region (default: boto3's configuration, e.g. AWS_REGION).",
)
@click.pass_context
def cli(ctx: click.Context, source: str, state: str, owner: str, region: str | None) -> None:
    """Level-triggered GitOps controller for batch job runs on AWS ECS."""
    ctx.obj = Settings(source=source, state=state, owner=owner, region=region)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.pass_obj
def validate(settings: Settings, paths: tuple[str, ...]) -> None:
    """Check manifests against the schema and semantic rules, without AWS."""
    targets = list(paths) or [settings.source]
    files, read_errors = read_paths(targets)
    result = ManifestLoader(validators()).load(files, read_errors)
    for error in result.errors:
        click.echo(str(error), err=True)
    desired = result.desired
    summary = (
        f"{len(files)} file(s): {len(desired.job_runs)} JobRun(s), "
        f"{len(desired.cron_jobs)} CronJob(s) valid, {len(result.errors)} error(s)"
    )
    click.echo(summary)
    sys.exit(1 if result.errors else 0)


@cli.command()
@click.argument("kind", required=False, type=click.Choice(["jobrun", "cronjob"], case_sensitive=False))
def schema(kind: str | None) -> None:
    """Print the JSON Schema of a kind (both, as one JSON object, without KIND)."""
    kinds = {"jobrun": Kind.JOB_RUN, "cronjob": Kind.CRON_JOB}
    if kind is not None:
        click.echo(json.dumps(load_schema(kinds[kind.lower()]), indent=2, sort_keys=True))
        return
    both = {k.value: load_schema(k) for k in Kind}
    click.echo(json.dumps(both, indent=2, sort_keys=True))


def main() -> None:
    """Entry point of the `controller` script."""
    cli(prog_name="controller")
