"""The FastAPI application: /validate, /healthz, /readyz, /metrics.

/validate never answers 5xx: a body over the limit is 413, one that does not arrive in time is
408, anything that is not an AdmissionReview is 400, all as `{"error": "..."}`. Once the request
is understood, every answer is an AdmissionReview: the engine runs under a `Budget` derived from
the API server's `?timeout=` (and, once shutdown began, from the time left before it), on the
event loop for reviews up to `--inline-limit` bytes and on the worker pool for larger ones; an exception,
a missed deadline, a full pool or a shutdown is answered by the failure mode (default: allow with
a warning), so a bug or an overload cannot block the cluster. Responses are ASCII JSON, so any string a request carried (lone surrogates included)
is echoed exactly and never fails to encode.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from webhook.budget import Budget, OutOfTime
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
from webhook.server.workers import Busy, WorkerPool

DEADLINE_SHARE = 0.8  # of the API server's timeout: answer before it gives up
INLINE_BYTES = 64 * 1024  # default of `serve --inline-limit` (see `inline`)
MAX_INT_DIGITS = 4300  # Python's default int_max_str_digits: longer integer literals are refused


@dataclass
class Parts:
    """Everything the app serves from; built by main.build_server (or a test)."""

    policy: PolicyStore
    tls: LiveTLS
    metrics: Metrics
    cache: ClusterCache | None = None
    reload_interval: float = 1.0
    workers: WorkerPool = field(default_factory=WorkerPool)
    inline_limit: int = INLINE_BYTES  # reviews up to this size are checked on the event loop
    stop_by: float | None = None  # monotonic: set when shutdown begins (see `drain`)


def drain(parts: Parts, seconds: float) -> None:
    """Shutdown began (on the event loop): reviews get at most `seconds` more, then the ones still
    running are answered by the failure mode, so none is cut without an AdmissionReview."""
    parts.stop_by = time.monotonic() + seconds
    asyncio.get_running_loop().call_later(seconds, parts.workers.cancel_all, "the server is shutting down")


class AsciiJSON(JSONResponse):
    """JSON with every non-ASCII character escaped: lone surrogates survive, and encoding cannot fail."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":")).encode("ascii")


class BodyTooLarge(Exception):
    pass


class BodyTooSlow(Exception):
    pass


async def read_body(request: Request, limit: int, seconds: float) -> bytes:
    """The body, refused past `limit` bytes by Content-Length or as it streams in, and when it
    has not all arrived within `seconds`."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"body of {declared} bytes is over the limit of {limit} bytes")
    chunks, size = [], 0
    try:
        async with asyncio.timeout(seconds):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge(f"body is over the limit of {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise BodyTooSlow(f"body not received within {seconds:.1f}s") from None
    return b"".join(chunks)


def _integer(text: str) -> int:
    if len(text) > MAX_INT_DIGITS:
        raise InvalidReview(f"body holds an integer of more than {MAX_INT_DIGITS} digits")
    return int(text)


_DECODER = json.JSONDecoder(parse_int=_integer)


def _load(body: bytes) -> Review:
    try:
        data = _DECODER.decode(body.decode(json.detect_encoding(body), "surrogatepass"))  # as json.loads
    except RecursionError:
        raise InvalidReview("body is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        if isinstance(exc, InvalidReview):
            raise
        raise InvalidReview(f"body is not JSON: {str(exc)[:200]}") from None
    return parse_review(data)


async def _contained(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Run `app` on an HTTP request; an exception that escapes it is logged and answered here
    (400 on /validate, else 500, both closing the connection), never re-raised into uvicorn,
    which would drop the connection without a word."""
    started = False

    async def tracking(message: Message) -> None:
        nonlocal started
        started = started or message["type"] == "http.response.start"
        await send(message)

    try:
        await app(scope, receive, tracking)
    except Exception:  # noqa: BLE001 - see the docstring
        log_exception("unhandled error", path=str(scope.get("path", ""))[:100])
        if not started:
            status = 400 if scope.get("path") == "/validate" else 500
            response = AsciiJSON({"error": "the request could not be handled"}, status_code=status,
                                 headers={"connection": "close"})
            await response(scope, receive, send)


