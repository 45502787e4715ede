"""The `vllm-env-guard` command line: lint, explain, audit, serve, registry."""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import re
import sys
from collections.abc import Sequence
from typing import Any

from webhook import __version__
from webhook.server.workers import DEFAULT_QUEUE_LIMIT, DEFAULT_SIZE

_PROG = "vllm-env-guard"
FORMATS = ("text", "json", "sarif", "junit", "github")
AUDIT_FORMATS = (*FORMATS, "policyreport")
SERVER_EXTRA = "pip install 'vllm-env-guard[server]'"
# What `serve` and `audit` import beyond the base install (the `server` extra).
SERVER_MODULES = frozenset({"fastapi", "uvicorn", "h11", "starlette", "kubernetes", "prometheus_client", "cryptography"})


class UsageError(Exception):
    """Bad invocation or unusable input: exit code 2."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose subcommands reject unknown options with their own usage line."""

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras and self.prog != _PROG:  # a subcommand: the top level would print its own usage
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


def write_stdout(text: str) -> None:
    """Write to stdout; a reader that went away (`| head`) ends the output, not the command."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        _discard_stdout()


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush does not fail again."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (tests capture it)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=_PROG,
        description="Stop broken vLLM deployments: service-link collisions and bad VLLM_* values.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    lint = commands.add_parser("lint", help="check manifests (files, directories, - for stdin)",
                               description="Check Kubernetes manifests offline. Exit 0: no "
                               "error-level findings; 1: errors found; 2: usage error or no input.")
    lint.add_argument("paths", nargs="*", metavar="PATH", help="files or directories (recursive); - reads stdin")
    _report_options(lint, FORMATS)
    lint.add_argument("--namespace", help="namespace of objects that name none (default: config, else 'default')")
    lint.add_argument("--apply-together", action="store_true",
                      help="pair objects across files as one `kubectl apply -f DIR` would (default: objects "
                      "pair across files only when they state the same namespace; objects naming no "
                      "namespace pair only within their own file or stream)")
    lint.add_argument("--upgrade-to", metavar="VERSION",
                      help="also report what changes meaning for each vLLM workload when it moves from its "
                      "release to VERSION (rule upgrade-change): variables removed, defaults changed, values "
                      "that start or stop crashing, Services that start to collide")
    lint.add_argument("--skip-non-kubernetes", action="store_true",
                      help="skip YAML/JSON documents that are not Kubernetes objects (values files, CI "
                      "workflows) instead of reporting manifest-invalid; input without objects is then no error")

    explain = commands.add_parser(
        "explain", help="say what vLLM does with NAME=VALUE settings",
        description="What vLLM does with each value. NAME without '=' means unset; the arguments form one "
        "environment, so each NAME may appear once. Exit 0: no error-level finding; 1: vLLM would fail on a "
        "value (an error-level finding); 2: usage error.")
    explain.add_argument("settings", nargs="+", metavar="NAME[=VALUE]")
    explain.add_argument("--vllm-version", help="vLLM release to assume (default: newest bundled)")
    explain.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")

    audit = commands.add_parser("audit", help="check the objects of a live cluster (needs the server extra)",
                                description="Check live objects; same formats and exit codes as lint, plus "
                                "--format policyreport (wgpolicyk8s.io/v1alpha2 PolicyReports) and "
                                "--write-reports. Needs the server extra: " + SERVER_EXTRA)
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
    audit.add_argument("--write-reports", action="store_true",
                       help="also create or update a PolicyReport per audited namespace (ClusterPolicyReport for "
                       "cluster-scoped objects) named vllm-env-guard, and delete the ones whose findings are gone; "
                       "needs the wgpolicyk8s.io CRDs")
    _report_options(audit, AUDIT_FORMATS)

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
    _self_managed_options(serve)
    serve.add_argument("--health-port", type=int, metavar="PORT",
                       help="also serve /healthz, /readyz and /metrics over plain HTTP on this port (for probes "
                       "and scrapes that hold no client certificate)")
    serve.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info",
                       help="least severe JSON log lines written (default info)")
    serve.add_argument("--workers", type=_positive, default=DEFAULT_SIZE, metavar="N",
                       help=f"reviews checked at once, each on a worker thread (default {DEFAULT_SIZE})")
    serve.add_argument("--inline-limit", type=int, default=64 * 1024, metavar="BYTES",
                       help="reviews up to this size are checked on the event loop, larger ones on the worker "
                       "pool; 0: every review on the pool (default 65536)")
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
    _registry_options(lint, explain, serve, actions)
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, got {text!r}")
    return value


def _registry_options(lint: argparse.ArgumentParser, explain: argparse.ArgumentParser,
                      serve: argparse.ArgumentParser, actions: argparse._SubParsersAction) -> None:
    """--registry-dir for the commands that analyse, and `registry update` / `registry images`."""
    for command in (lint, explain, serve):
        command.add_argument("--registry-dir", metavar="DIR", type=_registry_dir,
                             help="also know the vLLM releases `registry update` wrote into DIR "
                             "(config key registryDir)")
    update = actions.add_parser("update", help="import vLLM releases newer than the bundled ones from PyPI",
                                description="Import the vLLM releases on PyPI newer than every bundled "
                                "one into DIR; lint, explain and serve use them with --registry-dir DIR.")
    update.add_argument("--dir", help="where to write (default: ~/.cache/vllm-env-guard/registries)")
    images = actions.add_parser("images", help="the distribution table: images that ship vLLM without a version tag")
    images.add_argument("--format", choices=("text", "json"), default="text")
    images.add_argument("image", nargs="?", help="resolve this image reference instead of listing the table")


def _registry_dir(directory: str) -> str:
    """--registry-dir: the releases in DIR are known from here on (a usage error if DIR has none)."""
    from webhook.registry.store import use_directory

    try:
        use_directory(directory)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return directory


def _report_options(parser: argparse.ArgumentParser, formats: Sequence[str]) -> None:
    shown = "report format" + ("; policyreport: wgpolicyk8s.io/v1alpha2 PolicyReports, one per namespace, as a "
                               "kind: List" if "policyreport" in formats else "")
    parser.add_argument("--format", "-f", choices=formats, default="text", help=f"{shown} (default: text)")
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="text format: print only the summary line (the exit code is unchanged)")
    parser.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                        help="colour the text format; auto: when stdout is a terminal, NO_COLOR is unset or "
                        "empty and TERM is not dumb (default: auto)")
    parser.add_argument("--vllm-version", help="vLLM release to assume for every workload")
    parser.add_argument("--config", help="config file (default: ./.vllm-env-guard.yaml if present)")
    parser.add_argument("--show-info", action="store_true", help="also report info-level findings")
    parser.add_argument("--output", "-o", help="write the report to this file instead of stdout")


def _self_managed_options(serve: argparse.ArgumentParser) -> None:
    group = serve.add_argument_group(
        "self-managed certificates (docs/tls.md)",
        "Keep a CA and a serving certificate in a Secret shared by all replicas, renew them before "
        "they expire and keep the webhook configuration's caBundle in step; instead of --tls-cert/--tls-key. "
        "Cluster access as for the cache (--kubeconfig, else in-cluster), even with --no-cluster.")
    group.add_argument("--self-managed-tls", metavar="NAMESPACE/SECRET", type=secret_reference,
                       help="the Secret holding ca.crt, ca.key, tls.crt and tls.key (created when missing)")
    group.add_argument("--webhook-configuration", metavar="NAME",
                       help="the ValidatingWebhookConfiguration whose webhooks get the CA as caBundle")
    group.add_argument("--tls-hosts", metavar="H1,H2", type=host_list,
                       help="DNS names and IP addresses of the serving certificate, e.g. NAME.NAMESPACE.svc")
    group.add_argument("--certificate-validity", metavar="DURATION", type=duration, default="90d",
                       help="lifetime of the serving certificate (default: 90d; the CA lives 4 times as long); "
                       "durations: 90d, 720h, 30m, 10s")
    group.add_argument("--renew-before", metavar="DURATION", type=duration, default="30d",
                       help="renew the serving certificate this long before it expires (default: 30d)")


DURATION_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}  # seconds, largest first
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def duration(text: str) -> dt.timedelta:
    """`90d`, `720h`, `30m`, `10s`: a whole number and one unit."""
    match = re.fullmatch(r"([0-9]+)([dhms])", text.strip())
    if not match or int(match[1]) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 90d, 720h, 30m or 10s")
    return dt.timedelta(seconds=int(match[1]) * DURATION_UNITS[match[2]])


def secret_reference(text: str) -> tuple[str, str]:
    """`NAMESPACE/SECRET` as (namespace, name), both valid Kubernetes names."""
    namespace, _, name = text.partition("/")
    if not (_DNS_LABEL.fullmatch(namespace) and len(namespace) <= 63 and len(name) <= 253
            and all(_DNS_LABEL.fullmatch(part) for part in name.split("."))):
        raise argparse.ArgumentTypeError(f"{text!r} is not NAMESPACE/SECRET (lowercase Kubernetes names)")
    return namespace, name


def host_list(text: str) -> tuple[str, ...]:
    """Comma-separated DNS names and IP addresses (IPs in their canonical form)."""
    hosts = []
    for host in filter(None, (part.strip().lower() for part in text.split(","))):
        try:
            hosts.append(str(ipaddress.ip_address(host)))
            continue
        except ValueError:
            pass
        if len(host) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in host.split(".")):
            raise argparse.ArgumentTypeError(f"{host!r} is neither a DNS name nor an IP address")
        hosts.append(host)
    if not hosts:
        raise argparse.ArgumentTypeError("no host given")
    return tuple(dict.fromkeys(hosts))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except UsageError as exc:
        print(f"{_PROG} {args.command}: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        if args.command not in ("serve", "audit") or (exc.name or "").partition(".")[0] not in SERVER_MODULES:
            raise
        print(f"{_PROG} {args.command}: needs the server extra ({exc.name} is not installed): {SERVER_EXTRA}",
              file=sys.stderr)
        return 2
    except BrokenPipeError:  # output written outside write_stdout
        _discard_stdout()
        return 1
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace) -> int:
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
