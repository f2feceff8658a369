"""Manifests under an S3 prefix (`s3://bucket/prefix/`), polled.

For teams whose CI publishes manifests to a bucket instead of deploying a Git
checkout next to the controller. The same rules as the directory source
hold: only `*.yaml` / `*.yml` keys count, keys with a dot-segment (`.git/`,
`.hidden.yaml`) are skipped, and an object over 1 MiB is refused from its
listed size without being fetched.

S3 has no change notification we can rely on without extra infrastructure,
so the loop polls (`--s3-poll-seconds`). A poll is one ListObjectsV2 per
1,000 keys; a body is fetched only when its ETag differs from the one
already held, so a quiet bucket costs only the listing. The revision is a
digest of the sorted (key, ETag) pairs: it changes exactly when some
manifest object was added, changed or removed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from controller.aws.s3 import ObjectSummary, S3Gateway
from controller.errors import TerminalError, UsageError
from controller.model.decode import MAX_FILE_BYTES
from controller.model.problems import ManifestError
from controller.sources.directory import MANIFEST_SUFFIXES
from controller.sources.snapshot import Snapshot


@dataclass(frozen=True)
class S3Location:
    """A bucket and a key prefix ('' for the whole bucket)."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> S3Location:
        """Split `s3://bucket/prefix/`; a URL without a bucket is a UsageError."""
        if not url.startswith("s3://"):
            raise UsageError(f"not an S3 URL: {url!r}")
        bucket, _, prefix = url[len("s3://") :].partition("/")
        if not bucket:
            raise UsageError(f"S3 source {url!r} names no bucket: expected s3://BUCKET/PREFIX/")
        return cls(bucket, prefix)

    def url(self, key: str = "") -> str:
        """The s3:// URL of a key in this bucket (or of the prefix)."""
        return f"s3://{self.bucket}/{key or self.prefix}"


def is_manifest_key(key: str, prefix: str) -> bool:
    """True for `*.yaml` / `*.yml` keys without a dot-segment below the prefix."""
    if not key.endswith(MANIFEST_SUFFIXES):
        return False
    relative = key[len(prefix) :] if key.startswith(prefix) else key
    return not any(part.startswith(".") for part in relative.split("/") if part)


def listing_revision(objects: list[ObjectSummary]) -> str:
    """A digest of the sorted (key, ETag) pairs: the revision of a prefix."""
    digest = hashlib.sha256()
    for item in sorted(objects, key=lambda o: o.key):
        digest.update(item.key.encode())
        digest.update(b"\0")
        digest.update(item.etag.encode())
        digest.update(b"\n")
    return "sha256:" + digest.hexdigest()[:16]


class S3Source:
    """Manifests from one S3 prefix; bodies cached by ETag between snapshots."""

    def __init__(self, url: str, gateway: S3Gateway) -> None:
        self.location = S3Location.parse(url)
        self._gateway = gateway
        self._bodies: dict[str, tuple[str, bytes]] = {}
        #: the revision of the last listing, a poll's or a snapshot's
        self._revision: str | None = None
        #: a listing made by `poll` that the next snapshot may use instead of
        #: listing again (a change seen by a poll costs one listing, not two)
        self._fresh_listing: list[ObjectSummary] | None = None

    def describe(self) -> str:
        """The s3:// URL as given."""
        return self.location.url()

    def _list(self) -> list[ObjectSummary]:
        location = self.location
        listed = self._gateway.list_objects(location.bucket, location.prefix)
        return [o for o in listed if is_manifest_key(o.key, location.prefix)]

    def poll(self) -> bool:
        """List the prefix; True when its revision differs from the last one listed.

        Compared with the last *listing* (a poll's or a snapshot's), so one
        change is reported once, not on every poll until the pass runs.
        """
        listing = self._list()
        revision = listing_revision(listing)
        if revision == self._revision:
            return False
        self._revision = revision
        self._fresh_listing = listing
        return True

    def snapshot(self) -> Snapshot:
        """List the prefix and fetch only the objects whose ETag changed."""
        listing, self._fresh_listing = self._fresh_listing, None
        if listing is None:
            listing = self._list()
        files: dict[str, bytes] = {}
        errors: list[ManifestError] = []
        bodies: dict[str, tuple[str, bytes]] = {}
        for item in sorted(listing, key=lambda o: o.key):
            shown = self.location.url(item.key)
            if item.size > MAX_FILE_BYTES:
                too_large = f"file is larger than {MAX_FILE_BYTES} bytes ({item.size}): skipped"
                errors.append(ManifestError(shown, 1, too_large))
                continue
            held = self._bodies.get(item.key)
            if held is not None and held[0] == item.etag:
                body = held[1]
            else:
                try:
                    body = self._gateway.get_object(self.location.bucket, item.key, item.etag)
                except TerminalError as exc:
                    # As an unreadable file in a checkout: this object is
                    # reported (its last known good kept), the others load.
                    errors.append(ManifestError(shown, 1, f"cannot read: {exc}"))
                    continue
            bodies[item.key] = (item.etag, body)
            files[shown] = body
        # Replace rather than update: bodies of deleted keys are forgotten,
        # and a failed fetch above leaves the previous cache intact.
        self._bodies = bodies
        self._revision = listing_revision(listing)
        return Snapshot(revision=self._revision, files=files, errors=tuple(errors))
