"""How bad input is reported: `PATH:LINE: message` (DESIGN.md §3 Bad input).

A ManifestError is a value, not an exception: the loader collects them and
carries on, so one broken file never hides the others.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class ManifestError:
    """One problem in the source, located to a file and line (1-based)."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"
