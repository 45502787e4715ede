"""env-value-too-large: a variable too long for the kernel to pass to the container."""

from __future__ import annotations

from collections.abc import Iterator

from webhook.findings import Severity
from webhook.kube.environment import MAX_ENV_STRING
from webhook.rules.base import Rule
from webhook.rules.subjects import ContainerSubject, Hit

RULE = Rule(
    id="env-value-too-large",
    severity=Severity.ERROR,
    summary=f"An environment variable is longer than the {MAX_ENV_STRING // 1024} KiB Linux allows one.",
    rationale=(
        "Linux refuses to start a program when one `NAME=VALUE` string of its environment is "
        f"longer than {MAX_ENV_STRING:,} bytes (MAX_ARG_STRLEN): `execve` fails with E2BIG "
        "(\"argument list too long\") and the container never starts. `$(VAR)` references make "
        "this easy to reach by accident: each reference copies the referenced value, and values "
        "that reference each other double in size at every step. The limit is checked after "
        "expansion, and the expansion stops as soon as the limit is certain to be passed."
    ),
    bad='env:\n- name: PROMPT\n  value: "<200 KB of text>"',
    good='volumeMounts:\n- name: prompts\n  mountPath: /etc/prompts  # a ConfigMap volume',
    fix="Put large content in a file (a ConfigMap or Secret volume) and pass its path instead.",
)


def check_container(subject: ContainerSubject) -> Iterator[Hit]:
    for var in subject.oversize:
        yield Hit(
            message=(f"{var.name} is longer than {MAX_ENV_STRING:,} bytes once set (value not shown): "
                     "the kernel refuses to start the container (execve: argument list too long)"),
            hint="move the content to a file (a ConfigMap or Secret volume) and pass its path",
            variable=var.name,
            at=var.entry,
        )
