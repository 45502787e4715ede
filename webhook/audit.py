"""`vllm-env-guard audit`: the live objects of a cluster, through the engine, to a report.

What is reported: Services, ConfigMaps, and every workload not controlled by another listed
workload (a Deployment, not its ReplicaSets and Pods; a CronJob, not its Jobs; an
InferenceService, not the Deployment KServe made for it). Controlled workloads are consulted
only: their running Pods tell whether a service-link collision is latent.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from webhook.cli import UsageError
from webhook.cluster import SECRETS, Cluster, ClusterError, Progress, connect
from webhook.cluster_reports import ReportWriter
from webhook.engine import Inventory, Item, analyze
from webhook.findings import Finding, ObjectRef, Workload
from webhook.kube import containers, is_workload, pod_spec_sites, service_env
from webhook.kube.shapes import as_list, as_mapping, metadata
from webhook.lint import emit, exit_code, load_settings, output_stream, visible, write_to
from webhook.output import policyreport
from webhook.output.report import Report
from webhook.rules import CATALOG
from webhook.rules.service_link_collision import RULE as COLLISION

Object = Mapping[str, Any]


def run_audit(args: argparse.Namespace) -> int:
    if args.page_size < 1:
        raise UsageError("--page-size must be at least 1")
    _, settings = load_settings(args)
    progress = Progress(sys.stderr, verbose=args.verbose and not args.quiet)
    try:
        connection = connect(args.kubeconfig, args.context)
    except ClusterError as exc:
        raise UsageError(str(exc)) from None
    try:
        namespace = None if args.all_namespaces else args.namespace or connection.namespace
        snapshot, secrets = _read(Cluster(connection.api, args.page_size, progress), namespace, args, progress)
        workloads: list[Workload] = []
        findings = analyze([Item(obj) for obj in snapshot.reported], settings, context=secrets,
                           inventory=Inventory(complete=True, secrets_known=args.read_secrets), workloads=workloads)
        findings = visible([snapshot.latent(f) for f in findings], args.show_info)
        policy_reports = policyreport.reports(findings, snapshot.uids(), datetime.now(UTC))
        if args.write_reports:
            writer = ReportWriter(connection.api.custom)  # type: ignore[attr-defined]  # a KubeApi
            written = writer.write(policy_reports, namespace)
            if not args.quiet:
                progress.warn(str(written))
    except ClusterError as exc:
        raise UsageError(str(exc)) from None
    finally:
        connection.api.close()
    if args.format == "policyreport":
        with output_stream(args.output) as stream:
            write_to(stream, policyreport.render(policy_reports))
    else:
        emit(Report(findings=findings, files=0, objects=len(snapshot.reported), rules=list(CATALOG.values()),
                    workloads=workloads), args)
    return exit_code(findings)


def _read(cluster: Cluster, namespace: str | None, args: argparse.Namespace,
          progress: Progress) -> tuple[Snapshot, list[dict[str, Any]]]:
    """The objects to audit and, with --read-secrets, the Secrets their workloads reference."""
    snapshot = Snapshot(cluster.snapshot(namespace))
    if not snapshot.reported:
        progress.warn("no objects found" + (f' in namespace "{namespace}"' if namespace else ""))
    secrets = cluster.fetch(SECRETS, snapshot.secret_refs()) if args.read_secrets else []
    return snapshot, secrets


# --- objects -------------------------------------------------------------------------------


def _uid(obj: Object) -> str | None:
    return metadata(obj).get("uid")


def _identity(obj: Object) -> tuple[Any, ...]:
    """What a finding's ObjectRef holds: apiVersion, kind, namespace, name."""
    meta = metadata(obj)
    return obj.get("apiVersion"), obj.get("kind"), meta.get("namespace"), meta.get("name")


def _controller(obj: Object) -> str | None:
    """The uid of the object's controller (its ownerReference with `controller: true`)."""
    for ref in as_list(metadata(obj).get("ownerReferences")):
        if isinstance(ref, Mapping) and ref.get("controller") is True:
            return ref.get("uid")
    return None


