"""env-parse-error: vLLM's parser raises on the value."""

from __future__ import annotations

from collections.abc import Iterator

from webhook.findings import Severity
from webhook.registry.history import Span, across
from webhook.registry.model import Outcome, Variable
from webhook.registry.versions import VERSION_ANNOTATION
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
    if subject.target.unknown:
        yield from _across_releases(subject)
        return
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


def _across_releases(subject: ValueSubject) -> Iterator[Hit]:
    """An unknown release: an error when the value raises on any release it may be."""
    if subject.from_service_link or subject.raw is None:
        return
    spans = across(subject.name, subject.env, subject.target.resolution.candidates)
    crashing = [span for span in spans if span.crashes]
    if not crashing:
        return
    first = crashing[0].outcome
    assert first is not None and first.error is not None
    error = (f"{first.error}: {subject.redact(first.message or '')}" if not subject.secret
             else f"{first.error} (message not shown: the value is secret)")
    elsewhere = [f"{_effect(span)} on {span.label}" for span in spans if not span.crashes]
    yield Hit(
        message=(f"{subject.name}={subject.shown()} crashes on {', '.join(s.label for s in crashing)} "
                 f"({error})" + (f"; {', '.join(elsewhere)}" if elsewhere else "")
                 + f" ({subject.target.resolution.reason})"),
        hint=f"pin the vLLM release with the annotation {VERSION_ANNOTATION}, and write a value it accepts",
        variable=subject.name,
    )


def _effect(span: Span) -> str:
    if span.outcome is None:
        return "ignored" if not span.known else "read only through other variables"
    return "accepted"
