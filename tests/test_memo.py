"""webhook.memo.Memo: bounded, and keeps nothing for long request strings."""

from webhook.frameworks import CATALOG, Catalog
from webhook.memo import Memo
from webhook.registry import resolve_known


def test_computes_once_and_stays_within_its_size() -> None:
    calls: list[int] = []
    memo: Memo[int, int] = Memo(size=4)
    for key in [1, 1, 2, 1]:
        assert memo.get(key, lambda key=key: calls.append(key) or key * 10) == key * 10
    assert calls == [1, 2]
    for key in range(10):
        memo.get(key, lambda key=key: key)
    assert 0 < len(memo) <= 4


def test_keeps_no_result_for_a_long_string() -> None:
    memo: Memo[str, int] = Memo(longest=8)
    assert memo.get("x" * 9, lambda: 1, ("x" * 9,)) == 1
    assert memo.get("short", lambda: 2, ("short", None)) == 2
    assert list(memo) == ["short"]


def test_image_verdicts_are_the_first_matching_rule_and_bounded() -> None:
    catalog = Catalog(CATALOG.kinds, CATALOG.images)
    image = "ghcr.io/llm-d/llm-d:v0.2.0"
    first = next(rule for rule in CATALOG.images if rule.matches(image))
    assert catalog.image_verdict(image, "") == (first.verdict(""), first.why)
    assert catalog.image_verdict("nginx:" + "1" * 300, "") is None
    assert list(catalog._matching) == [image]


def test_resolution_memo_answers_as_resolve_does() -> None:
    first = resolve_known(None, "--vllm-version", None, "vllm/vllm-openai:v0.9.2")
    assert first is resolve_known(None, "--vllm-version", None, "vllm/vllm-openai:v0.9.2")
    assert first.version == "0.9.2"
    long_tag = "vllm/vllm-openai:v0.9.2-" + "x" * 300
    assert resolve_known(None, "--vllm-version", None, long_tag) is not resolve_known(
        None, "--vllm-version", None, long_tag)
