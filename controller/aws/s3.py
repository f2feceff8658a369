"""The S3 gateway: the two calls an `s3://bucket/prefix/` source needs.

Only `controller.aws` imports boto3, so the S3 source (`controller.sources.s3`)
reads its bucket through this narrow door: a paginated ListObjectsV2 that
returns (key, ETag, size) and a GetObject pinned to the listed ETag, with
AWS errors turned into ours (TerminalError / TransientError).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from controller.aws.errors import AwsTransientError, call, classify, classify_botocore, error_code
from controller.aws.session import AwsSession

#: GetObject answers for an object that changed or vanished after it was listed.
_CHANGED_SINCE_LISTING = frozenset({"PreconditionFailed", "NoSuchKey", "412", "404"})

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True)
class ObjectSummary:
    """One listed object: enough to decide whether its body must be fetched again."""

    key: str
    etag: str
    size: int


class S3Gateway:
    """Lists and reads objects, counted by the session like every other AWS call."""

    def __init__(self, session: AwsSession) -> None:
        self._session = session

    @property
    def _s3(self) -> S3Client:
        return self._session.s3()

    def list_objects(self, bucket: str, prefix: str) -> list[ObjectSummary]:
        """Every object under `prefix` (all ListObjectsV2 pages, 1,000 keys each)."""
        paginator = self._s3.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=bucket, Prefix=prefix)
        listed: list[ObjectSummary] = []
        for page in call("ListObjectsV2", lambda: list(pages)):
            listed.extend(
                ObjectSummary(key=str(item["Key"]), etag=str(item["ETag"]), size=int(item["Size"]))
                for item in page.get("Contents", [])
            )
        return listed

    def get_object(self, bucket: str, key: str, etag: str) -> bytes:
        """The body of `key` as listed with `etag`.

        `IfMatch` makes S3 refuse (412) a body newer than the listing, so a
        snapshot never mixes two versions of one object; that, and a key
        deleted since the listing, is transient: the next pass lists again.
        """
        try:
            answer = self._s3.get_object(Bucket=bucket, Key=key, IfMatch=etag)
            body: bytes = answer["Body"].read()
        except ClientError as exc:
            if error_code(exc) in _CHANGED_SINCE_LISTING:
                raise AwsTransientError(
                    error_code(exc), f"s3://{bucket}/{key} changed while being read", "GetObject"
                ) from exc
            raise classify(exc, "GetObject") from exc
        except BotoCoreError as exc:
            raise classify_botocore(exc, "GetObject") from exc
        return body
