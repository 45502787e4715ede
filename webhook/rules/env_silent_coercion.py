"""env-silent-coercion: vLLM accepts the value, but not as its writer meant it."""

from __future__ import annotations

from collections.abc import Iterator

from webhook.findings import Severity
from webhook.rules.base import Rule
from webhook.rules.subjects import Hit, ValueSubject
from webhook.rules.wording import does, parser, reader_note, switch_advice

RULE = Rule(
    id="env-silent-coercion",
    severity=Severity.WARNING,
    summary="vLLM accepts the value, but almost certainly not as meant.",
    rationale=(
        "vLLM's switches are parsed in half a dozen ways. Under `bool(os.getenv(...))` the string "
        '`"0"` is True; under `== "1"` the string `"true"` is False; under '
        '`.lower() in ("true", "1")` the string `"yes"` is False. No error, no log line: the '
        "deployment just runs with the opposite setting."
    ),
    bad='env:\n- name: VLLM_NO_USAGE_STATS\n  value: "true"   # == "1" is False: stats stay on',
    good='env:\n- name: VLLM_NO_USAGE_STATS\n  value: "1"',
    fix="Use the spelling the parser of your vLLM version reads the way you mean; `explain` shows it.",
)


def check_value(subject: ValueSubject) -> Iterator[Hit]:
    for var, outcome in subject.explicit_outcomes():
        if outcome.surprise is None:
            continue
        advice = switch_advice(subject.target, var) if var.name == subject.name else ""
        yield Hit(
            message=(f"{subject.name}={subject.shown()}: {does(subject, var, outcome)}"
                     f"{reader_note(subject, var)}: {subject.redact(outcome.surprise)}; "
                     f"parser: {parser(var)} ({subject.target.resolution.reason})"),
            hint=advice or "check what the variable should be; `vllm-env-guard explain` shows what vLLM makes of it",
            variable=subject.name,
        )
