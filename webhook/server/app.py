"""The FastAPI application: /validate, /healthz, /readyz, /metrics.

/validate never answers 500 for bad input: a body over the limit is 413, anything that is not
an AdmissionReview is 400, both as `{"error": "..."}`. Once the request is understood, every
answer is an AdmissionReview: the engine runs in a thread under a deadline derived from the
API server's `?timeout=`, and an exception or a missed deadline is answered by the failure mode
(default: allow with a warning), so a bug in the engine cannot block the cluster.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from webhook.server.admission import (
    ClusterView,
    Decision,
    InvalidReview,
    decide,
    failure,
    is_checked,
    parse_review,
    parse_timeout,
    review_response,
)
from webhook.server.admission import (
    Request as Review,
)
from webhook.server.cache import ClusterCache
from webhook.server.logs import log, log_exception, request_uid
from webhook.server.metrics import Metrics
from webhook.server.policy import PolicyStore, Snapshot
from webhook.server.tls import LiveTLS

T = TypeVar("T")
DEADLINE_SHARE = 0.8  # of the API server's timeout: answer before it gives up


@dataclass
class Parts:
    """Everything the app serves from; built by main.build_server (or a test)."""

    policy: PolicyStore
    tls: LiveTLS
    metrics: Metrics
    cache: ClusterCache | None = None
    reload_interval: float = 1.0


class BodyTooLarge(Exception):
    pass


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused past `limit` bytes by Content-Length or as it streams in."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"body of {declared} bytes is over the limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _load(body: bytes) -> Review:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidReview(f"body is not JSON: {exc}") from None
    except RecursionError:
        raise InvalidReview("body is nested too deeply") from None
    return parse_review(data)


async def _in_thread(work: Callable[[], T]) -> T:
    """Run `work` in a daemon thread (an engine stuck forever must not block shutdown)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def run() -> None:
        try:
            result = context.run(work)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
            loop.call_soon_threadsafe(settle, None, exc)
        else:
            loop.call_soon_threadsafe(settle, result, None)

    threading.Thread(target=run, name="admission", daemon=True).start()
    return await future


class _Watched:
    """Files whose change triggers `reload` (polled by content hash)."""

    def __init__(self, what: str, paths: tuple[str, ...], reload: Callable[[], Any]) -> None:
        self.what, self.paths, self.reload = what, paths, reload
        self.seen = self.fingerprint()
        self.failed: bytes | None = None

    def fingerprint(self) -> bytes:
        digest = hashlib.sha256()
        for path in self.paths:
            try:
                digest.update(Path(path).read_bytes())
            except OSError:
                digest.update(b"\0unreadable")
            digest.update(b"\0")
        return digest.digest()

    def poll(self, metrics: Metrics) -> bool:
        """Reload if the files changed since the last good load. A failed reload (a pair caught
        half-written, a config that does not validate) is retried at every poll, and reported
        once per version of the files."""
        now = self.fingerprint()
        if now == self.seen:
            return False
        try:
            self.reload()
        except Exception as exc:  # noqa: BLE001 - keep serving the old state
            if now != self.failed:
                self.failed = now
                metrics.reloads.labels(self.what, "failure").inc()
                log(logging.ERROR, f"{self.what} reload failed; keeping the previous one",
                    paths=list(self.paths), error=str(exc))
            return False
        self.seen, self.failed = now, None
        metrics.reloads.labels(self.what, "success").inc()
        log(logging.INFO, f"{self.what} reloaded", paths=list(self.paths))
        return True


