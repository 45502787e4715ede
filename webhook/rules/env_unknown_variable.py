"""env-unknown-variable: a VLLM_* name the target vLLM does not read."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterator

from webhook.findings import Severity
from webhook.registry.store import load_registry, releases_with
from webhook.rules.base import Rule
from webhook.rules.subjects import Hit, Target, ValueSubject

LONGEST_SUGGESTED = 64  # a suggestion search costs O(len(name)); vLLM's names are shorter

RULE = Rule(
    id="env-unknown-variable",
    severity=Severity.WARNING,
    summary="A VLLM_* variable that the target vLLM version does not read.",
    rationale=(
        "vLLM ignores variables it does not know: a typo (`VLLM_ATENTION_BACKEND`), a variable "
        "removed in the version you run (`VLLM_USE_V1` after 0.11.0), or one added later. "
        "vLLM 0.17+ logs unknown `VLLM_*` names at start and, with `--fail-on-environ-validation`, "
        "refuses to start (then this is an error)."
    ),
    bad='env:\n- name: VLLM_ATENTION_BACKEND\n  value: FLASHINFER',
    good='env:\n- name: VLLM_ATTENTION_BACKEND\n  value: FLASHINFER',
    fix="Fix the name, or remove the variable if your vLLM version no longer has it.",
)


def check_value(subject: ValueSubject) -> Iterator[Hit]:
    target = subject.target
    if subject.from_service_link or not subject.name.startswith("VLLM_") or target.knows(subject.name):
        return
    if target.unknown and any(load_registry(v).knows(subject.name) for v in target.resolution.candidates):
        return  # some release it may run reads it
    history = releases_with(subject.name)
    if history:
        where = f"; it exists in vLLM {_span(history)}"
        hint = "remove it, or run a vLLM version that reads it"
    else:
        close = _close(subject.name, target)
        where = f" (did you mean {close[0]}?)" if close else ""
        hint = f"rename it to {close[0]}" if close else "check the name against `vllm-env-guard registry list`"
    fatal = target.fail_on_unknown and target.registry.facts.validates_unknown
    consequence = (" and --fail-on-environ-validation makes the engine refuse to start" if fatal
                   else ", so the setting is ignored" + (
                       " (vLLM logs it as unknown at start)" if target.registry.facts.validates_unknown else ""))
    yield Hit(
        message=(f"{subject.name} is not a variable {_readers(target)} reads{where}"
                 f"{consequence} ({target.resolution.reason})"),
        hint=hint,
        variable=subject.name,
        severity=Severity.ERROR if fatal else None,
    )


def _readers(target: Target) -> str:
    if target.unknown:
        candidates = target.resolution.candidates
        return f"any vLLM release from {candidates[0]} to {candidates[-1]}"
    return f"vLLM {target.version}"


def _close(name: str, target: Target) -> list[str]:
    """The known name `name` is likely a typo of (none for names longer than any real one)."""
    return list(_suggestion(name, target.version)) if len(name) <= LONGEST_SUGGESTED else []


@functools.lru_cache(maxsize=4096)  # a Deployment's names come back in its ReplicaSets and Pods
def _suggestion(name: str, version: str) -> tuple[str, ...]:
    # difflib's ratio is 2*matches/(len(a)+len(b)): at 0.8 the lengths are within a factor 1.5
    near = [n for n in load_registry(version).names() if 2 * len(name) <= 3 * len(n) and 2 * len(n) <= 3 * len(name)]
    return tuple(difflib.get_close_matches(name, near, n=1, cutoff=0.8))


def _span(versions: list[str]) -> str:
    return versions[0] if len(versions) == 1 else f"{versions[0]} to {versions[-1]}"
