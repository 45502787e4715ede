"""`audit --write-reports`: apply our PolicyReports to the cluster.

Each report is created, or replaced (on the resourceVersion read, retried on a conflict) when ours
already exists; a report of that name without our managed-by label is someone else's and is left
alone (an error). Our reports in the audited scope that the audit no longer produces (their
findings are gone) are deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from webhook.cluster import REQUEST_TIMEOUT, ClusterError, Resource, _api_error
from webhook.output.policyreport import API_VERSION, MANAGED_BY, REPORT_NAME, Report

_GROUP, _VERSION = API_VERSION.split("/")
POLICY_REPORTS = Resource(_GROUP, _VERSION, "policyreports", "PolicyReport")
CLUSTER_POLICY_REPORTS = Resource(_GROUP, _VERSION, "clusterpolicyreports", "ClusterPolicyReport", namespaced=False)
_ATTEMPTS = 3  # replace conflicts (someone else wrote the report between our read and write)


@dataclass
class Written:
    created: int = 0
    updated: int = 0
    deleted: int = 0

    def __str__(self) -> str:
        return f"PolicyReports: {self.created} created, {self.updated} updated, {self.deleted} deleted"


class ReportWriter:
    """Applies reports through the API server's custom objects endpoints."""

    def __init__(self, api: client.CustomObjectsApi) -> None:
        self.api = api

    def write(self, reports: Sequence[Report], namespace: str | None) -> Written:
        """Apply `reports`; delete our others in `namespace` (None: every namespace and the cluster report)."""
        written = Written()
        current = {(r["metadata"].get("namespace"), r["kind"]) for r in reports}
        for stale in self._ours(namespace):
            if (stale["metadata"].get("namespace"), stale["kind"]) not in current:
                self._delete(stale)
                written.deleted += 1
        for item in reports:
            if self._apply(item):
                written.created += 1
            else:
                written.updated += 1
        return written

    def _ours(self, namespace: str | None) -> list[dict[str, Any]]:
        """Our reports in scope: labelled as ours and named as ours."""
        selector = "=".join(MANAGED_BY)
        scopes = [(POLICY_REPORTS, namespace)] + ([(CLUSTER_POLICY_REPORTS, None)] if namespace is None else [])
        found = []
        for resource, where in scopes:
            scope = (where,) if where else ()
            lister = self.api.list_namespaced_custom_object if where else self.api.list_cluster_custom_object
            try:
                listing = lister(_GROUP, _VERSION, *scope, resource.plural, label_selector=selector,
                                 _request_timeout=REQUEST_TIMEOUT)
            except ApiException as exc:  # 404 here: the CRD is not installed
                raise self._error(exc, "list", resource, where) from None
            found += [{**item, "kind": resource.kind} for item in listing.get("items") or []
                      if item["metadata"]["name"] == REPORT_NAME]
        return found

    def _apply(self, item: Report) -> bool:
        """Create or replace one report; True when it was created."""
        resource = POLICY_REPORTS if item["kind"] == "PolicyReport" else CLUSTER_POLICY_REPORTS
        namespace = item["metadata"].get("namespace")
        for _ in range(_ATTEMPTS):
            existing = self._get(resource, namespace)
            try:
                if existing is None:
                    self._call("create", resource, namespace, body=item)
                    return True
                labels = existing["metadata"].get("labels") or {}
                if labels.get(MANAGED_BY[0]) != MANAGED_BY[1]:
                    where = f" in namespace {namespace}" if namespace else ""
                    raise ClusterError(f"{resource.kind} {REPORT_NAME}{where} exists and is not ours (no label "
                                       f"{'='.join(MANAGED_BY)}): not overwritten")
                body = {**item, "metadata": {**item["metadata"],
                                             "resourceVersion": existing["metadata"]["resourceVersion"]}}
                self._call("replace", resource, namespace, body=body)
                return False
            except ApiException as exc:
                if exc.status != 409:  # 409: written or created meanwhile; read it again
                    raise self._error(exc, "create" if existing is None else "update", resource, namespace) from None
        raise ClusterError(f"cannot write {resource.kind} {REPORT_NAME}: it kept changing while we wrote it")

    def _get(self, resource: Resource, namespace: str | None) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self._call("get", resource, namespace)
            return found
        except ApiException as exc:
            if exc.status == 404:  # the CRD is served (we listed it): no such report yet
                return None
            raise self._error(exc, "get", resource, namespace) from None

    def _delete(self, item: dict[str, Any]) -> None:
        resource = POLICY_REPORTS if item["kind"] == "PolicyReport" else CLUSTER_POLICY_REPORTS
        namespace = item["metadata"].get("namespace")
        try:
            self._call("delete", resource, namespace)
        except ApiException as exc:
            if exc.status != 404:  # already gone
                raise self._error(exc, "delete", resource, namespace) from None

    def _call(self, verb: str, resource: Resource, namespace: str | None, body: Any = None) -> Any:
        """`verb` (get, create, replace, delete) on our report of `resource` in `namespace`."""
        scope = "namespaced" if namespace else "cluster"
        method = getattr(self.api, f"{verb}_{scope}_custom_object")
        args: list[Any] = [_GROUP, _VERSION, *([namespace] if namespace else []), resource.plural]
        if verb != "create":
            args.append(REPORT_NAME)
        if body is not None:
            args.append(body)
        return method(*args, _request_timeout=REQUEST_TIMEOUT)

    @staticmethod
    def _error(exc: ApiException, verb: str, resource: Resource, namespace: str | None) -> ClusterError:
        if exc.status == 404 and verb == "list":
            return ClusterError(f"the API server does not serve {resource}/{_VERSION}: install the PolicyReport "
                                "CRDs (Kyverno and Policy Reporter ship them) or leave out --write-reports")
        where = f' in namespace "{namespace}"' if namespace else ""
        return _api_error(exc, f"{verb} {resource} {REPORT_NAME!r}{where}", verb, resource)

