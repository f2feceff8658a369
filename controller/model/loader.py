"""From manifest bytes to validated models, judging each file and document alone.

Pure: the source (a directory, an S3 prefix) hands over `{path: bytes}`; this
module runs each file through the three stages of loading (DESIGN.md §3):
decode (`decode`: bytes to the documents of our apiVersion, with line
numbers, and warnings for near misses), validate (`validate`: the JSON
Schemas and the semantic checks the schema cannot express) and build
(`build`: the frozen models of `controller.model.manifest`). Every problem
becomes a `ManifestError` (`PATH:LINE: message`) and excludes only the
document it is about; across files, it rejects duplicate names.

`ManifestLoader` keeps two memories between passes of a long-running loop:
a parse cache keyed by (path, content hash), so unchanged files cost a hash
and a dictionary lookup; and the last known good manifests, so an invalid
edit keeps the previous version instead of looking like a deletion.
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from controller.model.build import build_manifest
from controller.model.decode import best_effort_identity, decode_text, document_kind, our_documents
from controller.model.manifest import CronJob, DesiredSet, JobRun, Kind, Manifest, SourceLocation
from controller.model.problems import ManifestError, ManifestWarning
from controller.model.validate import SchemaValidator, validate_document
from controller.model.yamldoc import YamlDocument


@dataclass(frozen=True)
class FileResult:
    """What one file yielded: its manifests and its problems."""

    manifests: tuple[Manifest, ...] = ()
    errors: tuple[ManifestError, ...] = ()
    #: (kind, name) of documents that were ours but invalid, when the name
    #: could be read: their runs are "invalid", never "deleted"
    invalid_names: frozenset[tuple[str, str]] = frozenset()
    #: True when the file could not be read at all (syntax error, encoding...)
    unreadable: bool = False
    #: documents with our apiVersion, valid or not
    ours: int = 0
    warnings: tuple[ManifestWarning, ...] = ()


@dataclass(frozen=True)
class LoadResult:
    """One source snapshot, loaded."""

    desired: DesiredSet
    errors: tuple[ManifestError, ...]
    #: names whose current document is invalid (kept from last known good
    #: where there was one): never orphan these
    invalid_names: frozenset[tuple[str, str]] = frozenset()
    #: some file could not be parsed at all: the set of names is not trustworthy
    incomplete: bool = False
    files: int = 0
    cache_hits: int = 0
    #: problems that exclude nothing (reported; they never make the load invalid)
    warnings: tuple[ManifestWarning, ...] = ()
    #: files read without error that hold no document of our apiVersion
    without_manifests: frozenset[str] = frozenset()


@dataclass
class ManifestLoader:
    """Loads snapshots, remembering parses and last known good manifests."""

    validators: Mapping[Kind, SchemaValidator]
    _cache: dict[tuple[str, str], FileResult] = field(default_factory=dict)
    _last_good: dict[str, FileResult] = field(default_factory=dict)

    def load(
        self,
        files: Mapping[str, bytes],
        extra_errors: Iterable[ManifestError] = (),
        extra_warnings: Iterable[ManifestWarning] = (),
    ) -> LoadResult:
        """Load every file of a snapshot; bad documents are reported and skipped."""
        with _collector_paused():
            return self._load(files, extra_errors, extra_warnings)

    def _load(
        self,
        files: Mapping[str, bytes],
        extra_errors: Iterable[ManifestError],
        extra_warnings: Iterable[ManifestWarning],
    ) -> LoadResult:
        results: dict[str, FileResult] = {}
        hits = 0
        new_cache: dict[tuple[str, str], FileResult] = {}
        for path in sorted(files):
            data = files[path]
            cache_key = (path, hashlib.sha256(data).hexdigest())
            cached = self._cache.get(cache_key)
            if cached is None:
                cached = parse_file(path, data, self.validators)
            else:
                hits += 1
            new_cache[cache_key] = cached
            results[path] = cached
        # Forget files that are gone, so the cache cannot grow without bound.
        self._cache = new_cache
        errors: list[ManifestError] = list(extra_errors)
        unreadable_paths = {e.path for e in errors}
        for result in results.values():
            errors.extend(result.errors)
        desired, dup_errors, invalid_names = _assemble(results, self._last_good)
        errors.extend(dup_errors)
        for path, result in results.items():
            if not result.errors:
                self._last_good[path] = result
        for path in list(self._last_good):
            if path not in results and path not in unreadable_paths:
                del self._last_good[path]  # deleted for real: no longer known good
        incomplete = bool(unreadable_paths) or any(r.unreadable for r in results.values())
        return LoadResult(
            desired=desired,
            errors=tuple(sorted(set(errors))),
            invalid_names=invalid_names,
            incomplete=incomplete,
            files=len(files),
            cache_hits=hits,
            warnings=tuple(
                sorted({*extra_warnings, *(w for r in results.values() for w in r.warnings)})
            ),
            without_manifests=frozenset(
                path for path, r in results.items() if r.ours == 0 and not r.errors
            ),
        )


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Keep Python's cyclic garbage collector out of a load.

    A load allocates hundreds of thousands of objects (YAML nodes, dicts,
    frozen manifests) and frees them by reference counting: they form no
    cycles. The cyclic collector, triggered by allocation counts, would
    still rescan every live object, the parse cache's thousands of
    manifests included, each time a threshold trips — which made a load's
    cost grow with the size of the cache (assembling 10,000 cached
    manifests: 0.34 s with the collector, 0.08 s without). It runs again
    as usual once the load is over.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _assemble(
    results: Mapping[str, FileResult], last_good: Mapping[str, FileResult]
) -> tuple[DesiredSet, list[ManifestError], frozenset[tuple[str, str]]]:
    """Combine per-file results: detect duplicate names, fall back to last known good."""
    by_name: dict[tuple[str, str], list[Manifest]] = {}
    invalid: set[tuple[str, str]] = set()
    for result in results.values():
        invalid.update(result.invalid_names)
        for manifest in result.manifests:
            by_name.setdefault((manifest.kind.value, manifest.name), []).append(manifest)
    errors: list[ManifestError] = []
    chosen: dict[tuple[str, str], Manifest] = {}
    for ident, manifests in by_name.items():
        if len(manifests) == 1:
            chosen[ident] = manifests[0]
            continue
        places = ", ".join(str(m.source) for m in manifests)
        for m in manifests:
            errors.append(
                ManifestError(
                    m.source.path,
                    m.source.line,
                    f"duplicate {ident[0]} metadata.name {ident[1]!r} (defined at {places})",
                )
            )
        invalid.add(ident)
    # Names are unique per source across kinds too (DESIGN.md §3): runs are
    # keyed NAME/RUN_ID, so a JobRun and a CronJob may not share a name.
    # Indexed by name once: a scan per name made every pass quadratic.
    kinds_of: dict[str, list[Manifest]] = {}
    for (_, name), manifest in chosen.items():
        kinds_of.setdefault(name, []).append(manifest)
    for name, clashing in sorted(kinds_of.items()):
        if len(clashing) < 2:
            continue
        places = ", ".join(str(m.source) for m in clashing)
        for m in clashing:
            message = f"metadata.name {name!r} is used by both a JobRun and a CronJob ({places})"
            errors.append(ManifestError(m.source.path, m.source.line, message))
            del chosen[(m.kind.value, name)]
            invalid.add((m.kind.value, name))
    # Last known good: a file that is broken now keeps what it last yielded.
    for path, result in results.items():
        if not result.errors:
            continue
        previous = last_good.get(path)
        if previous is None:
            continue
        for manifest in previous.manifests:
            ident = (manifest.kind.value, manifest.name)
            if ident not in chosen and ident not in by_name:
                chosen[ident] = manifest
                invalid.add(ident)
    # Files that vanished because they became unreadable are also kept.
    for path, previous in last_good.items():
        if path in results:
            continue
        for manifest in previous.manifests:
            ident = (manifest.kind.value, manifest.name)
            if ident in invalid and ident not in chosen:
                chosen[ident] = manifest
    job_runs = {n: m for (k, n), m in chosen.items() if isinstance(m, JobRun)}
    cron_jobs = {n: m for (k, n), m in chosen.items() if isinstance(m, CronJob)}
    return DesiredSet(job_runs, cron_jobs), errors, frozenset(invalid)


def parse_file(path: str, data: bytes, validators: Mapping[Kind, SchemaValidator]) -> FileResult:
    """Parse one file's bytes into manifests and errors."""
    text = decode_text(path, data)
    if isinstance(text, ManifestError):
        return FileResult(errors=(text,), unreadable=True)
    manifests: list[Manifest] = []
    errors: list[ManifestError] = []
    warnings: list[ManifestWarning] = []
    invalid: set[tuple[str, str]] = set()
    unreadable = False
    ours = 0
    for item in our_documents(path, text):
        if isinstance(item, ManifestError):
            errors.append(item)
            unreadable = True
            continue
        if isinstance(item, ManifestWarning):
            warnings.append(item)
            continue
        ours += 1
        manifest, doc_errors = _parse_document(path, item, validators)
        if manifest is not None:
            manifests.append(manifest)
        elif doc_errors:
            ident = best_effort_identity(item.value)
            if ident is not None:
                invalid.add(ident)
        errors.extend(doc_errors)
    return FileResult(
        tuple(manifests),
        tuple(errors),
        frozenset(invalid),
        unreadable,
        ours=ours,
        warnings=tuple(warnings),
    )


def _parse_document(
    path: str, doc: YamlDocument, validators: Mapping[Kind, SchemaValidator]
) -> tuple[Manifest | None, list[ManifestError]]:
    """Validate one document of our apiVersion and build its model."""
    kind = document_kind(path, doc)
    if isinstance(kind, ManifestError):
        return None, [kind]
    errors = validate_document(path, doc, kind, validators[kind])
    if errors:
        return None, errors
    return build_manifest(kind, doc.value, SourceLocation(path, doc.line)), []
