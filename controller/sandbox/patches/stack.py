"""The undo log every patch is installed on.

A patch replaces one attribute of a moto object (a backend instance's
method, a response class's handler). `PatchStack` remembers what each
replacement hid, so `uninstall_all()` puts every original back, newest
first, and sandboxes can follow one another in one process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class PatchStack:
    """Attribute replacements on moto objects, undone in reverse order."""

    def __init__(self) -> None:
        # (target, name, had its own attribute, original value)
        self._undo: list[tuple[Any, str, bool, Any]] = []

    def replace(self, target: Any, name: str, replacement: Any) -> None:
        """Set `target.name` to `replacement` until `uninstall_all()`."""
        own = vars(target)
        self._undo.append((target, name, name in own, own.get(name)))
        setattr(target, name, replacement)

    def wrap(self, target: Any, name: str, wrapper: Callable[[Any], Any]) -> None:
        """Replace `target.name` by `wrapper(current value)`; patches stack up."""
        self.replace(target, name, wrapper(getattr(target, name)))

    def uninstall_all(self) -> None:
        """Put every original back, newest patch first."""
        while self._undo:
            target, name, had_own, original = self._undo.pop()
            if had_own:
                setattr(target, name, original)
            elif name in vars(target):
                # An inherited attribute (or none): drop our shadowing copy.
                delattr(target, name)

    def __len__(self) -> int:
        return len(self._undo)
