"""Fixtures for the gateway and observe tests: one sandbox per module, found via the environment.

Latency and throttling are off whatever the environment says: these tests
count calls.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from controller.clock import FakeClock
from controller.sandbox import Sandbox
from tests.sandbox.helpers import serving_sandbox


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="module")
def module_sandbox(clock: FakeClock) -> Iterator[Sandbox]:
    with serving_sandbox(clock, latency="", throttle="") as sandbox:
        yield sandbox
