"""check-incomplete: part of a container could not be checked within the work budget."""

from __future__ import annotations

from collections.abc import Iterator

from webhook.findings import Severity
from webhook.rules.base import Rule
from webhook.rules.subjects import ContainerSubject, Hit

RULE = Rule(
    id="check-incomplete",
    severity=Severity.ERROR,
    summary="The container is too large to check completely; what was left out may break vLLM.",
    rationale=(
        "Every check has a bounded cost, so that the admission webhook answers within the API "
        "server's deadline whatever the object holds. An object past those bounds (thousands of "
        "VLLM_* variables, `$(VAR)` references that expand to megabytes) is not waved through: "
        "the finding says what was not checked. It is an error when what was left out could "
        "still crash vLLM (an unknown value, or unknown variables with "
        "`--fail-on-environ-validation`), a warning otherwise."
    ),
    bad='env:\n- name: VLLM_X1\n  value: "1"\n# ... 40,000 more',
    good='env:\n- name: VLLM_LOGGING_LEVEL\n  value: INFO',
    fix="Remove the variables vLLM does not read, or set large values from a file.",
)


def check_container(subject: ContainerSubject) -> Iterator[Hit]:
    if not subject.incomplete:
        return
    target = subject.target
    unknown_values = any(reason.startswith("$(VAR)") for reason in subject.incomplete)
    fatal = subject.vllm_container and (unknown_values or target.fail_on_unknown)
    yield Hit(
        message="not checked completely: " + "; ".join(subject.incomplete),
        hint="remove the variables vLLM does not read, or set large values from a file",
        severity=None if fatal else Severity.WARNING,
    )
