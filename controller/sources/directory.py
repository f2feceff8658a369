"""A directory of manifests, usually a Git checkout (DESIGN.md §2 source).

Reads every `*.yaml` / `*.yml` below the root, skipping dot-directories such
as `.git/`. Refuses, with a `PATH:LINE:` error and without reading them,
files over 1 MiB and symlinks that resolve outside the root (a checkout must
not be able to make the controller read `/etc/...`). The revision is the Git
commit when the root is in a work tree, else a digest of the contents.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from controller.errors import TransientError, UsageError
from controller.model.loader import MAX_FILE_BYTES
from controller.model.problems import ManifestError
from controller.sources.snapshot import Snapshot

MANIFEST_SUFFIXES = (".yaml", ".yml")


def _is_within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def read_tree(root: Path, display_root: str) -> tuple[dict[str, bytes], list[ManifestError]]:
    """Read manifest files below `root`; paths are shown under `display_root`."""
    real_root = root.resolve()
    files: dict[str, bytes] = {}
    errors: list[ManifestError] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        here = Path(dirpath)
        kept = []
        for name in sorted(dirnames):
            if name.startswith("."):
                continue
            target = (here / name).resolve()
            if not _is_within(target, real_root):
                shown = str(Path(display_root) / (here / name).relative_to(root))
                errors.append(ManifestError(shown, 1, "symlink leaves the source root: skipped"))
                continue
            kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            if not name.endswith(MANIFEST_SUFFIXES) or name.startswith("."):
                continue
            path = here / name
            shown = str(Path(display_root) / path.relative_to(root))
            problem = _refusal(path, real_root)
            if problem is not None:
                errors.append(ManifestError(shown, 1, problem))
                continue
            try:
                files[shown] = path.read_bytes()
            except OSError as exc:
                errors.append(ManifestError(shown, 1, f"cannot read: {exc.strerror}"))
    return files, errors


def _refusal(path: Path, real_root: Path) -> str | None:
    """Why a file must not be read, or None."""
    try:
        target = path.resolve(strict=True)
        size = target.stat().st_size
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    if not _is_within(target, real_root):
        return "symlink leaves the source root: skipped"
    if size > MAX_FILE_BYTES:
        return f"file is larger than {MAX_FILE_BYTES} bytes ({size}): skipped"
    return None


def git_rev_parse(root: Path, *args: str) -> str | None:
    """`git -C root rev-parse ARGS`, or None outside a Git work tree (or without git)."""
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "rev-parse", *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = done.stdout.strip()
    return text if done.returncode == 0 and text else None


def git_revision(root: Path) -> str | None:
    """The checked-out commit when `root` is inside a Git work tree."""
    return git_rev_parse(root, "HEAD")


class DirectorySource:
    """Manifests from a local directory tree (a Git checkout)."""

    def __init__(self, root: str | Path) -> None:
        self.display_root = str(root)
        self.root = Path(root)

    def describe(self) -> str:
        """The directory path as given."""
        return self.display_root

    def snapshot(self) -> Snapshot:
        """Read the tree; raise TransientError if the root itself is unreadable.

        Transient because a checkout being swapped comes back: the loop falls
        back on its last good snapshot, while a command that cannot read the
        source at start reports a setup error (exit 2).
        """
        problem = unreadable_directory(self.root)
        if problem is not None:
            raise TransientError(f"source directory {self.display_root!r} {problem}")
        files, errors = read_tree(self.root, self.display_root)
        revision = git_revision(self.root) or content_revision(files)
        return Snapshot(revision=revision, files=files, errors=tuple(errors))


def unreadable_directory(path: Path) -> str | None:
    """Why `path` cannot be read as a directory of manifests, or None when it can."""
    try:
        with os.scandir(path):
            return None  # os.walk would silently skip a directory it cannot list
    except FileNotFoundError:
        return "does not exist"
    except NotADirectoryError:
        return "is not a directory"
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"


def content_revision(files: dict[str, bytes]) -> str:
    """A digest of the paths and contents: the revision of a tree outside Git."""
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.encode())
        digest.update(hashlib.sha256(files[path]).digest())
    return "sha256:" + digest.hexdigest()[:16]


def read_paths(paths: list[str]) -> tuple[dict[str, bytes], list[ManifestError]]:
    """Read manifests from files and directories named on a command line.

    A path that does not exist, or a directory that cannot be listed, is a
    UsageError (the command line is wrong, exit 2), not an invalid manifest.
    """
    files: dict[str, bytes] = {}
    errors: list[ManifestError] = []
    for given in paths:
        path = Path(given)
        if not path.exists() and not path.is_symlink():
            raise UsageError(f"{given} does not exist")
        if path.is_dir():
            problem = unreadable_directory(path)
            if problem is not None:
                raise UsageError(f"{given} {problem}")
            more, problems = read_tree(path, given)
            files.update(more)
            errors.extend(problems)
            continue
        problem = _refusal(path, path.resolve().parent)
        if problem is not None:
            errors.append(ManifestError(given, 1, problem))
            continue
        files[given] = path.read_bytes()
    return files, errors
