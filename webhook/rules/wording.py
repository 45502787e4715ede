"""Shared phrasing: what vLLM does with a value, and how to write it instead."""

from __future__ import annotations

from webhook.registry import Outcome, Variable
from webhook.rules.subjects import Target, ValueSubject

_SWITCH_PROBES = ("1", "0", "true", "false")


def parser(var: Variable) -> str:
    text = var.expression
    return text if len(text) <= 120 else text[:117] + "..."


def does(subject: ValueSubject, var: Variable, outcome: Outcome) -> str:
    """`vLLM 0.8.1 raises ValueError: ...` / `vLLM 0.8.1 reads it as False`."""
    version = subject.target.version
    if subject.secret:  # what vLLM says or makes of a secret may quote it, in any spelling
        if outcome.error:
            return f"vLLM {version} raises {outcome.error} (message not shown: the value is secret)"
        return f"vLLM {version} reads it as a {type(outcome.value).__name__} (not shown: the value is secret)"
    if outcome.error:
        return f"vLLM {version} raises {outcome.error}: {outcome.message or ''}"
    return f"vLLM {version} reads it as {outcome.value!r}"


def reader_note(subject: ValueSubject, var: Variable) -> str:
    return "" if var.name == subject.name else f" (through {var.name}, whose getter reads {subject.name})"


def switch_spellings(target: Target, var: Variable) -> tuple[list[str], list[str]]:
    """Which of "1", "0", "true", "false" this getter reads as True, and which as False."""
    on, off = [], []
    for probe in _SWITCH_PROBES:
        outcome = target.registry.evaluate(var, {name: probe for name in (var.name,)})
        if outcome.ok and outcome.value is True:
            on.append(probe)
        elif outcome.ok and outcome.value is False:
            off.append(probe)
    return on, off


def switch_advice(target: Target, var: Variable) -> str:
    on, off = switch_spellings(target, var)
    if not on and not off:
        return ""
    parts = []
    if on:
        parts.append(f'"{on[0]}" to turn it on')
    parts.append(f'"{off[0]}" to turn it off' if off else "remove the variable to turn it off")
    return "use " + " and ".join(parts)


_KIND_ADVICE = {
    "int": 'use a plain decimal integer such as "8000"',
    "optional_int": 'use a plain decimal integer such as "8000"',
    "port": 'use a plain port number such as "8000"',
    "float": 'use a plain number such as "0.5"',
    "float_positive_else_default": 'use a positive number such as "10"',
    "json": "use valid JSON",
    "json_or_file": "use valid JSON (or the path of a JSON file that exists in the container)",
}


def value_advice(target: Target, var: Variable) -> str:
    return _KIND_ADVICE.get(var.kind) or switch_advice(target, var) or "fix the value or remove the variable"


def service_link_note(subject: ValueSubject) -> str:
    """For a value that looks injected by a Service: which Service names produce it."""
    from webhook.kube import services_that_produce

    raw = subject.raw or ""
    if not raw.startswith(("tcp://", "udp://", "sctp://")):
        return ""
    names = services_that_produce(subject.name)
    where = f' (a Service named "{names[0]}" injects {subject.name})' if names else ""
    return f"; this looks like a Kubernetes service-link value{where}"
