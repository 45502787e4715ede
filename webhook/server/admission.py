"""AdmissionReview in, AdmissionReview out (research/k8s-semantics.md §4). Pure: no I/O.

The decision for one request:
1. DELETE, CONNECT, subresources (but ephemeralcontainers) and kinds without pod specs other than
   Services are allowed untouched.
2. The namespace's mode (label, else policy): `off` allows untouched.
3. Cluster state unknown (cache not synced, API failing): failureMode `deny` denies; `allow`
   checks the object with what is known and says so in a warning.
4. The engine's findings: errors deny in `enforce` mode and warn in `warn` mode; on UPDATE an
   error the old object already had only warns (unless `updates: enforce`); warnings warn;
   infos are dropped. Never a patch.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from webhook.budget import UNLIMITED, Budget
from webhook.detect import IGNORE_ANNOTATION
from webhook.engine import Inventory, Item, analyze
from webhook.findings import Finding, Severity, Workload
from webhook.kube import NamespaceLinks, is_workload
from webhook.rules import CATALOG
from webhook.rules.upgrade_change import RULE as UPGRADE
from webhook.server.policy import ServerPolicy, Snapshot

API_VERSIONS = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")
OPERATIONS = ("CREATE", "UPDATE", "DELETE", "CONNECT")
CHECKED_SUBRESOURCES = ("", "ephemeralcontainers")
WARNING_LENGTH = 120  # API docs: "Limit warnings to 120 characters if possible"
WARNINGS_BUDGET = 4096  # runes; past it the API server truncates every warning, then drops them
ERRORS_SHOWN = 10
DENIAL_BUDGET = 4096  # characters of a denial message (kubectl prints all of it)
DENIAL_LINE = 600  # characters of one error in a denial
DEFAULT_TIMEOUT = 10.0  # seconds; the API server's default timeoutSeconds
MAX_TIMEOUT = 30.0  # the largest timeoutSeconds a webhook configuration accepts


class InvalidReview(ValueError):
    """The body is not an AdmissionReview this server can answer (HTTP 400)."""


@dataclass(frozen=True)
class Request:
    """The parts of an AdmissionReview request the decision needs."""

    api_version: str
    uid: str
    operation: str
    kind: str
    namespace: str
    name: str
    obj: Mapping[str, Any] | None
    old: Mapping[str, Any] | None
    dry_run: bool
    sub_resource: str

    @property
    def ref(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind or 'object'} {where}{self.name or '<unnamed>'}"

    @property
    def is_service(self) -> bool:
        return self.obj is not None and _is_service(self.obj)


@dataclass(frozen=True)
class ClusterView:
    """What the cluster cache knows that matters to one request.

    `links`: the cache's service-link tables by namespace (kept current by its watch; read,
    never written). `configmaps`: the namespace's ConfigMaps, None when not watched or not
    synced (unknown). `namespace_labels`: None when unknown. `problem`: why the view may be
    incomplete.
    """

    links: Callable[[str], NamespaceLinks | None] | None = None
    configmaps: Mapping[str, Mapping[str, Any]] | None = None
    workloads: Sequence[Mapping[str, Any]] = ()
    namespace_labels: Mapping[str, str] | None = None
    problem: str | None = None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    note: str  # for logs: why
    message: str = ""  # the denial's status.message
    code: int = 403
    reason: str = "Forbidden"
    warnings: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = ()
    mode: str = ""
    failure: str | None = None  # why the failure mode applied: cache_unavailable, internal_error, timeout


# --- parsing ----------------------------------------------------------------------------------


def _mapping(value: Any, what: str, required: bool = True) -> Mapping[str, Any] | None:
    if value is None and not required:
        return None
    if not isinstance(value, Mapping):
        raise InvalidReview(f"{what} must be a JSON object" if value is not None else f"{what} is missing")
    return value


def _string(request: Mapping[str, Any], key: str) -> str:
    value = request.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidReview(f"request.{key} must be a string")
    return value


def _shown(value: Any) -> str:
    """A received value quoted in an error: printable and short."""
    if isinstance(value, Mapping | list):
        return "a JSON object" if isinstance(value, Mapping) else "a JSON array"
    return shorten(sanitize(repr(value[:80] if isinstance(value, str) else value)), 60)


def parse_review(body: Any) -> Request:
    """The request of an AdmissionReview (parsed JSON); InvalidReview says what is wrong."""
    review = _mapping(body, "the body")
    assert review is not None
    if review.get("kind") != "AdmissionReview":
        raise InvalidReview(f"kind must be AdmissionReview, got {_shown(review.get('kind'))}")
    api_version = review.get("apiVersion")
    if api_version not in API_VERSIONS:
        raise InvalidReview(f"apiVersion must be one of {', '.join(API_VERSIONS)}, got {_shown(api_version)}")
    request = _mapping(review.get("request"), "request")
    assert request is not None
    uid = _string(request, "uid")
    if not uid:
        raise InvalidReview("request.uid is missing")
    operation = _string(request, "operation")
    if operation not in OPERATIONS:
        raise InvalidReview(f"request.operation must be one of {', '.join(OPERATIONS)}, got {_shown(operation)}")
    kind = _mapping(request.get("kind"), "request.kind", required=False) or {}
    obj = _mapping(request.get("object"), "request.object", required=operation in ("CREATE", "UPDATE"))
    old = _mapping(request.get("oldObject"), "request.oldObject", required=False)
    dry_run = request.get("dryRun", False)
    if not isinstance(dry_run, bool) and dry_run is not None:
        raise InvalidReview("request.dryRun must be true or false")
    kind_name = kind.get("kind")
    return Request(
        api_version=api_version, uid=uid, operation=operation,
        kind=kind_name if isinstance(kind_name, str) else "",
        namespace=_string(request, "namespace"), name=_string(request, "name"),
        obj=_typed(obj, kind) if obj is not None else None, old=_typed(old, kind) if old is not None else None,
        dry_run=bool(dry_run), sub_resource=_string(request, "subResource"),
    )


def _typed(obj: Mapping[str, Any], kind: Mapping[str, Any]) -> Mapping[str, Any]:
    """`obj` with apiVersion/kind, taken from request.kind when the object lacks them."""
    if isinstance(obj.get("apiVersion"), str) and isinstance(obj.get("kind"), str):
        return obj
    group, version = kind.get("group") or "", kind.get("version") or ""
    return {**obj, "apiVersion": f"{group}/{version}" if group else version, "kind": kind.get("kind")}


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_timeout(text: str | None) -> float:
    """The `?timeout=` query parameter (a Go duration such as `10s` or `1m30s`) in seconds, at
    most 30; the API server's default when absent or unreadable."""
    if not text:
        return DEFAULT_TIMEOUT
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return DEFAULT_TIMEOUT
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    return min(seconds, MAX_TIMEOUT) if seconds > 0 else DEFAULT_TIMEOUT


# --- deciding ---------------------------------------------------------------------------------


def _is_service(obj: Mapping[str, Any]) -> bool:
    return obj.get("apiVersion") == "v1" and obj.get("kind") == "Service"


def is_checked(request: Request) -> bool:
    """Whether the request goes through the engine (else it is allowed untouched)."""
    return (request.operation in ("CREATE", "UPDATE") and request.obj is not None
            and request.sub_resource in CHECKED_SUBRESOURCES
            and (_is_service(request.obj) or is_workload(request.obj)))


def _allow(note: str, mode: str = "") -> Decision:
    return Decision(allowed=True, note=note, mode=mode)


def _findings(obj: Mapping[str, Any], snapshot: Snapshot, request: Request, view: ClusterView,
              budget: Budget, workloads: list[Workload] | None = None, upgrade_to: str | None = None) -> list[Finding]:
    namespace = request.namespace or "default"
    service = _is_service(obj)
    inventory = Inventory(shared=None if service else view.links, complete=view.configmaps is not None,
                          secrets_known=False)
    if view.configmaps is not None:
        inventory.configmaps[namespace] = view.configmaps
    settings = replace(snapshot.settings, namespace=namespace, upgrade_to=upgrade_to)
    context = view.workloads if service else ()
    return [f for f in analyze([Item(obj)], settings, context=context, inventory=inventory, budget=budget,
                               workloads=workloads) if f.severity is not Severity.INFO]


