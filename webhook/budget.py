"""Bounds on the work one analysis may do (admission reviews must be answered in time).

The engine checks a `Budget` between containers and inside long loops; `exhausted()` is cheap.
A caller that gives up on an analysis (its deadline passed, the server shuts down) calls
`cancel()`, and the engine stops at its next check with `OutOfTime`, so abandoned work never
keeps running in the background.
"""

from __future__ import annotations

import time


class OutOfTime(Exception):
    """The analysis passed its deadline or was cancelled; no verdict was reached."""


class Budget:
    """A deadline (monotonic seconds; None: none) and a cancel flag shared with the caller."""

    __slots__ = ("deadline", "_cancelled")

    def __init__(self, deadline: float | None = None) -> None:
        self.deadline = deadline
        self._cancelled = False  # set from another thread: a plain attribute store, atomic in CPython

    @classmethod
    def within(cls, seconds: float) -> Budget:
        return cls(time.monotonic() + seconds)

    def cancel(self) -> None:
        self._cancelled = True

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def exhausted(self) -> bool:
        return self._cancelled or (self.deadline is not None and time.monotonic() > self.deadline)

    def check(self) -> None:
        """Raise OutOfTime when the deadline passed or the caller cancelled."""
        if self.exhausted():
            raise OutOfTime("cancelled" if self.cancelled else "deadline passed")


UNLIMITED = Budget()
