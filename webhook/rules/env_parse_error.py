"""env-parse-error: vLLM's parser raises on the value."""

from __future__ import annotations

from collections.abc import Iterator

from webhook.findings import Severity
from webhook.registry.model import Outcome, Variable
from webhook.rules.base import Rule
from webhook.rules.subjects import Hit, ValueSubject
from webhook.rules.wording import does, parser, reader_note, service_link_note, value_advice

RULE = Rule(
    id="env-parse-error",
    severity=Severity.ERROR,
    summary="vLLM's parser raises an exception on the value.",
    rationale=(
        "vLLM parses most variables with `int()`, `bool(int())` or `float()`: `VLLM_USE_V1=true` "
        "is `int(\"true\")`, a ValueError. From vLLM 0.11.1 every registry variable is parsed at "
        "engine start, so the engine does not start; before, the error comes when vLLM first "
        "reads the variable, which may be in the middle of serving."
    ),
    bad='env:\n- name: VLLM_USE_V1\n  value: "true"',
    good='env:\n- name: VLLM_USE_V1\n  value: "1"',
    fix='Write the value the way the parser expects it: `"1"`/`"0"` for `bool(int(...))` switches, a plain integer for ports and sizes.',
)


def check_value(subject: ValueSubject) -> Iterator[Hit]:
    for var, outcome in subject.explicit_outcomes():
        if outcome.error is None or var.kind.startswith("choice"):
            continue
        yield Hit(
            message=(f"{subject.name}={subject.shown()}: {does(subject, var, outcome)}"
                     f"{reader_note(subject, var)}, {_when(subject, var, outcome)}; "
                     f"parser: {parser(var)} ({subject.target.resolution.reason})"
                     f"{service_link_note(subject)}"),
            hint=value_advice(subject.target, var),
            variable=subject.name,
        )


def _when(subject: ValueSubject, var: Variable, outcome: Outcome) -> str:
    """When the error comes: past the getter (which accepts the value), or when it parses."""
    if outcome.after:
        return f"in {outcome.after}, after its getter accepted the value"
    return subject.target.when_parsed(var.name)
