"""One setting across releases (unknown release, upgrades): grouping and differences."""

from __future__ import annotations

from webhook.registry import bundled_versions, load_registry
from webhook.registry.history import across, crashing, differences

ALL = bundled_versions()


def test_use_v1_true_crashes_on_exactly_the_releases_whose_getter_raises() -> None:
    spans = across("VLLM_USE_V1", {"VLLM_USE_V1": "true"}, ALL)
    assert [v for s in spans for v in s.versions] == ALL  # every release, in order, once
    raising = [v for s in crashing(spans) for v in s.versions]
    expected = [v for v in ALL if "VLLM_USE_V1" in load_registry(v)
                and not load_registry(v).evaluate("VLLM_USE_V1", {"VLLM_USE_V1": "true"}).ok]
    assert raising == expected and raising
    for left, right in zip(spans, spans[1:]):  # neighbours differ, or they would be one span
        assert (left.outcome, left.known) != (right.outcome, right.known)
    absent = [s for s in spans if s.outcome is None]
    assert absent and all(not s.known for s in absent)  # removed later: nothing reads it
    assert crashing(spans)[0].label.startswith("vLLM ")


def test_a_single_release_span_label() -> None:
    (span,) = across("VLLM_PORT", {"VLLM_PORT": "8000"}, ["0.8.1"])
    assert span.label == "vLLM 0.8.1" and span.outcome is not None and span.outcome.value == 8000


def test_differences_on_an_upgrade() -> None:
    newest = ALL[-1]
    removed = differences("VLLM_USE_V1", "1", "0.8.1", newest)
    assert [d.what for d in removed] == ["removed"]
    assert differences("VLLM_NOT_A_VARIABLE", "1", "0.8.1", newest) == []
    same = differences("VLLM_PORT", "8000", "0.8.1", "0.8.1")
    assert same == []
    logging = differences("VLLM_LOGGING_LEVEL", "debug", "0.8.1", "0.8.2")
    assert [d.what for d in logging] == ["outcome"]
    assert logging[0].before.startswith("raises ValueError") and logging[0].after == "'DEBUG'"