def _time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp of the API (always UTC)."""
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return moment.replace(tzinfo=moment.tzinfo or UTC) if moment else None


def _started(pod: Object, container: str | None) -> datetime | None:
    """When `container` (else the Pod) last started, if it is running now."""
    status = as_mapping(pod.get("status"))
    if status.get("phase") != "Running":
        return None
    statuses = [*as_list(status.get("containerStatuses")), *as_list(status.get("initContainerStatuses"))]
    for entry in statuses:
        if isinstance(entry, Mapping) and entry.get("name") == container:
            return _time(as_mapping(as_mapping(entry.get("state")).get("running")).get("startedAt"))
    return _time(status.get("startTime"))


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


class Snapshot:
    """The listed objects, with controller ownership among workloads resolved."""

    def __init__(self, objects: Sequence[Object]) -> None:
        self._workloads = {uid: o for o in objects if is_workload(o) and (uid := _uid(o))}
        self.reported = [o for o in objects if not self._owned(o)]
        self._core: dict[tuple[str, str], list[Object]] = {}  # (kind, namespace) -> Services, Pods
        for obj in objects:
            kind, namespace = obj.get("kind"), metadata(obj).get("namespace")
            if obj.get("apiVersion") == "v1" and kind in ("Service", "Pod") and isinstance(namespace, str):
                self._core.setdefault((kind, namespace), []).append(obj)

    def _owned(self, obj: Object) -> bool:
        return is_workload(obj) and _controller(obj) in self._workloads

    def _root(self, obj: Object) -> Object:
        """The top of `obj`'s chain of controllers: the workload it is reported as."""
        seen = {_uid(obj)}
        while (owner := self._workloads.get(_controller(obj) or "")) is not None and _uid(owner) not in seen:
            seen.add(_uid(owner))
            obj = owner
        return obj

    def uids(self) -> dict[ObjectRef, str]:
        """The uid of each reported object, by the reference its findings carry."""
        return {ObjectRef(*_identity(obj)): uid for obj in self.reported if (uid := _uid(obj))}

    def secret_refs(self) -> list[tuple[str, str]]:
        """`(namespace, name)` of every Secret a reported workload's containers reference."""
        refs: dict[tuple[str, str], None] = {}
        for obj in self.reported:
            namespace = metadata(obj).get("namespace")
            if not isinstance(namespace, str):
                continue
            for site in pod_spec_sites(obj):
                for where in containers(site):
                    for name in _secret_names(where.container):
                        refs[(namespace, name)] = None
        return list(refs)

    def latent(self, finding: Finding) -> Finding:
        """A collision on a workload, with its Pods that run since before the Service came."""
        ref = finding.object
        if finding.rule != COLLISION.id or ref is None or ref.kind == "Service" or not finding.variable:
            return finding
        producers = [s for s in self._core.get(("Service", ref.namespace or ""), [])
                     if finding.variable in service_env(s)]
        created = [(t, s) for s in producers if (t := _time(metadata(s).get("creationTimestamp")))]
        if not created:
            return finding
        since, service = min(created, key=lambda pair: pair[0])
        identity = (ref.api_version, ref.kind, ref.namespace, ref.name)
        pods = [p for p in self._core.get(("Pod", ref.namespace or ""), []) if _identity(self._root(p)) == identity
                and (started := _started(p, finding.container)) is not None and started < since]
        if not pods:
            return finding
        name = f"{ref.namespace}/{metadata(service).get('name')}"
        return finding.with_(message=(
            f"{finding.message}; latent: {_plural(len(pods), 'running pod')} started before Service {name} "
            f"was created at {metadata(service).get('creationTimestamp')}; nothing has crashed yet, "
            "every restart, drain or rollout will"))


def _secret_names(container: Object) -> Iterator[str]:
    for entry in as_list(container.get("envFrom")):
        name = as_mapping(as_mapping(entry).get("secretRef")).get("name")
        if isinstance(name, str):
            yield name
    for entry in as_list(container.get("env")):
        name = as_mapping(as_mapping(as_mapping(entry).get("valueFrom")).get("secretKeyRef")).get("name")
        if isinstance(name, str):
            yield name
