"""How bad input is reported: `PATH:LINE: message` (DESIGN.md §3 Bad input).

A ManifestError is a value, not an exception: the loader collects them and
carries on, so one broken file never hides the others. A ManifestWarning is
a problem the user should fix that excludes nothing (a symlink loop in the
source, an apiVersion that is almost ours): it is reported, and never makes
a manifest invalid nor an exit status non-zero.
"""

from __future__ import annotations

from dataclasses import dataclass


def _located(path: str, line: int, message: str) -> str:
    # Line 0 is about the path as a whole (a directory, a symlink): no line to show.
    return f"{path}:{line}: {message}" if line else f"{path}: {message}"


@dataclass(frozen=True, order=True)
class ManifestError:
    """One problem in the source, located to a file and line (1-based)."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return _located(self.path, self.line, self.message)


@dataclass(frozen=True, order=True)
class ManifestWarning:
    """A problem in the source that excludes nothing; line 0 when about a path, not a line."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return _located(self.path, self.line, self.message)
