"""Our evaluation of vLLM's getters on tricky values (the conformance suite checks them all
against the real envs.py; these pin the behaviours the rules rely on)."""

from __future__ import annotations

import pytest

from webhook.registry import evaluate, load_registry
from webhook.registry.outcomes import intended


def run(version: str, name: str, value: str | None, **extra: str):  # noqa: ANN201
    env = {name: value} if value is not None else {}
    env.update(extra)
    registry = load_registry(version)
    return registry.evaluate(name, env)


@pytest.mark.parametrize(("raw", "expected"), [
    (" 8000 ", 8000), ("+1", 1), ("1_000", 1000), ("\t1\n", 1), ("٣", 3), ("-1", -1)])
def test_int_accepts_what_python_int_accepts(raw: str, expected: int) -> None:
    outcome = run("0.33.0", "VLLM_IMAGE_FETCH_TIMEOUT", raw)
    assert outcome.ok and outcome.value == expected and type(outcome.value) is int


@pytest.mark.parametrize("raw", ["", "1.0", "1e3", "0x10", "nan", "true", "²"])
def test_int_rejects_what_python_int_rejects(raw: str) -> None:
    outcome = run("0.33.0", "VLLM_IMAGE_FETCH_TIMEOUT", raw)
    assert outcome.error == "ValueError"
    assert outcome.message == f"invalid literal for int() with base 10: {raw!r}"


def test_vllm_port_across_releases() -> None:
    uri = "tcp://10.96.0.12:8000"
    seed = run("0.8.1", "VLLM_PORT", uri)
    assert seed.message == f"invalid literal for int() with base 10: '{uri}'"
    swallowed = run("0.9.0", "VLLM_PORT", uri)
    assert swallowed.message == f"VLLM_PORT '{uri}' must be a valid integer"
    for version, url in [("0.9.1", "https://docs.vllm.ai/en/stable/serving/env_vars.html"),
                         ("0.33.0", "https://docs.vllm.ai/en/latest/configuration/env_vars.html")]:
        outcome = run(version, "VLLM_PORT", uri)
        assert outcome.error == "ValueError"
        assert outcome.message == (f"VLLM_PORT '{uri}' appears to be a URI. This may be caused by a "
                                   f"Kubernetes service discovery issue,check the warning in: {url}")
    assert run("0.33.0", "VLLM_PORT", "10.96.0.12:8000").message.endswith("must be a valid integer")
    assert run("0.33.0", "VLLM_PORT", " 8000 ").value == 8000
    assert run("0.33.0", "VLLM_PORT", None).value is None


def test_switch_footguns_are_flagged_as_surprises() -> None:
    keep_alive = run("0.8.1", "VLLM_KEEP_ALIVE_ON_ENGINE_DEATH", "0")
    assert keep_alive.value is True and keep_alive.surprise
    stats = run("0.8.1", "VLLM_NO_USAGE_STATS", "true")
    assert stats.value is False and stats.surprise
    assert run("0.8.1", "VLLM_NO_USAGE_STATS", "1").surprise is None
    crash = run("0.33.0", "VLLM_KEEP_ALIVE_ON_ENGINE_DEATH", "true")
    assert crash.error == "ValueError"
    assert run("0.33.0", "VLLM_KEEP_ALIVE_ON_ENGINE_DEATH", "0").value is False


def test_an_alias_is_read_through_the_registry_key() -> None:
    assert run("0.33.0", "VLLM_DO_NOT_TRACK", None, DO_NOT_TRACK="1").value is True
    hidden = run("0.33.0", "VLLM_DO_NOT_TRACK", "0", DO_NOT_TRACK="1")
    assert hidden.value is False and hidden.reads == ("VLLM_DO_NOT_TRACK",)
    assert run("0.33.0", "VLLM_DO_NOT_TRACK", "", DO_NOT_TRACK="true").value is False


def test_choices_are_exact_and_case_sensitive_by_default() -> None:
    spawn = run("0.33.0", "VLLM_WORKER_MULTIPROC_METHOD", "Spawn")
    assert spawn.error == "ValueError"
    assert spawn.message == ("Invalid value 'Spawn' for VLLM_WORKER_MULTIPROC_METHOD. "
                             "Valid options: ['spawn', 'fork'].")
    assert run("0.33.0", "VLLM_WORKER_MULTIPROC_METHOD", "spawn").value == "spawn"
    assert run("0.33.0", "VLLM_WORKER_MULTIPROC_METHOD", "").error == "ValueError"
    # a free string in 0.8.1: the getter keeps "Spawn", multiprocessing.get_context() raises (checks.py)
    assert run("0.8.1", "VLLM_WORKER_MULTIPROC_METHOD", "Spawn").after is not None


def test_empty_is_not_unset() -> None:
    plugins = run("0.8.1", "VLLM_PLUGINS", "")
    assert plugins.value == [""] and plugins.surprise
    assert run("0.8.1", "VLLM_PLUGINS", None).value is None
    assert run("0.33.0", "VLLM_ENABLE_V1_MULTIPROCESSING", "").error == "ValueError"


def test_registry_value_reference_and_torch_dependence() -> None:
    rank = run("0.33.0", "VLLM_DP_RANK_LOCAL", None, VLLM_DP_RANK="3")
    assert rank.value == 3 and rank.reads == ("VLLM_DP_RANK", "VLLM_DP_RANK_LOCAL")
    assert run("0.33.0", "VLLM_USE_AOT_COMPILE", "0").value is False
    assert run("0.33.0", "VLLM_USE_AOT_COMPILE", "1").value is True


@pytest.mark.parametrize("version", ["0.11.1", "0.33.0"])
def test_torch_dependent_defaults_follow_the_release_pin(version: str) -> None:
    """use_aot_compile() defaults on when torch >= the release's threshold: with the torch
    the wheel pins (2.9.0 for 0.11.1, 2.14.0 for 0.33.0), not one torch for every release."""
    registry = load_registry(version)
    threshold = registry.facts.helpers["use_aot_compile"]["torch"]
    pinned = registry.facts.torch
    assert pinned is not None
    expected = tuple(map(int, pinned.split(".")[:3])) >= tuple(int(p) for p in threshold.split(".")[:3] if p.isdigit())
    aot = run(version, "VLLM_USE_AOT_COMPILE", None)
    assert "torch" in aot.depends and aot.value is expected


def test_tilde_expands_like_posixpath_expanduser() -> None:
    """HOME '' or '/' and XDG_CACHE_HOME '~/x': vLLM (os.path.expanduser) gives '/x/vllm'."""
    import posixpath
    from unittest import mock

    for home in ("", "/", "//", "/root/"):
        with mock.patch.dict("os.environ", {"HOME": home}):
            expected = posixpath.join(posixpath.expanduser("~/x"), "vllm")
        outcome = run("0.33.0", "VLLM_CACHE_ROOT", None, HOME=home, XDG_CACHE_HOME="~/x")
        assert outcome.value == expected, home


def test_module_level_evaluate_needs_a_bundled_variable() -> None:
    var = load_registry("0.9.2").get("VLLM_USE_V1")
    assert var is not None and evaluate(var, {"VLLM_USE_V1": "1"}).value is True


@pytest.mark.parametrize(("raw", "meaning"), [
    ("1", True), (" TRUE ", True), ("yes", True), ("0", False), ("off", False), ("", False), ("2", None)])
def test_intended_meaning(raw: str, meaning: bool | None) -> None:
    assert intended(raw) is meaning
