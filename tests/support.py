"""Helpers shared by test packages."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Self

import pytest


def wait_until(condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05,
               what: str = "condition") -> Any:
    """Poll `condition` until it returns something truthy (and return that), or fail."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not met within {timeout:.0f}s")
        time.sleep(interval)


class Loops:
    """Background loops for a `with` block: each function of `loops()` runs in its own thread
    from the start of the block, and checks `stop`, which the end of the block sets."""

    stop: threading.Event

    def loops(self) -> list[Callable[[], None]]:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._threads = [threading.Thread(target=loop) for loop in self.loops()]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(30)


def stopped_afterwards() -> Iterator[list[Any]]:
    """A fixture's body: the test appends what it starts, and each one's `stop()` is called
    once the test is over."""
    started: list[Any] = []
    yield started
    for thing in started:
        thing.stop()