class _Contain:
    """Outermost ASGI wrapper of the FastAPI stack (see `_contained`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await _contained(self.app, scope, receive, send)


class _Webhook(FastAPI):
    """The app. `POST /validate`, on the path of every Pod the cluster creates, is answered
    straight from ASGI by the same handler the route has: FastAPI's middleware, routing and
    dependency solving would add as much as a small review's whole check (bench/admission.py,
    part a). Every other request goes through FastAPI."""

    validate: Callable[[Request], Awaitable[Response]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (self.validate is not None and scope["type"] == "http" and scope["path"] == "/validate"
                and scope["method"] == "POST"):
            await _contained(self._validate, scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def _validate(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.validate is not None
        response = await self.validate(Request(scope, receive))
        await response(scope, receive, send)


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
            metrics.certificate(parts.tls.certificate.not_valid_after_utc)

    async def reload_loop() -> None:
        # Runs on the event loop thread, so a new context never races a handshake.
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
            parts.workers.cancel_all("the server is shutting down")
            parts.workers.close()
            if parts.cache is not None:
                await asyncio.to_thread(parts.cache.stop)

    app = _Webhook(title="vllm-env-guard", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None,
                  default_response_class=AsciiJSON)
    app.add_middleware(_Contain)
    metrics.in_progress.set_function(lambda: parts.workers.pending)

    def view_for(review: Review, snapshot: Snapshot) -> ClusterView:
        if parts.cache is None or not is_checked(review):
            return ClusterView()
        return parts.cache.view(review.namespace or "default", service=review.is_service,
                                budget=snapshot.policy.lookup_budget)

    def check(review: Review, snapshot: Snapshot, budget: Budget) -> Decision:
        return decide(review, snapshot, view_for(review, snapshot), budget=budget)

    def inline(size: int) -> bool:
        """Whether a review is checked on the event loop rather than handed to a worker: small
        ones are (their work is a few milliseconds at most, bounded by the engine's budgets, and a
        thread hand-off would cost as much as the check), but never while the cache is still
        syncing (the view may wait for it)."""
        return size <= parts.inline_limit and (parts.cache is None or parts.cache.synced)

    async def answer(review: Review, snapshot: Snapshot, seconds: float, size: int) -> Decision:
        policy = snapshot.policy
        budget = Budget.within(seconds)
        try:
            if inline(size):
                return check(review, snapshot, budget)
            return await asyncio.wait_for(parts.workers.submit(lambda: check(review, snapshot, budget), budget),
                                          timeout=seconds)
        except Busy as exc:
            log(logging.WARNING, "server busy; failure mode", reason=str(exc))
            return failure(review, policy, f"server busy ({exc})", "busy", code=429, reason="TooManyRequests")
        except (TimeoutError, OutOfTime):
            if parts.stop_by is not None and time.monotonic() >= parts.stop_by - 0.01:
                log(logging.WARNING, "check cut by shutdown")
                return failure(review, policy, "the server is shutting down", "shutdown",
                               code=503, reason="ServiceUnavailable")
            log(logging.ERROR, "check did not finish in time", seconds=round(seconds, 3))
            return failure(review, policy, f"the check did not finish within {seconds:.1f}s", "timeout",
                           code=504, reason="Timeout")
        except Exception as exc:  # noqa: BLE001 - a bug must not block the cluster (failure mode)
            log_exception("check failed")
            return failure(review, policy, f"internal error ({type(exc).__name__})", "internal_error")

    def refuse(status: int, reason: str, error: str) -> Response:
        metrics.invalid.labels(reason).inc()
        log(logging.WARNING, "request refused", status=status, error=error)
        headers = {"connection": "close"} if status == 408 else None
        return AsciiJSON({"error": error}, status_code=status, headers=headers)

    @app.post("/validate")
    async def validate(request: Request) -> Response:
        started = time.monotonic()
        snapshot = parts.policy.current
        seconds = parse_timeout(request.query_params.get("timeout")) * DEADLINE_SHARE
        if parts.stop_by is not None:
            seconds = min(seconds, parts.stop_by - started)
        try:
            raw = await read_body(request, snapshot.policy.max_body_bytes, max(0.05, seconds))
            review = _load(raw)
        except BodyTooLarge as exc:
            return refuse(413, "too_large", str(exc))
        except BodyTooSlow as exc:
            return refuse(408, "too_slow", str(exc))
        except InvalidReview as exc:
            return refuse(400, "malformed", str(exc))
        except ClientDisconnect:
            return refuse(400, "disconnected", "the client went away before sending the whole body")
        token = request_uid.set(review.uid)
        try:
            decision = await answer(review, snapshot, max(0.05, seconds - (time.monotonic() - started)), len(raw))
            body = review_response(review, decision)
            elapsed = time.monotonic() - started
            metrics.admission(review.kind, review.operation, decision.allowed, review.dry_run, elapsed,
                              decision.findings)
            if decision.failure:
                metrics.failures.labels(decision.failure, str(decision.allowed).lower()).inc()
            log(logging.INFO, "admission", kind=review.kind, namespace=review.namespace, name=review.name,
                operation=review.operation, dry_run=review.dry_run, allowed=decision.allowed,
                mode=decision.mode, note=decision.note, rules=sorted({f.rule for f in decision.findings}),
                warnings=len(decision.warnings), duration_ms=round(elapsed * 1000, 2))
        except Exception as exc:  # noqa: BLE001 - whatever broke, the API server gets an AdmissionReview
            log_exception("answer failed")
            body = review_response(review, failure(review, snapshot.policy, f"internal error ({type(exc).__name__})",
                                                   "internal_error"))
        finally:
            request_uid.reset(token)
        return AsciiJSON(body)

    app.validate = validate
    operations(app, parts)
    if parts.cache is not None:
        metrics.watch_cache(parts.cache.stats)
    return app


def operations(app: FastAPI, parts: Parts) -> None:
    """/healthz, /readyz and /metrics on `app` (the main one, and the plain-HTTP probe app)."""

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> Response:
        reasons = []
        if not parts.tls.loaded:
            reasons.append("no certificate loaded")
        elif parts.tls.expired:
            reasons.append("the certificate being served has expired")
        if parts.cache is not None and not parts.cache.synced:
            reasons.append(f"cluster cache not synced: {', '.join(parts.cache.unsynced())}")
        if parts.stop_by is not None:
            reasons.append("shutting down")
        if reasons:
            return AsciiJSON({"status": "not ready", "reasons": reasons}, status_code=503)
        return AsciiJSON({"status": "ready"})

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(parts.metrics.render(), media_type=CONTENT_TYPE_LATEST)


def create_probe_app(parts: Parts) -> FastAPI:
    """The plain-HTTP app of `--health-port`: /healthz, /readyz, /metrics only."""
    app = FastAPI(title="vllm-env-guard probes", docs_url=None, redoc_url=None, openapi_url=None,
                  default_response_class=AsciiJSON)
    app.add_middleware(_Contain)
    operations(app, parts)
    return app
