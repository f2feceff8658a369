"""What a source hands to the loader: the files of one revision.

A source (a directory, an S3 prefix) only reads bytes; judging them is the
loader's job. Problems that stop a file from being read at all (too large,
a symlink escaping the root) are reported here in the loader's format.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from controller.model.problems import ManifestError


@dataclass(frozen=True)
class Snapshot:
    """The manifest files of one source revision."""

    revision: str
    files: Mapping[str, bytes] = field(default_factory=dict)
    errors: tuple[ManifestError, ...] = ()


class Source(Protocol):
    """Where manifests come from."""

    def snapshot(self) -> Snapshot:
        """Read the current revision (raises TransientError when unreadable)."""
        ...

    def describe(self) -> str:
        """A short human name for logs and status (the path or URL)."""
        ...
