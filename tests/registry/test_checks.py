"""Checks past the getter (the conformance suite proves each against vLLM's real code per release;
these pin what the rules rely on)."""

from __future__ import annotations

import pytest

from webhook.registry import bundled_versions, load_registry
from webhook.registry.checks import WHERE

ALL = bundled_versions()


def level(version: str, value: str, **extra: str):  # noqa: ANN201
    return load_registry(version).evaluate("VLLM_LOGGING_LEVEL", {"VLLM_LOGGING_LEVEL": value, **extra})


def test_lower_case_level_raises_where_the_getter_does_not_upper_case() -> None:
    raising = [v for v in ALL if not level(v, "debug").ok]
    not_upper = [v for v in ALL if ".upper()" not in load_registry(v)["VLLM_LOGGING_LEVEL"].expression]
    assert raising == not_upper and "0.8.1" in raising and "0.8.2" not in raising
    outcome = level("0.8.1", "debug")
    assert (outcome.error, outcome.message) == ("ValueError", "Unable to configure handler 'vllm'")
    assert outcome.after == WHERE["logging_level"]


@pytest.mark.parametrize("version", [ALL[0], "0.8.1", "0.10.2", ALL[-1]])
def test_a_name_that_is_no_level_raises_and_a_level_does_not(version: str) -> None:
    assert level(version, "verbose").error == "ValueError"
    assert level(version, "WARNING").ok and level(version, "DEBUG").value == "DEBUG"


def test_no_level_check_without_vllm_s_logging_config() -> None:
    assert level("0.8.1", "verbose", VLLM_CONFIGURE_LOGGING="0").ok
    assert level("0.8.1", "verbose", VLLM_LOGGING_CONFIG_PATH="/etc/logging.json").ok
    reads = level("0.8.1", "verbose").reads
    assert "VLLM_CONFIGURE_LOGGING" in reads and "VLLM_LOGGING_CONFIG_PATH" in reads


def test_outcomes_are_memoised_on_the_sink_inputs_too() -> None:
    registry = load_registry("0.10.2")
    assert not registry.evaluate("VLLM_LOGGING_LEVEL", {"VLLM_LOGGING_LEVEL": "verbose"}).ok
    assert registry.evaluate("VLLM_LOGGING_LEVEL", {"VLLM_LOGGING_LEVEL": "verbose",
                                                    "VLLM_CONFIGURE_LOGGING": "0"}).ok


def test_multiproc_method_passes_the_getter_and_raises_in_get_context() -> None:
    """Up to 0.10.2 the getter takes any string; multiprocessing.get_context('Spawn') raises."""
    for version in ("0.6.0", "0.8.1", "0.10.2"):
        outcome = load_registry(version).evaluate("VLLM_WORKER_MULTIPROC_METHOD",
                                                  {"VLLM_WORKER_MULTIPROC_METHOD": "Spawn"})
        assert (outcome.error, outcome.message) == ("ValueError", "cannot find context for 'Spawn'")
        assert outcome.after == WHERE["mp_context"]
    newer = load_registry(ALL[-1]).evaluate("VLLM_WORKER_MULTIPROC_METHOD",
                                            {"VLLM_WORKER_MULTIPROC_METHOD": "Spawn"})
    assert newer.error == "ValueError" and newer.after is None  # the getter's own choice check


def test_every_release_records_where_the_values_go() -> None:
    for version in ALL:
        sinks = load_registry(version).facts.sinks
        assert sinks["VLLM_LOGGING_LEVEL"] == {"check": "logging_level", "handler": "vllm"}, version
        assert sinks["VLLM_WORKER_MULTIPROC_METHOD"] == {"check": "mp_context"}, version


@pytest.mark.parametrize("raw", ["tcp://10.0.0.1:8000", "10.0.0.1 ", "10.0.0.1 10.0.0.2"])
def test_host_ip_with_spaces_or_a_uri_is_flagged(raw: str) -> None:
    outcome = load_registry(ALL[-1]).evaluate("VLLM_HOST_IP", {"VLLM_HOST_IP": raw})
    assert outcome.ok and outcome.value == raw and "not an IP address" in (outcome.surprise or "")


@pytest.mark.parametrize("raw", ["10.0.0.1", "fd00::1", "node-1.example.com"])
def test_host_ip_that_is_an_address_is_not(raw: str) -> None:
    assert load_registry(ALL[-1]).evaluate("VLLM_HOST_IP", {"VLLM_HOST_IP": raw}).surprise is None
