"""Fixtures for the sandbox tests: one sandbox per module, wiped before each test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from controller.clock import FakeClock
from controller.sandbox import Sandbox


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="module")
def module_sandbox(clock: FakeClock) -> Iterator[Sandbox]:
    # No latency nor throttling from the environment: these tests count calls.
    with Sandbox(clock, latency="", throttle="") as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(module_sandbox: Sandbox) -> Sandbox:
    """The module's sandbox with no AWS state, faults or counted calls."""
    module_sandbox.reset()
    return module_sandbox


@pytest.fixture
def ecs(sandbox: Sandbox) -> Any:
    return sandbox.client("ecs")
