"""Decode: from a file's bytes to the documents of ours, with their line numbers.

The first stage of loading (DESIGN.md §3), before validate (`validate`: the
JSON Schema and the semantic checks) and build (`build`: the frozen models).
It refuses a file too large or not UTF-8, reads its YAML stream safely
through `yamldoc` (which knows YAML, not manifests), and recognises which
documents are ours: our apiVersion, and a kind of ours. Other YAML of the
repository is skipped silently, except a near miss (an apiVersion that is
almost ours, a typo or another version): that is ignored with a warning.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from controller.model.manifest import API_VERSION, Kind
from controller.model.problems import ManifestError, ManifestWarning
from controller.model.yamldoc import YamlDocument, parse_yaml_documents

#: Files larger than this are refused unread (DESIGN.md §3).
MAX_FILE_BYTES = 1024 * 1024


def decode_text(path: str, data: bytes) -> str | ManifestError:
    """A file's text, or the error that makes it unreadable (too large, not UTF-8)."""
    if len(data) > MAX_FILE_BYTES:
        return ManifestError(path, 1, f"file is larger than {MAX_FILE_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return ManifestError(path, line, f"not UTF-8 text: {exc.reason}")


def our_documents(path: str, text: str) -> Iterator[YamlDocument | ManifestError | ManifestWarning]:
    """Each document of our apiVersion; an error where the YAML cannot be read; near-miss warnings.

    A syntax error ends the stream (see `parse_yaml_documents`); the documents
    before it are still yielded.
    """
    for item in parse_yaml_documents(path, text):
        if isinstance(item, ManifestError):
            yield item
            continue
        if not isinstance(item.value, dict) or item.value.get("apiVersion") != API_VERSION:
            # Other YAML in the repository is not ours to judge, unless it
            # looks like a manifest of ours with a typo: say it is ignored.
            if isinstance(item.value, dict) and almost_ours(item.value):
                yield _ignored(path, item)
            continue
        yield item


def document_kind(path: str, doc: YamlDocument) -> Kind | ManifestError:
    """The kind of a document of our apiVersion, or the error for a kind we do not know."""
    kind_text = doc.value.get("kind")
    try:
        return Kind(str(kind_text))
    except ValueError:
        known = ", ".join(k.value for k in Kind)
        line = doc.line_of(("kind",))
        return ManifestError(path, line, f"unknown kind {kind_text!r} (known: {known})")


#: The group of our apiVersion: the part before the version.
_OUR_GROUP = API_VERSION.split("/", 1)[0]


def almost_ours(value: Mapping[str, Any]) -> bool:
    """True for a document that is meant to be ours but has another apiVersion.

    "Almost ours" means: its apiVersion's group (the text before the first
    "/", compared case-insensitively) starts with `ecs-job-controller` (a
    wrong version, `ecs-job-controller/v2`) or is at most two edits from it
    (a typo, `ecs-job-controler/v1`); or its kind is JobRun or CronJob and its
    apiVersion is missing, not a string, or has no group (`v1`: Kubernetes
    keeps CronJob in `batch/v1`, never in its core `v1`). Everything else (a
    Kubernetes `v1` ConfigMap, a `batch/v1` CronJob, another tool's group)
    is other YAML of the repository, ignored silently.
    """
    api_version = value.get("apiVersion")
    kind = value.get("kind")
    ours_by_kind = isinstance(kind, str) and kind in {k.value for k in Kind}
    if not isinstance(api_version, str):
        return ours_by_kind
    if "/" not in api_version and ours_by_kind:
        return True
    group = api_version.split("/", 1)[0].strip().lower()
    return group.startswith(_OUR_GROUP) or _within_edits(group, _OUR_GROUP, 2)


def _within_edits(text: str, target: str, limit: int) -> bool:
    """True when Levenshtein distance(text, target) <= limit."""
    if abs(len(text) - len(target)) > limit:
        return False
    previous = list(range(len(target) + 1))
    for i, char in enumerate(text, start=1):
        current = [i]
        for j, wanted in enumerate(target, start=1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char != wanted))
            )
        if min(current) > limit:
            return False  # every later row only grows
        previous = current
    return previous[-1] <= limit


def _ignored(path: str, doc: YamlDocument) -> ManifestWarning:
    """The warning for a document that is almost ours (see `almost_ours`)."""
    api_version = doc.value.get("apiVersion")
    shown = "(missing)" if api_version is None else repr(api_version)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    message = f"apiVersion {shown} is not {API_VERSION}: document ignored"
    return ManifestWarning(path, doc.line_of(("apiVersion",)), message)


def best_effort_identity(value: Any) -> tuple[str, str] | None:
    """(kind, name) of an invalid document, when both can be read."""
    if not isinstance(value, dict):
        return None
    kind, metadata = value.get("kind"), value.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if isinstance(kind, str) and isinstance(name, str):
        return (kind, name)
    return None
