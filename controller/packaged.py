"""Data the wheel carries inside the package, found the same way installed or in a checkout.

pyproject.toml's force-include copies the repository's top-level `schema/`
to `controller/schema/` and `manifests/examples/` to
`controller/manifests/examples/`, so an installed controller has its JSON
Schemas and `controller demo` its examples wherever it runs. Installed, they
are package data, read through importlib.resources (which also reads a
zipped wheel); in a source checkout they are the repository's own
directories. This module is the one place that knows both places.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

#: The repository root, when this module runs from a source checkout.
_CHECKOUT = Path(__file__).resolve().parent.parent


def bundled(relative: str) -> Traversable:
    """The file or directory at `relative` (`schema/...`): packaged, else the checkout's."""
    packaged = resources.files("controller").joinpath(*relative.split("/"))
    if packaged.is_file() or packaged.is_dir():
        return packaged
    checkout = _CHECKOUT / relative
    if checkout.exists():
        return checkout
    raise FileNotFoundError(f"{relative} is neither packaged with the controller nor in a checkout")


@contextmanager
def bundled_directory(relative: str) -> Iterator[Path]:
    """A bundled directory as a real path: itself, or a temporary copy while the wheel is zipped."""
    found = bundled(relative)
    if isinstance(found, Path):
        yield found
        return
    with tempfile.TemporaryDirectory(prefix="ejc-bundled-") as tmp:
        copy = Path(tmp) / found.name
        _copy_tree(found, copy)
        yield copy


def _copy_tree(source: Traversable, target: Path) -> None:
    """Copy a Traversable directory (e.g. inside a zip) to `target`."""
    target.mkdir(parents=True)
    for entry in source.iterdir():
        if entry.is_dir():
            _copy_tree(entry, target / entry.name)
        else:
            with entry.open("rb") as data, (target / entry.name).open("wb") as out:
                shutil.copyfileobj(data, out)