def create_app(parts: Parts) -> FastAPI:
    metrics = parts.metrics

    def certificate_loaded() -> None:
        if parts.tls.certificate is not None:
            metrics.cert_expiry.set(parts.tls.certificate.not_valid_after_utc.timestamp())

    async def reload_loop() -> None:
        # Runs on the event loop thread, so a new chain never races a handshake.
        watched = [_Watched("certificate", parts.tls.paths, parts.tls.reload)]
        if parts.policy.paths:
            watched.append(_Watched("config", parts.policy.paths, parts.policy.reload))
        while True:
            await asyncio.sleep(parts.reload_interval)
            for item in watched:
                if item.poll(metrics) and item.what == "certificate":
                    certificate_loaded()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        certificate_loaded()
        if parts.cache is not None:
            parts.cache.start()
        reloader = asyncio.create_task(reload_loop())
        try:
            yield
        finally:
            reloader.cancel()
            with suppress(asyncio.CancelledError):
                await reloader
            if parts.cache is not None:
                await asyncio.to_thread(parts.cache.stop)

    app = FastAPI(title="vllm-env-guard", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    def view_for(review: Review, snapshot: Snapshot) -> ClusterView:
        if parts.cache is None or not is_checked(review):
            return ClusterView()
        return parts.cache.view(review.namespace or "default", service=review.is_service,
                                budget=snapshot.policy.lookup_budget)

    async def answer(review: Review, snapshot: Snapshot, seconds: float) -> Decision:
        try:
            return await asyncio.wait_for(_in_thread(lambda: decide(review, snapshot, view_for(review, snapshot))),
                                          timeout=seconds)
        except TimeoutError:
            log(logging.ERROR, "check did not finish in time", seconds=round(seconds, 3))
            return failure(review, snapshot.policy, f"the check did not finish within {seconds:.1f}s", "timeout",
                           code=504, reason="Timeout")
        except Exception as exc:  # noqa: BLE001 - a bug must not block the cluster (failure mode)
            log_exception("check failed")
            return failure(review, snapshot.policy, f"internal error ({type(exc).__name__})", "internal_error")

    @app.post("/validate")
    async def validate(request: Request) -> Response:
        started = time.monotonic()
        snapshot = parts.policy.current
        try:
            review = _load(await read_body(request, snapshot.policy.max_body_bytes))
        except BodyTooLarge as exc:
            metrics.invalid.labels("too_large").inc()
            log(logging.WARNING, "request refused", status=413, error=str(exc))
            return JSONResponse({"error": str(exc)}, status_code=413)
        except InvalidReview as exc:
            metrics.invalid.labels("malformed").inc()
            log(logging.WARNING, "request refused", status=400, error=str(exc))
            return JSONResponse({"error": str(exc)}, status_code=400)
        token = request_uid.set(review.uid)
        try:
            budget = parse_timeout(request.query_params.get("timeout")) * DEADLINE_SHARE
            decision = await answer(review, snapshot, max(0.05, budget - (time.monotonic() - started)))
            seconds = time.monotonic() - started
            metrics.admission(review.kind, review.operation, decision.allowed, review.dry_run, seconds,
                              decision.findings)
            if decision.failure:
                metrics.failures.labels(decision.failure, str(decision.allowed).lower()).inc()
            log(logging.INFO, "admission", kind=review.kind, namespace=review.namespace, name=review.name,
                operation=review.operation, dry_run=review.dry_run, allowed=decision.allowed,
                mode=decision.mode, note=decision.note, rules=sorted({f.rule for f in decision.findings}),
                warnings=len(decision.warnings), duration_ms=round(seconds * 1000, 2))
            return JSONResponse(review_response(review, decision))
        finally:
            request_uid.reset(token)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        reasons = []
        if not parts.tls.loaded:
            reasons.append("no certificate loaded")
        if parts.cache is not None and not parts.cache.synced:
            reasons.append(f"cluster cache not synced: {', '.join(parts.cache.unsynced())}")
        if reasons:
            return JSONResponse({"status": "not ready", "reasons": reasons}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log_exception("unhandled error", path=request.url.path)
        return JSONResponse({"error": "internal error"}, status_code=500)

    if parts.cache is not None:
        metrics.watch_cache(parts.cache.stats)
    return app
