"""What changed between two task definitions, path by path, with both values.

`controller diff` says why it would register a revision; a path alone
(`containerDefinitions[app].image`) leaves the reader to look up what it was
and what it becomes, so each change carries the old and the new value, like
ecspresso's diff. Both sides are compared in their canonical form
(`controller.model.taskdef`), so a default ECS filled in is no change, and
entries of name-keyed lists (containers, environment, secrets, tags, ...) are
addressed by name: `environment[LOG_LEVEL].value`, never by position.

A diff lands in CI logs and terminals, so values that look secret are never
shown (`FieldChange.hidden`): an `environment` entry whose name contains
PASSWORD, SECRET, TOKEN or KEY (any case), the key of a free-form map
(`dockerLabels`, log `options`, ...) that does, and everything under
`secrets` and `secretOptions`. A change whose value is a whole structure (a
container added) shows the structure with those values replaced by
`HIDDEN_VALUE`.

Pure: stdlib only, no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from controller.model.taskdef import FREE_MAPS, canonical_task_definition

#: Names that look like they hold a secret (DESIGN.md §8, issue 15).
SECRET_NAME: Final = re.compile(r"PASSWORD|SECRET|TOKEN|KEY", re.IGNORECASE)

#: Members whose whole content is secret references: never shown.
_SECRET_MEMBERS: Final = frozenset({"secrets", "secretOptions"})

#: What stands for a secret value inside a structure that is shown.
HIDDEN_VALUE: Final = "(hidden)"

#: Members that name a list entry (containers, variables, tags): never secret.
_NAMING_MEMBERS: Final = ("name", "key")

_MISSING: Final = object()


class ChangeKind(StrEnum):
    """Whether a path appeared, disappeared or holds another value."""

    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


@dataclass(frozen=True)
class FieldChange:
    """One path where two task definitions differ, with its values unless hidden.

    `old` is None when the path is new, `new` None when it is gone (the
    canonical form holds no nulls, so None always means absent). A hidden
    change has both None.
    """

    path: str
    kind: ChangeKind
    old: Any = None
    new: Any = None
    hidden: bool = False

    def line(self) -> str:
        """`path: old -> new`, or `path: (changed, hidden)` for a secret."""
        if self.hidden:
            return f"{self.path}: ({self.kind}, hidden)"
        return f"{self.path}: {show_value(self.old)} -> {show_value(self.new)}"

    def as_json(self) -> dict[str, Any]:
        """`{"path", "change", "old", "new"}`, or `{"path", "change", "hidden": true}`."""
        if self.hidden:
            return {"path": self.path, "change": self.kind.value, "hidden": True}
        return {"path": self.path, "change": self.kind.value, "old": self.old, "new": self.new}


def field_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[FieldChange, ...]:
    """Every path where the canonical forms differ, sorted, with values (secrets hidden)."""
    out: list[FieldChange] = []
    _collect(canonical_task_definition(old), canonical_task_definition(new), (), out)
    return tuple(out)


def changed_paths(old: Mapping[str, Any], new: Mapping[str, Any], limit: int = 10) -> list[str]:
    """List the paths where two task definitions' canonical forms differ, containers by name."""
    return summarise_paths(field_changes(old, new), limit)


def summarise_paths(changes: tuple[FieldChange, ...], limit: int = 10) -> list[str]:
    """The changes' paths, at most `limit` of them (the last one says how many more)."""
    paths = [c.path for c in changes]
    if len(paths) > limit:
        # A reason is one line: say how much is left out.
        hidden = len(paths) - (limit - 1)
        return [*paths[: limit - 1], f"... and {hidden} more"]
    return paths


def show_value(value: Any) -> str:
    """A value for a human: a plain string bare, anything else as JSON; `(none)` when absent."""
    if value is None:
        return "(none)"
    if isinstance(value, str) and _plain(value):
        return value
    return json.dumps(value, ensure_ascii=False)


def _plain(text: str) -> bool:
    """A string that reads unambiguously without quotes on a `old -> new` line."""
    return (
        bool(text)
        and text == text.strip()
        and text.isprintable()
        and " -> " not in text
        and text != "(none)"
        and not text.startswith('"')
    )


#: One step of a path: ("member", key) into an object, ("entry", name) into a named list.
_Step = tuple[str, str]


def _render(steps: tuple[_Step, ...]) -> str:
    text = ""
    for kind, name in steps:
        if kind == "entry":
            text += f"[{name}]"
        else:
            text += f".{name}" if text else name
    return text or "(root)"


def _is_secret(steps: tuple[_Step, ...]) -> bool:
    """Whether the value at this path may be a secret (see the module docstring)."""
    parent: str | None = None
    for kind, name in steps:
        if kind == "member" and name in _SECRET_MEMBERS:
            return True
        if kind == "entry" and parent == "environment" and SECRET_NAME.search(name):
            return True
        if kind == "member" and parent in FREE_MAPS and SECRET_NAME.search(name):
            return True
        parent = name if kind == "member" else None
    return False


def _redact(value: Any, steps: tuple[_Step, ...]) -> Any:
    """The value at `steps` with every secret inside it replaced by HIDDEN_VALUE.

    Names stay: a hidden environment entry still says which variable it is.
    """
    if isinstance(value, Mapping):
        secret = _is_secret(steps)
        return {
            k: v if secret and k in _NAMING_MEMBERS else _redact(v, (*steps, ("member", str(k))))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_redact(entry, (*steps, *_entry_step(entry))) for entry in value]
    return HIDDEN_VALUE if _is_secret(steps) else value


def _entry_step(entry: Any) -> tuple[_Step, ...]:
    """The step that names a list entry (its `name` or `key`), none for an unnamed one."""
    if isinstance(entry, Mapping):
        for member in _NAMING_MEMBERS:
            if isinstance(entry.get(member), str):
                return (("entry", entry[member]),)
    return ()


def _collect(old: Any, new: Any, steps: tuple[_Step, ...], out: list[FieldChange]) -> None:
    if old == new:
        return
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in sorted(set(old) | set(new)):
            _collect(
                old.get(key, _MISSING), new.get(key, _MISSING), (*steps, ("member", str(key))), out
            )
        return
    if isinstance(old, list) and isinstance(new, list):
        ident = _identity_field(old, new)
        if ident is not None:
            old_by = {e[ident]: e for e in old}
            new_by = {e[ident]: e for e in new}
            for name in sorted(set(old_by) | set(new_by)):
                child = (*steps, ("entry", str(name)))
                _collect(old_by.get(name, _MISSING), new_by.get(name, _MISSING), child, out)
            return
    if old is _MISSING:
        kind = ChangeKind.ADDED
    elif new is _MISSING:
        kind = ChangeKind.REMOVED
    else:
        kind = ChangeKind.CHANGED
    path = _render(steps)
    if _is_secret(steps):
        out.append(FieldChange(path, kind, hidden=True))
        return
    out.append(
        FieldChange(
            path,
            kind,
            old=None if old is _MISSING else _redact(old, steps),
            new=None if new is _MISSING else _redact(new, steps),
        )
    )


def _identity_field(old: list[Any], new: list[Any]) -> str | None:
    """Find the member (name, key) that names each entry uniquely on both sides."""
    for field in _NAMING_MEMBERS:
        for side in (old, new):
            names = [e.get(field) if isinstance(e, Mapping) else None for e in side]
            if any(not isinstance(n, str) for n in names) or len(set(names)) != len(names):
                break
        else:
            return field
    return None
