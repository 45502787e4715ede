"""`vllm-env-guard serve`: wire the policy, certificate, cluster cache and app; run uvicorn.

SIGTERM: uvicorn stops accepting connections and lets the requests in flight finish (at most
GRACE seconds); reviews still running DRAIN_MARGIN seconds before that are answered by the
failure mode, so every request gets an AdmissionReview. Then the app's shutdown stops the
reload task, the workers and the cache's threads; exit 0.

Slow clients: a request's headers must arrive within HEADER_TIMEOUT of the connection (or of
the previous response), its body within the review's deadline (the app), and at most
`--max-connections` connections are served at once (uvicorn answers 503 past that).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import signal
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import h11
import uvicorn
from fastapi import FastAPI
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.config.config_exception import ConfigException
from uvicorn.protocols.http.h11_impl import H11Protocol

from webhook.cli import UsageError
from webhook.config import ConfigError, load_config
from webhook.lint import use_registry_dir
from webhook.registry import bundled_versions
from webhook.rules import CATALOG
from webhook.server import logs
from webhook.server.app import Parts, create_app, create_probe_app, drain
from webhook.server.cache import ClusterCache
from webhook.server.metrics import Metrics
from webhook.server.policy import PolicyStore
from webhook.server.selfmanaged import Cluster, ClusterError, SelfManagedTLS, Settings
from webhook.server.tls import DEV_DIR, LiveTLS, TLSError, make_dev_certificates
from webhook.server.workers import WorkerPool

GRACE = 20  # seconds for in-flight requests after SIGTERM (the API server's timeout is at most 30)
DRAIN_MARGIN = 2.0  # seconds before GRACE at which reviews still running get the failure mode
HEADER_TIMEOUT = 10.0  # seconds for a request's headers
KEEP_ALIVE = 5  # seconds an idle connection is kept open
LINGER = 0.5  # seconds an idle connection stays open after shutdown began


class _Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request's headers: a client that opens a
    connection (or keeps one alive) and sends nothing or a partial request is disconnected. And
    at shutdown an idle connection lingers a moment before it is closed: a request may already
    be on its way on it (sent as the listening socket closed), and it gets its answer."""

    _headers_due: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._headers_due is None and self.conn.their_state is h11.IDLE:
            self._arm()
        super().data_received(data)
        if self._headers_due is not None and self.conn.their_state is not h11.IDLE:
            self._headers_due.cancel()
            self._headers_due = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._headers_due is not None:
            self._headers_due.cancel()
        super().connection_lost(exc)

    def shutdown(self) -> None:
        # uvicorn closes idle connections at once; at LINGER each is closed if still idle, or
        # else told to close once its response is sent.
        self.loop.call_later(LINGER, super().shutdown)

    def _arm(self) -> None:
        self._headers_due = self.loop.call_later(HEADER_TIMEOUT, self._headers_late)

    def _headers_late(self) -> None:
        self._headers_due = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


class _Probes(uvicorn.Server):
    """The plain-HTTP probe server: runs inside the main server's loop, leaves signals to it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Server(uvicorn.Server):
    """uvicorn's server, plus the probe server and the drain of reviews at shutdown."""

    def __init__(self, config: uvicorn.Config, parts: Parts, probes: _Probes | None = None) -> None:
        super().__init__(config)
        self.parts, self.probes = parts, probes

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        if self.probes is None:
            await super().serve(sockets)
            return
        probes = asyncio.create_task(self.probes.serve())
        try:
            await super().serve(sockets)
        finally:
            self.probes.should_exit = True
            await probes

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        drain(self.parts, GRACE - DRAIN_MARGIN)
        await super().shutdown(sockets)


def run_serve(args: argparse.Namespace) -> int:
    logs.configure(args.log_level)
    server = build_server(args)
    bundled_versions()  # load the release table now, then keep what start-up built out of the
    gc.freeze()         # collector's way: reviews allocate a lot, and full collections would rescan it
    # uvicorn handles SIGTERM (graceful shutdown), then re-raises it to the handler it found:
    # make that a no-op so a graceful shutdown exits 0 rather than dying of the signal.
    signal.signal(signal.SIGTERM, lambda *_: None)
    server.run()
    return 0


def _tls(args: argparse.Namespace) -> LiveTLS:
    if args.dev:
        if args.tls_cert or args.tls_key:
            raise UsageError("--dev makes its own certificate; leave out --tls-cert/--tls-key")
        dev = make_dev_certificates(Path(args.dev_dir) if args.dev_dir else DEV_DIR)
        print(f"vllm-env-guard serve --dev: certificate for localhost, 127.0.0.1 and ::1 signed by a throwaway CA\n"
              f"  CA:       {dev.ca}\n"
              f"  try:      curl --cacert {dev.ca} https://localhost:{args.port}/healthz\n"
              f"  caBundle: base64 -w0 {dev.ca}", file=sys.stdout, flush=True)
        cert, key = str(dev.cert), str(dev.key)
    elif args.tls_cert and args.tls_key:
        cert, key = args.tls_cert, args.tls_key
    else:
        raise UsageError("give --tls-cert and --tls-key, or --dev for a throwaway certificate")
    try:
        return LiveTLS(cert, key, args.client_ca)
    except TLSError as exc:
        raise UsageError(str(exc)) from None


