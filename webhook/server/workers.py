"""A fixed pool of threads for the engine, with a bounded queue in front of it.

The event loop never runs an analysis itself: a review is handed to the pool and awaited under
its deadline. The pool's size bounds the CPU work in progress; the queue's limit bounds what
waits for it, and past that `submit` refuses at once (`Busy`) so the caller answers with the
failure mode rather than letting reviews pile up. Each job carries a `Budget`: a caller that
gives up cancels it, a job whose budget is spent before it starts is dropped, and the engine
stops at its next budget check, so abandoned work does not keep a thread busy.
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from webhook.budget import Budget, OutOfTime

T = TypeVar("T")
DEFAULT_SIZE = 3  # the engine holds the GIL: more threads than cores buy latency, not throughput
DEFAULT_QUEUE_LIMIT = 32


class Busy(Exception):
    """Every worker is busy and the queue is full."""


class _Job(Generic[T]):
    __slots__ = ("work", "budget", "future", "loop", "context")

    def __init__(self, work: Callable[[], T], budget: Budget, loop: asyncio.AbstractEventLoop) -> None:
        self.work, self.budget, self.loop = work, budget, loop
        self.future: asyncio.Future[T] = loop.create_future()
        self.context = contextvars.copy_context()

    def settle(self, result: Any, error: BaseException | None) -> None:
        """On the event loop: hand the outcome over, unless the caller has given up."""
        if self.future.done():
            return
        if error is not None:
            self.future.set_exception(error)
        else:
            self.future.set_result(result)


class WorkerPool:
    """`size` daemon threads (started on first use) taking jobs from a queue of `queue_limit`."""

    def __init__(self, size: int = DEFAULT_SIZE, queue_limit: int = DEFAULT_QUEUE_LIMIT) -> None:
        if size < 1 or queue_limit < 0:
            raise ValueError("a pool needs at least one worker and a queue limit of 0 or more")
        self.size, self.queue_limit = size, queue_limit
        self._jobs: queue.SimpleQueue[_Job[Any] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._pending = 0  # queued or running
        self._running = 0
        self._inflight: set[_Job[Any]] = set()

    @property
    def pending(self) -> int:
        """Jobs accepted and not finished (queued or running)."""
        return self._pending

    @property
    def running(self) -> int:
        """Jobs a worker is executing now."""
        return self._running

    async def submit(self, work: Callable[[], T], budget: Budget) -> T:
        """Run `work` on a worker and return its result. Raises Busy when the pool is full, and
        OutOfTime when `budget` is cancelled (see `cancel_all`) before the work finishes."""
        loop = asyncio.get_running_loop()
        job = _Job(work, budget, loop)
        with self._lock:
            if self._pending >= self.size + self.queue_limit:
                raise Busy(f"{self._pending} reviews in progress or queued")
            self._pending += 1
            self._inflight.add(job)
            if len(self._threads) < min(self.size, self._pending):
                thread = threading.Thread(target=self._serve, name=f"admission-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
        self._jobs.put(job)
        try:
            return await job.future
        finally:
            budget.cancel()  # done, timed out or cancelled: the engine stops at its next check

    def cancel_all(self, why: str) -> None:
        """On the event loop: stop every job accepted (shutdown); each caller gets OutOfTime(why)."""
        with self._lock:
            jobs = list(self._inflight)
        for job in jobs:
            job.budget.cancel()
            job.settle(None, OutOfTime(why))

    def close(self) -> None:
        """Let the workers exit once the queue is drained."""
        for _ in self._threads:
            self._jobs.put(None)

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            with self._lock:
                self._running += 1
            try:
                self._run(job)
            finally:
                with self._lock:
                    self._running -= 1
                    self._pending -= 1
                    self._inflight.discard(job)

    def _run(self, job: _Job[Any]) -> None:
        result: Any = None
        error: BaseException | None = None
        if job.budget.exhausted():  # its caller gave up while it was queued
            error = OutOfTime("cancelled before it started")
        else:
            try:
                result = job.context.run(job.work)
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting caller
                error = exc
        try:
            job.loop.call_soon_threadsafe(job.settle, result, error)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass
