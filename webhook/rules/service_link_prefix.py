"""service-link-prefix: a Service injects VLLM_* names that vLLM does not read."""

from __future__ import annotations

from collections.abc import Iterator

from webhook.findings import Severity
from webhook.rules.base import Rule
from webhook.rules.service_link_collision import listing, origin, rename_suggestion
from webhook.rules.subjects import Hit, LinksSubject, ServiceSubject, Target

RULE = Rule(
    id="service-link-prefix",
    severity=Severity.WARNING,
    summary="A Service injects VLLM_-prefixed variables that vLLM does not read (yet).",
    rationale=(
        "A Service named `vllm-router` injects `VLLM_ROUTER_SERVICE_HOST`, `VLLM_ROUTER_PORT`, ... "
        "into every pod of its namespace. vLLM 0.17+ logs each unknown `VLLM_*` name at start and "
        "refuses to start on them with `--fail-on-environ-validation`; and the day a vLLM release "
        "adds a variable of that name, the Service becomes a crash."
    ),
    bad='apiVersion: v1\nkind: Service\nmetadata:\n  name: vllm-router\nspec:\n  ports: [{port: 80}]',
    good='apiVersion: v1\nkind: Service\nmetadata:\n  name: llm-router\nspec:\n  ports: [{port: 80}]',
    fix="Rename the Service so its name does not start with `vllm`, or set `enableServiceLinks: false` on the vLLM pods.",
)


def check_service(subject: ServiceSubject) -> Iterator[Hit]:
    unread = [n for n in subject.variables if n.startswith("VLLM_") and not subject.target.knows(n)]
    if not unread:
        return
    listed = ", ".join(unread[:3]) + (f" and {len(unread) - 3} more" if len(unread) > 3 else "")
    facts = subject.target.registry.facts
    effect = ("logs each as an unknown vLLM environment variable at start" if facts.validates_unknown
              else "ignores them today, but a later release that adds one of these names will crash")
    yield Hit(
        message=(f'Service "{subject.name}"{origin(subject)} injects {listed} into every pod of namespace '
                 f"{subject.namespace}; vLLM {subject.target.version} does not read them and {effect}"),
        hint=f'rename the Service (e.g. "{rename_suggestion(subject.name)}") or set enableServiceLinks: false on the vLLM pods',
        variable=unread[0],
    )


def checks_link(name: str, target: Target) -> bool:
    return target.fail_on_unknown and name.startswith("VLLM_") and not target.knows(name)


def check_links(subject: LinksSubject) -> Iterator[Hit]:
    target = subject.target
    if not (subject.vllm_container and target.fail_on_unknown):
        return
    unknown = [v.name for v in subject.values if v.name.startswith("VLLM_") and not target.knows(v.name)]
    if unknown:
        yield Hit(
            message=(f"{subject.origin} injects {listing(unknown)}, which vLLM {target.version} does not "
                     "know; with --fail-on-environ-validation the engine refuses to start"),
            hint="rename that Service, set enableServiceLinks: false, or drop --fail-on-environ-validation",
            variable=unknown[0],
            severity=Severity.ERROR,
        )