def _upgrade(request: Request, snapshot: Snapshot, view: ClusterView, budget: Budget,
             new: list[Workload]) -> list[Finding]:
    """On an UPDATE that changes a vLLM container's release: what changes meaning (upgrade-change)."""
    if request.operation != "UPDATE" or request.old is None:
        return []
    old: list[Workload] = []
    _findings(request.old, snapshot, request, view, budget, old)
    before = {w.container: w.vllm_version for w in old if w.runs_vllm and w.vllm_version}
    moved = [w.vllm_version for w in new if w.runs_vllm and w.vllm_version and before.get(w.container)
             not in (None, w.vllm_version)]
    if not moved:
        return []
    return [f for f in _findings(request.old, snapshot, request, view, budget, upgrade_to=moved[0])
            if f.rule == UPGRADE.id]


_RANK = {rule: index for index, rule in enumerate(CATALOG)}  # the catalog lists crash rules first


def _key(finding: Finding) -> tuple[str, str | None, str | None]:
    """What makes two findings 'the same problem' across an update (messages hold IPs etc.)."""
    return finding.rule, finding.container, finding.variable


def decide(request: Request, snapshot: Snapshot, view: ClusterView, budget: Budget = UNLIMITED) -> Decision:
    """The decision for one request, given the policy and what the cluster cache knows.
    Raises `webhook.budget.OutOfTime` once `budget` runs out."""
    if not is_checked(request):
        what = request.operation if request.operation not in ("CREATE", "UPDATE") else "this kind"
        return _allow(f"{what} is not checked")
    assert request.obj is not None
    policy = snapshot.policy
    mode = policy.mode_for(view.namespace_labels)
    if mode == "off":
        return _allow("namespace mode off", mode)
    notes: list[str] = []
    if view.problem:
        if policy.failure_mode == "deny":
            return failure(request, policy, view.problem, "cache_unavailable", code=503, reason="ServiceUnavailable")
        notes.append(f"vllm-env-guard: checked without cluster state ({view.problem}; failureMode: allow)")
    examined: list[Workload] = []
    findings = _findings(request.obj, snapshot, request, view, budget, examined)
    findings += _upgrade(request, snapshot, view, budget, examined)
    existing: set[tuple[str, str | None, str | None]] = set()
    if request.operation == "UPDATE" and request.old is not None and policy.updates == "warn":
        existing = {_key(f) for f in _findings(request.old, snapshot, request, view, budget)}
    errors: list[Finding] = []
    demoted: list[str] = []
    for f in findings:
        if f.severity is not Severity.ERROR:
            continue
        if mode == "warn":
            demoted.append(warning_text(f, "error, warn mode"))
        elif _key(f) in existing:
            demoted.append(warning_text(f, "error, pre-existing"))
        else:
            errors.append(f)
    warnings = fit_warnings([*notes, *demoted,
                             *(warning_text(f) for f in findings if f.severity is Severity.WARNING)])
    degraded = "cache_unavailable" if view.problem else None
    if errors:
        errors.sort(key=lambda f: _RANK.get(f.rule, len(_RANK)))  # most important first (stable)
        return Decision(allowed=False, note="errors found", message=denial_message(request, errors),
                        warnings=warnings, findings=tuple(findings), mode=mode, failure=degraded)
    return Decision(allowed=True, note="checked", warnings=warnings, findings=tuple(findings), mode=mode,
                    failure=degraded)


def failure(request: Request, policy: ServerPolicy, why: str, trigger: str, *,
            code: int = 500, reason: str = "InternalError") -> Decision:
    """The failure mode's answer when the object could not be checked properly."""
    if policy.failure_mode == "allow":
        text = f"vllm-env-guard: admitted unchecked (failureMode: allow): {why}"
        return Decision(allowed=True, note=f"failure mode: {trigger}", warnings=fit_warnings([text]),
                        failure=trigger)
    return Decision(allowed=False, note=f"failure mode: {trigger}", code=code, reason=reason,
                    message=sanitize(f"vllm-env-guard could not check {request.ref}: {why} "
                                     "(failureMode: deny); retry, or ask the cluster admin"),
                    failure=trigger)


