"""env-no-effect: vLLM defines the name but setting it does nothing here."""

from __future__ import annotations

from collections.abc import Iterator

from webhook.findings import Severity
from webhook.rules.base import Rule
from webhook.rules.subjects import Hit, ValueSubject

RULE = Rule(
    id="env-no-effect",
    severity=Severity.WARNING,
    summary="A variable vLLM defines but that has no effect as set: read from another name, build-time only, or deprecated.",
    rationale=(
        "Some registry keys are not read from their own name (`VLLM_USE_HPU_CONTIGUOUS_CACHE_FETCH` "
        "reads `VLLM_CONTIGUOUS_PA`), some matter only when building vLLM (`CMAKE_BUILD_TYPE`, "
        "`VLLM_USE_PRECOMPILED`, `VLLM_TARGET_DEVICE` up to 0.27: no module of the release's wheel "
        "reads them), some are deprecated. Setting them on a "
        "running server changes nothing, though from 0.11.1 a bad value still crashes the engine."
    ),
    bad='env:\n- name: CMAKE_BUILD_TYPE\n  value: Release   # only used by setup.py',
    good="# build-time variables belong in the image build, not in the Deployment",
    fix="Remove the variable, or set the variable the getter really reads.",
)


def check_value(subject: ValueSubject) -> Iterator[Hit]:
    if subject.from_service_link:
        return
    var = subject.target.registry.get(subject.name)
    if var is None:
        return
    version = subject.target.version
    if not var.reads_own_name:
        reads = ", ".join(r for r in var.reads if r not in ("HOME",)) or "no variable"
        why, hint = (f"vLLM {version} defines {var.name} but its getter reads {reads}, not {var.name}",
                     f"set {reads} instead" if var.reads else "remove the variable")
    elif var.build_time:
        why, hint = (f"{var.name} is only used when building vLLM; vLLM {version} ignores it at run time",
                     "move it to the image build, or remove it")
    elif var.deprecated:
        why, hint = f"{var.name} is {var.deprecated} in vLLM {version}", "follow the replacement, or remove it"
    else:
        return
    yield Hit(message=f"{why} ({subject.target.resolution.reason})", hint=hint, variable=subject.name)
