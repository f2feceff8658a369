"""A source that cannot be read answers with its last good snapshot, marked stale."""

from __future__ import annotations

import pytest

from controller.errors import TransientError
from controller.sources.snapshot import LastGoodSource, Snapshot


class Flaky:
    """A source whose next answer the test sets."""

    def __init__(self) -> None:
        self.next: Snapshot | Exception = Snapshot("r1", {"a.yaml": b"a"})

    def snapshot(self) -> Snapshot:
        if isinstance(self.next, Exception):
            raise self.next
        return self.next

    def describe(self) -> str:
        return "flaky/"


def test_a_failed_read_serves_the_last_good_snapshot_marked_stale() -> None:
    inner = Flaky()
    source = LastGoodSource(inner)
    assert source.snapshot().stale is None
    inner.next = TransientError("checkout is being swapped")
    stale = source.snapshot()
    assert stale.files == {"a.yaml": b"a"}
    assert stale.stale == "flaky/: checkout is being swapped"
    inner.next = Snapshot("r2", {})
    assert source.snapshot() == Snapshot("r2", {})


def test_without_a_good_snapshot_yet_the_error_goes_through() -> None:
    inner = Flaky()
    inner.next = TransientError("not there")
    with pytest.raises(TransientError):
        LastGoodSource(inner).snapshot()
