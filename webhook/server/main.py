"""`vllm-env-guard serve`: wire the policy, certificate, cluster cache and app; run uvicorn.

SIGTERM: uvicorn stops accepting connections and finishes the requests in flight (at most
GRACE seconds), then the app's shutdown stops the reload task and the cache's threads; exit 0.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

import uvicorn
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
    """Cluster access for the cache: --kubeconfig, else in-cluster, else the default kubeconfig.
    None with --no-cluster, and with --dev unless --kubeconfig is given."""
    if args.no_cluster or (args.dev and not args.kubeconfig):
        return None
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
    tls = _tls(args)
    api_client = _api_client(args)
    options = policy.current.policy.cache
    cache = None
    if api_client is not None:
        cache = ClusterCache(lambda resource: resource.lister(api_client), configmaps=options.configmaps,
                             workloads=options.workloads)
    app = create_app(Parts(policy=policy, tls=tls, metrics=Metrics(), cache=cache, reload_interval=reload_interval))
    config = uvicorn.Config(
        app, host=args.host, port=args.port, ssl_context_factory=lambda *_: tls.context,
        log_config=None, access_log=False, server_header=False, timeout_graceful_shutdown=GRACE,
    )
    return uvicorn.Server(config)
