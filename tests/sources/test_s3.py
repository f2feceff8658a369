"""The S3 source against moto: listing, ETag-keyed fetching, the same refusals.

Calls are counted by the controller's own AwsSession, so "GetObject only for
changed ETags" is checked on the requests actually made. Most tests run moto
in-process; a test that needs S3 to refuse one object runs on the sandbox's
server, whose fault injection answers that object's GetObject with an AWS
error (our own gateway is never patched).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from controller.aws.s3 import S3Gateway
from controller.aws.session import AwsSession
from controller.clock import FakeClock
from controller.errors import TransientError, UsageError
from controller.model.decode import MAX_FILE_BYTES
from controller.sandbox import Sandbox
from controller.sources.s3 import S3Location, S3Source, is_manifest_key

BUCKET = "manifests"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def sandbox_s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Sandbox, Any]]:
    """The sandbox's server with the bucket, and the environment pointing boto3 at it."""
    with Sandbox(FakeClock()) as sandbox:
        for name, value in sandbox.env().items():
            monkeypatch.setenv(name, value)
        client = sandbox.client("s3", counted=False)
        client.create_bucket(Bucket=BUCKET)
        yield sandbox, client


def put(s3: Any, key: str, body: str | bytes) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode() if isinstance(body, str) else body)


def source() -> tuple[S3Source, AwsSession]:
    session = AwsSession("us-east-1")
    return S3Source(f"s3://{BUCKET}/jobs/", S3Gateway(session)), session


def test_only_objects_whose_etag_changed_are_fetched(s3: Any) -> None:
    put(s3, "jobs/a.yaml", "a: 1\n")
    put(s3, "jobs/b.yml", "b: 1\n")
    src, session = source()
    first = src.snapshot()
    assert set(first.files) == {f"s3://{BUCKET}/jobs/a.yaml", f"s3://{BUCKET}/jobs/b.yml"}
    assert session.calls[("s3", "GetObject")] == 2

    before = session.calls.copy()
    again = src.snapshot()
    assert again.revision == first.revision
    assert session.calls - before == {("s3", "ListObjectsV2"): 1}  # nothing fetched

    put(s3, "jobs/b.yml", "b: 2\n")  # changed
    put(s3, "jobs/c.yaml", "c: 1\n")  # added
    s3.delete_object(Bucket=BUCKET, Key="jobs/a.yaml")  # deleted
    before = session.calls.copy()
    changed = src.snapshot()
    assert session.calls - before == {("s3", "ListObjectsV2"): 1, ("s3", "GetObject"): 2}
    assert changed.revision != first.revision
    assert changed.files == {
        f"s3://{BUCKET}/jobs/b.yml": b"b: 2\n",
        f"s3://{BUCKET}/jobs/c.yaml": b"c: 1\n",
    }


def test_a_poll_lists_only_and_its_listing_serves_the_next_snapshot(s3: Any) -> None:
    put(s3, "jobs/a.yaml", "a: 1\n")
    src, session = source()
    src.snapshot()
    before = session.calls.copy()
    assert src.poll() is False
    assert session.calls - before == {("s3", "ListObjectsV2"): 1}

    put(s3, "jobs/a.yaml", "a: 2\n")
    before = session.calls.copy()
    assert src.poll() is True
    assert src.poll() is False  # one change is reported once, even before the pass
    assert src.snapshot().files[f"s3://{BUCKET}/jobs/a.yaml"] == b"a: 2\n"
    # Two polls' listings (the first reused by the snapshot), and the one fetch.
    assert session.calls - before == {("s3", "ListObjectsV2"): 2, ("s3", "GetObject"): 1}
    assert src.poll() is False


def test_listing_paginates_past_1000_keys(s3: Any) -> None:
    # Straight into moto's backend: 1,005 PutObject requests would take seconds.
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["global"]
    for i in range(1005):
        backend.put_object(BUCKET, f"jobs/j{i:04d}.yaml", b"x: 1\n")
    session = AwsSession("us-east-1")
    listed = S3Gateway(session).list_objects(BUCKET, "jobs/")
    assert len(listed) == 1005
    assert session.calls[("s3", "ListObjectsV2")] == 2


def test_large_and_foreign_objects_are_refused_without_fetching(s3: Any) -> None:
    put(s3, "jobs/huge.yaml", b"#" * (MAX_FILE_BYTES + 1))
    put(s3, "jobs/notes.txt", "not a manifest")
    put(s3, "jobs/.hidden.yaml", "a: 1\n")
    put(s3, "jobs/.git/config.yaml", "a: 1\n")
    put(s3, "other/a.yaml", "a: 1\n")  # outside the prefix
    src, session = source()
    snap = src.snapshot()
    assert snap.files == {}
    [error] = snap.errors
    assert error.path == f"s3://{BUCKET}/jobs/huge.yaml"
    assert "larger than" in error.message
    assert session.calls[("s3", "GetObject")] == 0


def test_an_object_changed_between_list_and_get_is_a_transient_error(s3: Any) -> None:
    put(s3, "jobs/a.yaml", "a: 1\n")
    src, _ = source()
    assert src.poll() is True
    put(s3, "jobs/a.yaml", "a: 2\n")  # after the poll's listing
    with pytest.raises(TransientError, match="changed while being read"):
        src.snapshot()
    assert src.snapshot().files[f"s3://{BUCKET}/jobs/a.yaml"] == b"a: 2\n"


def test_urls_and_keys() -> None:
    assert S3Location.parse("s3://b/p/q/") == S3Location("b", "p/q/")
    assert S3Location.parse("s3://b") == S3Location("b", "")
    with pytest.raises(UsageError):
        S3Location.parse("s3:///p")
    assert is_manifest_key("p/a.yaml", "p/")
    assert not is_manifest_key("p/.a.yaml", "p/")
    assert not is_manifest_key("p/x/.git/a.yml", "p/")
    assert not is_manifest_key("p/a.json", "p/")


def test_an_object_that_cannot_be_read_is_reported_alone(sandbox_s3: tuple[Sandbox, Any]) -> None:
    sandbox, s3 = sandbox_s3
    put(s3, "jobs/a.yaml", "a: 1\n")
    put(s3, "jobs/b.yaml", "b: 1\n")
    sandbox.inject_fault(
        "s3", "GetObject", "AccessDenied", status=403, path=f"/{BUCKET}/jobs/b.yaml"
    )
    src, _ = source()
    snap = src.snapshot()
    assert list(snap.files) == [f"s3://{BUCKET}/jobs/a.yaml"]
    [error] = snap.errors
    assert error.path == f"s3://{BUCKET}/jobs/b.yaml"
    assert "cannot read: GetObject: AccessDenied" in error.message
    assert sandbox.calls[("s3", "GetObject")] == 2  # one each: a refusal is not retried
