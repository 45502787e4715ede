"""service-link-collision: a Service's injected variables include a name vLLM reads."""

from __future__ import annotations

from collections.abc import Iterator

from webhook.findings import Severity
from webhook.frameworks import created_by
from webhook.rules.base import Rule
from webhook.rules.subjects import Hit, LinksSubject, ServiceSubject, Target
from webhook.rules.wording import does

RULE = Rule(
    id="service-link-collision",
    severity=Severity.ERROR,
    summary="A Service's kubelet-injected variables collide with a variable vLLM reads.",
    rationale=(
        "For every Service with a cluster IP, the kubelet injects `<NAME>_SERVICE_HOST`, "
        "`<NAME>_PORT=tcp://<ip>:<port>` and more into every pod of the namespace, whether or "
        "not the Service selects it. A Service named `vllm` injects `VLLM_PORT=tcp://10.96.0.12:8000`; "
        "vLLM parses `VLLM_PORT` as an integer and the engine dies. vLLM's docs warn: never "
        "name a Service `vllm`. `vllm-dp-master` breaks `VLLM_DP_MASTER_PORT` the same way."
    ),
    bad='apiVersion: v1\nkind: Service\nmetadata:\n  name: vllm\nspec:\n  selector: {app: vllm}\n  ports: [{port: 8000}]',
    good='apiVersion: v1\nkind: Service\nmetadata:\n  name: llm-api\nspec:\n  selector: {app: vllm}\n  ports: [{port: 8000}]',
    fix=(
        "Rename the Service to a name that does not start with `vllm` (e.g. `llm-api`). Setting "
        "`enableServiceLinks: false` (or the variable itself) in a vLLM pod spec protects that "
        "workload, which is then clean; the Service stays an error until renamed, since every new "
        "pod of the namespace with service links still gets the variable."
    ),
)


def rename_suggestion(name: str) -> str:
    """A name whose variables start with LLM_ rather than VLLM_."""
    rest = name[4:] if name.startswith("vllm") else name
    return ("llm" + rest) if rest.startswith("-") or not rest else f"llm-{rest}"


def origin(subject: ServiceSubject) -> str:
    """` (made by RayService vllm's controller)` for a Service modelled from a custom resource."""
    owner = created_by(subject.service)
    return f" (made by {owner}'s controller)" if owner else ""


def breaks(subject: ServiceSubject) -> str:
    """Which vLLM workloads receive the variables now, or that none seen does."""
    if subject.affected:
        return f"; it breaks {', '.join(subject.affected)}"
    return (f"; no vLLM workload seen in namespace {subject.namespace} receives it now (none, or service "
            "links off, or the names set explicitly), but every new pod with service links will")


def check_service(subject: ServiceSubject) -> Iterator[Hit]:
    target = subject.target
    colliding = [n for n in subject.variables if target.knows(n)]
    if not colliding:
        return
    shown = ", ".join(f"{n}={subject.variables[n]}" for n in colliding[:3])
    consequences = []
    for name in colliding[:3]:
        env = {name: subject.variables[name]}
        for var in target.readers(name):
            outcome = target.registry.evaluate(var, env)
            consequences.append(f"raises {outcome.error}: {outcome.message}" if outcome.error
                                else f"reads {var.name} as {outcome.value!r}")
    yield Hit(
        message=(
            f'Rename Service "{subject.name}"{origin(subject)}: it injects {shown} into every pod of '
            f"namespace {subject.namespace} that has service links; vLLM {target.version} "
            f"({target.resolution.reason}) {'; '.join(consequences)}{breaks(subject)}"
        ),
        hint=(f'rename the Service (e.g. "{rename_suggestion(subject.name)}"); enableServiceLinks: false '
              "on a vLLM pod protects that pod only, not pods added later"),
        variable=colliding[0],
    )


def checks_link(name: str, target: Target) -> bool:
    return bool(target.readers(name))


def check_links(subject: LinksSubject) -> Iterator[Hit]:
    read = [v for v in subject.values if v.raw is not None and v.readers()]
    if not read or not subject.vllm_container:
        return
    first, var = read[0], read[0].readers()[0]
    outcome = first.outcome(var)
    yield Hit(
        message=(
            f"{subject.origin} injects {listing([f'{v.name}={v.raw}' for v in read])} into this container; "
            f"{first.name}: {does(first, var, outcome)}"
            + (f", {subject.target.when_parsed(var.name)}" if outcome.error else "")
            + f" ({subject.target.resolution.reason})"
        ),
        hint=("rename that Service to a name that does not start with \"vllm\", set "
              f"enableServiceLinks: false in this pod spec, or set {first.name} explicitly in env"),
        variable=first.name,
    )


def listing(items: list[str], shown: int = 12) -> str:
    """`a, b, c` and `... and 4 more` past `shown` items."""
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more
