"""upgrade-change: what a vLLM upgrade changes for a workload (`lint --upgrade-to X`, and
admission of an UPDATE that changes a container's vLLM release)."""

from __future__ import annotations

from collections.abc import Iterator

from webhook.findings import Severity
from webhook.registry.history import differences
from webhook.rules.base import Rule
from webhook.rules.service_link_collision import listing
from webhook.rules.subjects import ContainerSubject, Hit

RULE = Rule(
    id="upgrade-change",
    severity=Severity.WARNING,
    summary="A setting of the workload changes meaning in the vLLM release it is upgraded to.",
    rationale=(
        "Upgrades are when environment settings break: `VLLM_USE_V1` and `VLLM_ATTENTION_BACKEND` "
        "disappear (the setting is silently ignored), `VLLM_KEEP_ALIVE_ON_ENGINE_DEATH=0` flips "
        "from True to False, a value the old parser accepted makes the new one raise, and a "
        "Service such as `vllm-nixl-side-channel` starts to collide with a variable the new "
        "release reads. Only reported with `lint --upgrade-to X`, and at admission when an update "
        "changes a container's vLLM release."
    ),
    bad='image: vllm/vllm-openai:v0.8.1   # upgraded to v0.33.0\nenv:\n- name: VLLM_USE_V1\n  value: "1"',
    good='image: vllm/vllm-openai:v0.33.0\nenv: []   # VLLM_USE_V1 is gone: V1 is the only engine',
    fix="Review each listed variable against the new release (`vllm-env-guard explain NAME=VALUE "
        "--vllm-version X`), then drop, rename or rewrite it.",
)


def check_container(subject: ContainerSubject) -> Iterator[Hit]:
    upgrade = subject.upgrade
    if upgrade is None or not subject.vllm_container or upgrade.version == subject.target.version:
        return
    old, new = subject.target.version, upgrade.version
    for name, var in subject.settings.items():
        for change in differences(name, var.value, old, new):
            secret = var.sensitive and change.what == "outcome"  # what vLLM says of it may quote it
            shown = f"{name}: what vLLM makes of its value changes (not shown: the value is secret)" if secret \
                else change.describe()
            yield Hit(
                message=f"from vLLM {old} to {new}: {shown}",
                hint=f"check it with: vllm-env-guard explain {name}=VALUE --vllm-version {new}",
                variable=name,
                at=var.entry,
            )
    for origin, names in subject.new_collisions.items():
        yield Hit(
            message=(f"from vLLM {old} to {new}: {origin} injects {listing(names)}, which vLLM {new} reads "
                     f"and {old} does not: it starts to collide"),
            hint="rename that Service, or set enableServiceLinks: false in this pod spec",
            variable=names[0],
        )
