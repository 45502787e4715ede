"""env-invalid-choice: the value is not one of the values vLLM accepts."""

from __future__ import annotations

from collections.abc import Iterator

from webhook.findings import Severity
from webhook.rules.base import Rule
from webhook.rules.subjects import Hit, ValueSubject
from webhook.rules.wording import does, reader_note

RULE = Rule(
    id="env-invalid-choice",
    severity=Severity.ERROR,
    summary="The value is not one of the fixed set of values vLLM accepts for the variable.",
    rationale=(
        "Variables such as `VLLM_WORKER_MULTIPROC_METHOD`, `VLLM_ATTENTION_BACKEND` or "
        "`CMAKE_BUILD_TYPE` take one of a fixed set of values, checked by `env_with_choices`; "
        "most checks are case-sensitive (`Spawn` is not `spawn`) and an empty string is not "
        "unset. vLLM raises ValueError on anything else."
    ),
    bad='env:\n- name: VLLM_WORKER_MULTIPROC_METHOD\n  value: Spawn',
    good='env:\n- name: VLLM_WORKER_MULTIPROC_METHOD\n  value: spawn',
    fix="Use one of the listed values, spelled exactly (case included), or remove the variable.",
)


def check_value(subject: ValueSubject) -> Iterator[Hit]:
    if subject.target.unknown:  # env-parse-error reports a crash on any release in the range
        return
    for var, outcome in subject.explicit_outcomes():
        if outcome.error is None or not var.kind.startswith("choice"):
            continue
        choices = list(var.choices or ())
        near = [c for c in choices if c.lower() == (subject.raw or "").strip().lower()]
        hint = (f'did you mean "{near[0]}"? the choices are case-sensitive' if near and var.case_sensitive
                else f"use one of: {', '.join(choices)}" if choices else "use a value vLLM accepts")
        yield Hit(
            message=(f"{subject.name}={subject.shown()}: {does(subject, var, outcome)}"
                     f"{reader_note(subject, var)}, {subject.target.when_parsed(var.name)} "
                     f"({subject.target.resolution.reason})"),
            hint=hint,
            variable=subject.name,
        )