def _api_client(args: argparse.Namespace) -> k8s.ApiClient | None:
    """Cluster access for the cache; None with --no-cluster, and with --dev unless --kubeconfig is given."""
    if args.no_cluster or (args.dev and not args.kubeconfig):
        return None
    return _connect(args)


def _connect(args: argparse.Namespace) -> k8s.ApiClient:
    """--kubeconfig, else in-cluster, else the default kubeconfig."""
    try:
        if args.kubeconfig:
            return k8s_config.new_client_from_config(config_file=args.kubeconfig)
        configuration = k8s.Configuration()
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)
            return k8s.ApiClient(configuration)
        except ConfigException:
            return k8s_config.new_client_from_config()
    except (ConfigException, OSError) as exc:
        raise UsageError(f"no cluster access ({exc}); give --kubeconfig, or --no-cluster "
                         "to check each object alone") from None


def build_server(args: argparse.Namespace, *, reload_interval: float = 1.0) -> Server:
    """The uvicorn server for `serve` arguments (not started)."""
    try:
        policy = PolicyStore(args.config)
        if args.config and not args.registry_dir:  # the option was applied when it was parsed
            use_registry_dir(load_config(args.config, known_rules=CATALOG).registry_dir)  # read at start
    except ConfigError as exc:
        raise UsageError(f"invalid config:\n{exc}") from None
    certificates = _self_managed(args)
    tls = _self_managed_tls(certificates, args) if certificates else _tls(args)
    api_client = _api_client(args)
    options = policy.current.policy.cache
    cache = None
    if api_client is not None:
        cache = ClusterCache(lambda resource: resource.lister(api_client), configmaps=options.configmaps,
                             workloads=options.workloads)
    parts = Parts(policy=policy, tls=tls, metrics=Metrics(), cache=cache, reload_interval=reload_interval,
                  workers=WorkerPool(args.workers, args.queue_limit), inline_limit=args.inline_limit)
    app = create_app(parts)
    if certificates:
        _keep_in_sync(app, certificates)
    config = uvicorn.Config(
        app, host=args.host, port=args.port, ssl_context_factory=lambda *_: tls.context,
        log_config=None, access_log=False, server_header=False, timeout_graceful_shutdown=GRACE,
        http=_Protocol, timeout_keep_alive=KEEP_ALIVE, limit_concurrency=args.max_connections,
    )
    probes = None
    if args.health_port is not None:
        probes = _Probes(uvicorn.Config(create_probe_app(parts), host=args.host, port=args.health_port,
                                        log_config=None, access_log=False, server_header=False, lifespan="off",
                                        http=_Protocol, timeout_keep_alive=KEEP_ALIVE))
    return Server(config, parts, probes)


# --- --self-managed-tls ---------------------------------------------------------------------------


def _self_managed(args: argparse.Namespace) -> SelfManagedTLS | None:
    """The certificate kept in the --self-managed-tls Secret, brought up to date once before serving."""
    if args.self_managed_tls is None:
        if args.webhook_configuration or args.tls_hosts:
            raise UsageError("--webhook-configuration and --tls-hosts go with --self-managed-tls")
        return None
    if args.dev or args.tls_cert or args.tls_key:
        raise UsageError("--self-managed-tls keeps its own certificate; leave out --dev, --tls-cert and --tls-key")
    if not (args.webhook_configuration and args.tls_hosts):
        raise UsageError("--self-managed-tls needs --webhook-configuration and --tls-hosts")
    namespace, secret = args.self_managed_tls
    try:
        settings = Settings(namespace, secret, args.webhook_configuration, args.tls_hosts,
                            args.certificate_validity, args.renew_before)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    certificates = SelfManagedTLS(Cluster(_connect(args), settings), settings)
    try:
        certificates.sync()
    except ClusterError as exc:
        certificates.stop()
        raise UsageError(f"--self-managed-tls: {exc}") from None
    return certificates


def _self_managed_tls(certificates: SelfManagedTLS, args: argparse.Namespace) -> LiveTLS:
    try:
        return LiveTLS(certificates.cert_path, certificates.key_path, args.client_ca)
    except TLSError as exc:
        certificates.stop()
        raise UsageError(str(exc)) from None


def _keep_in_sync(app: FastAPI, certificates: SelfManagedTLS) -> None:
    """Run the certificates' loop for as long as the app runs."""
    serve = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        certificates.start()
        try:
            async with serve(app) as state:
                yield state
        finally:
            await asyncio.to_thread(certificates.stop)

    app.router.lifespan_context = lifespan
