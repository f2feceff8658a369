"""A directory of manifests, usually a Git checkout (DESIGN.md §2 source).

Reads every `*.yaml` / `*.yml` below the root, skipping dot-directories such
as `.git/`, and every real directory once (a symlink loop is a warning, not
followed). Refuses, with a `PATH:LINE:` error and without reading them,
files over 1 MiB and symlinks that resolve outside the root (a checkout must
not be able to make the controller read `/etc/...`). The revision is the Git
commit when the root is in a work tree, else a digest of the contents.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections import deque
from pathlib import Path

from controller.errors import TransientError, UsageError
from controller.model.decode import MAX_FILE_BYTES
from controller.model.problems import ManifestError, ManifestWarning
from controller.sources.snapshot import Snapshot

MANIFEST_SUFFIXES = (".yaml", ".yml")


def _is_within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _identity(path: Path | os.DirEntry[str]) -> tuple[int, int] | None:
    """A directory's (device, inode), the same for every path that reaches it; None if gone."""
    try:
        info = path.stat()
    except OSError:
        return None  # vanished or unreadable since it was listed: scanning it reports why
    return (info.st_dev, info.st_ino)


def read_tree(
    root: Path, display_root: str
) -> tuple[dict[str, bytes], list[ManifestError], list[ManifestWarning]]:
    """Read manifest files below `root`; paths are shown under `display_root`.

    Each real directory is read once, by (device, inode), whatever symlinks
    lead to it: real subdirectories first, then symlinked ones, so a link to
    a directory the walk reaches anyway (or to one of its own ancestors, a
    loop) is reported as a warning and not followed. Without that, a loop
    (`ln -s . loop`) was descended until the OS refused (about 40 levels,
    exponentially many paths with two loops) and every manifest became a
    duplicate of itself. A link into a dot-directory (git-sync's
    `current -> .worktrees/<rev>`) is followed: nothing else reads it.
    """
    real_root = root.resolve()
    files: dict[str, bytes] = {}
    errors: list[ManifestError] = []
    warnings: list[ManifestWarning] = []
    visited = {ident for ident in [_identity(root)] if ident is not None}
    # Directories as (path, shown prefix): the shown names are built by string
    # joins, not pathlib arithmetic, which cost more than reading the files.
    base = str(Path(display_root))
    top = "" if base == "." else base + os.sep
    real_dirs = [(root, top)]  # a stack: depth-first, each directory's entries in name order
    linked_dirs: deque[tuple[Path, str]] = deque()  # followed once no real directory is left

    def scan(directory: Path, prefix: str) -> None:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            # Never a silent gap: the loader then knows the read is incomplete.
            shown = prefix.rstrip(os.sep) or base
            errors.append(ManifestError(shown, 1, f"cannot read: {exc.strerror}"))
            return
        subdirs: list[tuple[Path, str]] = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            shown = prefix + entry.name
            if entry.is_dir(follow_symlinks=True):
                below = (Path(entry.path), shown + os.sep)
                if entry.is_symlink():
                    linked_dirs.append(below)
                elif (ident := _identity(entry)) is None or ident not in visited:
                    if ident is not None:
                        visited.add(ident)
                    subdirs.append(below)
                continue
            if not entry.name.endswith(MANIFEST_SUFFIXES):
                continue
            data = _read_entry(entry, real_root)
            if isinstance(data, str):
                errors.append(ManifestError(shown, 1, data))
            else:
                files[shown] = data
        real_dirs.extend(reversed(subdirs))

    while real_dirs or linked_dirs:
        if real_dirs:
            scan(*real_dirs.pop())
            continue
        link, prefix = linked_dirs.popleft()
        shown = prefix.rstrip(os.sep)
        target = link.resolve()
        ident = _identity(link)
        if not _is_within(target, real_root):
            errors.append(ManifestError(shown, 1, "symlink leaves the source root: skipped"))
        elif ident is None or ident not in visited:
            if ident is not None:
                visited.add(ident)
            real_dirs.append((link, prefix))
        elif _is_within(link.parent.resolve(), target):
            warnings.append(ManifestWarning(shown, 0, "symlink loop, not followed"))
        else:
            place = str(Path(display_root) / target.relative_to(real_root))
            message = f"symlink to a directory already read ({place}), not followed"
            warnings.append(ManifestWarning(shown, 0, message))
    return files, errors, warnings


def _read_entry(entry: os.DirEntry[str], real_root: Path) -> bytes | str:
    """A listed file's bytes, or why it must not be read.

    Only a symlink needs resolving: a plain file in a directory the walk
    reached from the root (a linked directory is checked before it is
    followed) is inside the root by construction, and resolving every file
    was most of the cost of a pass over an unchanged checkout.
    """
    if entry.is_symlink():
        problem = _refusal(Path(entry.path), real_root)
        if problem is not None:
            return problem
    if not entry.is_file(follow_symlinks=True):
        return "not a regular file: skipped"  # a FIFO would block the pass forever
    return _read_limited(entry.path)


def _read_limited(path: str) -> bytes | str:
    """The file's bytes, or why not: unreadable, or larger than MAX_FILE_BYTES."""
    try:
        # A str path, not pathlib: building Path objects cost more than the reads.
        with open(path, "rb") as handle:  # noqa: PTH123
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_FILE_BYTES:
                return f"file is larger than {MAX_FILE_BYTES} bytes ({size}): skipped"
            return handle.read()
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"


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
        files, errors, warnings = read_tree(self.root, self.display_root)
        revision = git_revision(self.root) or content_revision(files)
        return Snapshot(
            revision=revision, files=files, errors=tuple(errors), warnings=tuple(warnings)
        )


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


def read_paths(
    paths: list[str],
) -> tuple[dict[str, bytes], list[ManifestError], list[ManifestWarning]]:
    """Read manifests from files and directories named on a command line.

    A path that does not exist, or a directory that cannot be listed, is a
    UsageError (the command line is wrong, exit 2), not an invalid manifest.
    """
    files: dict[str, bytes] = {}
    errors: list[ManifestError] = []
    warnings: list[ManifestWarning] = []
    for given in paths:
        path = Path(given)
        if not path.exists() and not path.is_symlink():
            raise UsageError(f"{given} does not exist")
        if path.is_dir():
            problem = unreadable_directory(path)
            if problem is not None:
                raise UsageError(f"{given} {problem}")
            more, problems, notes = read_tree(path, given)
            files.update(more)
            errors.extend(problems)
            warnings.extend(notes)
            continue
        problem = _refusal(path, path.resolve().parent)
        if problem is not None:
            errors.append(ManifestError(given, 1, problem))
            continue
        files[given] = path.read_bytes()
    return files, errors, warnings
