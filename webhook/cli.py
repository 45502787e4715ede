"""The `vllm-env-guard` command line: lint, explain, audit, serve, registry."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from webhook import __version__
from webhook.server.workers import DEFAULT_QUEUE_LIMIT, DEFAULT_SIZE

FORMATS = ("text", "json", "sarif", "junit", "github")


class UsageError(Exception):
    """Bad invocation or unusable input: exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vllm-env-guard",
        description="Stop broken vLLM deployments: service-link collisions and bad VLLM_* values.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    lint = commands.add_parser("lint", help="check manifests (files, directories, - for stdin)",
                               description="Check Kubernetes manifests offline. Exit 0: no "
                               "error-level findings; 1: errors found; 2: usage error or no input.")
    lint.add_argument("paths", nargs="*", metavar="PATH", help="files or directories (recursive); - reads stdin")
    _report_options(lint)
    lint.add_argument("--namespace", help="namespace of objects that name none (default: config, else 'default')")
    lint.add_argument("--skip-non-kubernetes", action="store_true",
                      help="skip YAML/JSON documents that are not Kubernetes objects (values files, CI "
                      "workflows) instead of reporting manifest-invalid; input without objects is then no error")

    explain = commands.add_parser("explain", help="say what vLLM does with NAME=VALUE settings",
                                  description="What vLLM does with each value. NAME without '=' means unset.")
    explain.add_argument("settings", nargs="+", metavar="NAME[=VALUE]")
    explain.add_argument("--vllm-version", help="vLLM release to assume (default: newest bundled)")
    explain.add_argument("--format", choices=("text", "json"), default="text")

    audit = commands.add_parser("audit", help="check the objects of a live cluster",
                                description="Check live objects; same formats and exit codes as lint.")
    audit.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)")
    audit.add_argument("--context", help="kubeconfig context to use")
    scope = audit.add_mutually_exclusive_group()
    scope.add_argument("--namespace", "-n", help="namespace to audit (default: the context's)")
    scope.add_argument("--all-namespaces", "-A", action="store_true", help="audit every namespace")
    audit.add_argument("--read-secrets", action="store_true",
                       help="read Secrets referenced by workloads to check their VLLM_* values (values are never printed)")
    audit.add_argument("--page-size", type=int, default=500, help="objects per list request (default 500)")
    audit.add_argument("--verbose", "-v", action="store_true",
                       help="progress on stderr even when it is not a terminal")
    _report_options(audit)

    serve = commands.add_parser("serve", help="run the admission webhook server")
    serve.add_argument("--port", type=int, default=8443)
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--tls-cert", help="PEM certificate (reloaded when it changes on disk)")
    serve.add_argument("--tls-key", help="PEM private key (reloaded when it changes on disk)")
    serve.add_argument("--client-ca", help="require client certificates signed by this CA (the API server's)")
    serve.add_argument("--dev", action="store_true",
                       help="make a throwaway CA and localhost certificate; no cluster unless --kubeconfig is given")
    serve.add_argument("--dev-dir", help="where --dev keeps its CA and certificate (default ~/.cache/vllm-env-guard/dev-certs)")
    serve.add_argument("--config", help="config file (reloaded when it changes)")
    serve.add_argument("--kubeconfig", help="cluster access for the Service cache (default: in-cluster, else $KUBECONFIG or ~/.kube/config)")
    serve.add_argument("--no-cluster", action="store_true", help="do not watch the cluster (no live Service awareness)")
    serve.add_argument("--health-port", type=int, metavar="PORT",
                       help="also serve /healthz, /readyz and /metrics over plain HTTP on this port (for probes "
                       "and scrapes that hold no client certificate)")
    serve.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info",
                       help="least severe JSON log lines written (default info)")
    serve.add_argument("--workers", type=_positive, default=DEFAULT_SIZE, metavar="N",
                       help=f"reviews checked at once, each on a worker thread (default {DEFAULT_SIZE})")
    serve.add_argument("--queue-limit", type=_positive, default=DEFAULT_QUEUE_LIMIT, metavar="N",
                       help="reviews waiting for a worker; past it a review gets the failure mode at once "
                       f"with a 'server busy' warning (default {DEFAULT_QUEUE_LIMIT})")
    serve.add_argument("--max-connections", type=_positive, default=256, metavar="N",
                       help="connections served at once; requests past it get HTTP 503 (default 256)")

    registry = commands.add_parser("registry", help="the bundled vLLM variable registries")
    actions = registry.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="variables of one release")
    listing.add_argument("--vllm-version", help="release (default: newest bundled)")
    listing.add_argument("--format", choices=("text", "json"), default="text")
    listing.add_argument("--versions", action="store_true", help="list the bundled releases instead")
    show = actions.add_parser("show", help="one variable: parser, default, choices, history")
    show.add_argument("variable")
    show.add_argument("--vllm-version", help="release (default: newest bundled)")
    show.add_argument("--format", choices=("text", "json"), default="text")
    importing = actions.add_parser("import", help="read a registry from vLLM's envs.py (by AST, never run)")
    source = importing.add_mutually_exclusive_group(required=True)
    source.add_argument("--wheel", metavar="vllm==X", help="a vLLM release on PyPI")
    source.add_argument("--envs-file", metavar="PATH", help="a vllm/envs.py file")
    source.add_argument("--installed", action="store_true", help="the vLLM installed in this Python")
    importing.add_argument("--output", "-o", help="write the registry as JSON here (default: stdout)")
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, got {text!r}")
    return value


def _report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", "-f", choices=FORMATS, default="text")
    parser.add_argument("--vllm-version", help="vLLM release to assume for every workload")
    parser.add_argument("--config", help="config file (default: ./.vllm-env-guard.yaml if present)")
    parser.add_argument("--show-info", action="store_true", help="also report info-level findings")
    parser.add_argument("--output", "-o", help="write the report to this file instead of stdout")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "lint":
            from webhook.lint import run_lint

            return run_lint(args)
        if args.command == "explain":
            from webhook.explain import run_explain

            return run_explain(args)
        if args.command == "audit":
            from webhook.audit import run_audit

            return run_audit(args)
        if args.command == "serve":
            from webhook.server.main import run_serve

            return run_serve(args)
        from webhook.registry.cli import run_registry

        return run_registry(args)
    except UsageError as exc:
        print(f"vllm-env-guard {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
