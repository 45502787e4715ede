"""`vllm-env-guard serve`: wire the policy, certificate, cluster cache and app; run uvicorn.

SIGTERM: uvicorn stops accepting connections and finishes the requests in flight (at most
GRACE seconds), then the app's shutdown stops the reload task and the cache's threads; exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.config.config_exception import ConfigException

from webhook.cli import UsageError
from webhook.config import ConfigError
from webhook.server import logs
from webhook.server.app import Parts, create_app
from webhook.server.cache import ClusterCache
from webhook.server.metrics import Metrics
from webhook.server.policy import PolicyStore
from webhook.server.selfmanaged import Cluster, ClusterError, SelfManagedTLS, Settings
from webhook.server.tls import DEV_DIR, LiveTLS, TLSError, make_dev_certificates

GRACE = 20  # seconds for in-flight requests after SIGTERM (the API server's timeout is at most 30)


def run_serve(args: argparse.Namespace) -> int:
    logs.configure()
    server = build_server(args)
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


def build_server(args: argparse.Namespace, *, reload_interval: float = 1.0) -> uvicorn.Server:
    """The uvicorn server for `serve` arguments (not started)."""
    try:
        policy = PolicyStore(args.config)
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
    app = create_app(Parts(policy=policy, tls=tls, metrics=Metrics(), cache=cache, reload_interval=reload_interval))
    if certificates:
        _keep_in_sync(app, certificates)
    config = uvicorn.Config(
        app, host=args.host, port=args.port, ssl_context_factory=lambda *_: tls.context,
        log_config=None, access_log=False, server_header=False, timeout_graceful_shutdown=GRACE,
    )
    return uvicorn.Server(config)


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