# --- wording ----------------------------------------------------------------------------------


# C0/C1 controls (\n, \t, ESC, ...), lone surrogates (not valid UTF-8), bidi controls and
# marks (U+202E makes a terminal show text reversed), zero-width characters, and any whitespace
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\s]+")


def sanitize(text: str) -> str:
    """One line of valid UTF-8 without control, bidi or zero-width characters (the API server
    drops warnings with controls, and they could drive or mislead a terminal)."""
    return _UNSAFE.sub(" ", text).strip()


def shorten(text: str, limit: int = WARNING_LENGTH) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def warning_text(finding: Finding, tag: str = "") -> str:
    """`[rule-id] VARIABLE: message`, the variable left out when the message starts with it."""
    label = f"[{finding.rule}, {tag}]" if tag else f"[{finding.rule}]"
    message = sanitize(finding.message)
    if finding.variable and not message.startswith(finding.variable):
        message = f"{finding.variable}: {message}"
    return f"{label} {message}"


def fit_warnings(texts: Iterable[str]) -> tuple[str, ...]:
    """Sanitised, at most 120 characters each, no duplicates, in the order given, and in total
    within the API server's 4096-rune budget (so it never truncates or drops them itself); what
    does not fit is counted in a last warning."""
    unique = list(dict.fromkeys(t for t in (shorten(sanitize(x)) for x in texts) if t))
    kept: list[str] = []
    used = 0
    for index, text in enumerate(unique):
        reserve = WARNING_LENGTH if index < len(unique) - 1 else 0  # room for the "more" warning
        if used + len(text) + reserve > WARNINGS_BUDGET:
            kept.append(f"vllm-env-guard: {len(unique) - index} more warnings not shown; "
                        "run vllm-env-guard lint for all")
            break
        kept.append(text)
        used += len(text)
    return tuple(kept)


def _sentence(text: str) -> str:
    text = sanitize(text)
    return text if text.endswith((".", "!", "?")) else text + "."


def denial_message(request: Request, errors: Sequence[Finding]) -> str:
    """What kubectl prints after `denied the request:`: each error with its fix (in the engine's
    order, at most ERRORS_SHOWN, each shortened to DENIAL_LINE with its fix kept), then how to opt
    out; at most DENIAL_BUDGET characters in all."""
    count = f"{len(errors)} error{'s' if len(errors) > 1 else ''}"
    head = shorten(sanitize(f"{request.ref} would break vLLM ({count}):"), DENIAL_LINE)
    rules = ",".join(dict.fromkeys(sanitize(f.rule) for f in errors))
    tail = shorten(f'To accept this risk for this object, annotate it {IGNORE_ANNOTATION}: "{rules}".', DENIAL_LINE)
    more = "- and {} more; run vllm-env-guard lint for all"
    room = DENIAL_BUDGET - len(head) - len(tail) - len(more) - 12  # newlines and the count
    lines = [head]
    for index, f in enumerate(errors[:ERRORS_SHOWN]):
        where = f"container {sanitize(f.container)}: " if f.container else ""
        fix = shorten(f" Fix: {_sentence(f.hint)}", DENIAL_LINE // 3) if f.hint else ""
        line = shorten(f"- [{sanitize(f.rule)}] {where}{_sentence(f.message)}", DENIAL_LINE - len(fix)) + fix
        if len(line) + 1 > room:
            lines.append(more.format(len(errors) - index))
            break
        room -= len(line) + 1
        lines.append(line)
    else:
        if len(errors) > ERRORS_SHOWN:
            lines.append(more.format(len(errors) - ERRORS_SHOWN))
    lines.append(tail)
    return "\n".join(lines)


def review_response(request: Request, decision: Decision) -> dict[str, Any]:
    """The AdmissionReview answer, in the version received, uid echoed, never a patch."""
    response: dict[str, Any] = {"uid": request.uid, "allowed": decision.allowed}
    if not decision.allowed:
        response["status"] = {"code": decision.code, "reason": decision.reason, "message": decision.message}
    if decision.warnings:
        response["warnings"] = list(decision.warnings)
    return {"apiVersion": request.api_version, "kind": "AdmissionReview", "response": response}

