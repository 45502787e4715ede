"""The AST importer: classification, refusal, and the bundled table it produced."""

from __future__ import annotations

import ast
import textwrap

import pytest

from webhook.registry import bundled_versions, load_registry
from webhook.registry.expr import check
from webhook.registry.importer import ImportRefused, import_envs

HANDWRITTEN = textwrap.dedent('''
    import os

    def get_default_cache_root():
        return os.getenv(
            "XDG_CACHE_HOME",
            os.path.join(os.path.expanduser("~"), ".cache"),
        )

    environment_variables = {
        # ================== Installation Time Env Vars ==================
        # Maximum number of compilation jobs to run in parallel.
        "MAX_JOBS": lambda: os.getenv("MAX_JOBS", None),
        # ================== Runtime Env Vars ==================
        # Root directory for vLLM cache files. Defaults to ~/.cache/vllm.
        "VLLM_CACHE_ROOT": lambda: os.path.expanduser(
            os.getenv("VLLM_CACHE_ROOT", os.path.join(get_default_cache_root(), "vllm"))),
        # If set, vllm will use the V1 engine.
        "VLLM_USE_V1": lambda: bool(int(os.getenv("VLLM_USE_V1", "1"))),
        "VLLM_NO_USAGE_STATS": lambda: os.environ.get("VLLM_NO_USAGE_STATS", "0") == "1",
        "VLLM_DO_NOT_TRACK": lambda: (os.environ.get("VLLM_DO_NOT_TRACK", None) or os.environ.get(
            "DO_NOT_TRACK", None) or "0") == "1",
        "VLLM_USE_HPU_CONTIGUOUS_CACHE_FETCH": lambda: os.environ.get(
            "VLLM_CONTIGUOUS_PA", "true").lower() in ("1", "true"),
        "VLLM_PLUGINS": lambda: None if "VLLM_PLUGINS" not in os.environ else os.environ[
            "VLLM_PLUGINS"].split(","),
    }
''')


def test_handwritten_registry_is_classified() -> None:
    result = import_envs(HANDWRITTEN, "9.9.9")
    by_name = {v.name: v for v in result.variables}
    assert list(by_name) == ["MAX_JOBS", "VLLM_CACHE_ROOT", "VLLM_USE_V1", "VLLM_NO_USAGE_STATS",
                             "VLLM_DO_NOT_TRACK", "VLLM_USE_HPU_CONTIGUOUS_CACHE_FETCH", "VLLM_PLUGINS"]
    assert by_name["VLLM_USE_V1"].kind == "bool_int"
    assert by_name["VLLM_USE_V1"].default == "'1'"
    assert by_name["VLLM_USE_V1"].description == "If set, vllm will use the V1 engine."
    assert by_name["VLLM_NO_USAGE_STATS"].kind == "eq_1"
    assert by_name["VLLM_CACHE_ROOT"].kind == "path"
    assert set(by_name["VLLM_CACHE_ROOT"].reads) == {"VLLM_CACHE_ROOT", "XDG_CACHE_HOME", "HOME"}
    assert by_name["VLLM_DO_NOT_TRACK"].reads == ("VLLM_DO_NOT_TRACK", "DO_NOT_TRACK")
    hpu = by_name["VLLM_USE_HPU_CONTIGUOUS_CACHE_FETCH"]
    assert hpu.reads == ("VLLM_CONTIGUOUS_PA",) and not hpu.reads_own_name
    assert not any(v.build_time for v in result.variables)  # no wheel: nothing is proven unread
    assert by_name["VLLM_PLUGINS"].kind == "csv_list"
    assert result.facts.eager_evaluation is False


def test_unclassifiable_entries_are_refused_with_the_list() -> None:
    source = HANDWRITTEN.replace(
        '    "VLLM_PLUGINS":',
        '    "VLLM_SHELL": lambda: subprocess.check_output(["hostname"]).decode(),\n'
        '    "VLLM_MAGIC": lambda: some_module.compute(os.getenv("VLLM_MAGIC")),\n'
        '    "VLLM_PLUGINS":')
    with pytest.raises(ImportRefused) as refused:
        import_envs(source, "9.9.9", source_name="envs.py")
    problems = refused.value.problems
    assert len(problems) == 2
    assert "VLLM_SHELL" in problems[0] and "subprocess.check_output" in problems[0]
    assert "VLLM_MAGIC" in problems[1] and "some_module.compute" in problems[1]
    assert "2 unclassified expression(s)" in str(refused.value)


def test_a_helper_with_an_unknown_body_is_refused() -> None:
    source = HANDWRITTEN + textwrap.dedent('''
        def get_vllm_port():
            return int(os.environ["VLLM_PORT"].rsplit(":", 1)[-1])

        environment_variables["VLLM_PORT"] = get_vllm_port
    ''').replace('environment_variables["VLLM_PORT"] = get_vllm_port', "")
    source = source.replace('    "VLLM_PLUGINS":', '    "VLLM_PORT": get_vllm_port,\n    "VLLM_PLUGINS":')
    with pytest.raises(ImportRefused) as refused:
        import_envs(source, "9.9.9")
    assert any("helper get_vllm_port()" in p for p in refused.value.problems)


def test_a_missing_registry_and_bad_python_are_refused() -> None:
    with pytest.raises(ImportRefused, match="no `environment_variables"):
        import_envs("import os\n", "9.9.9")
    with pytest.raises(ImportRefused, match="not Python"):
        import_envs("environment_variables = {\n", "9.9.9")


def test_bundled_table_covers_every_release_from_0_6_0() -> None:
    versions = bundled_versions()
    assert versions[0] == "0.6.0" and versions[-1] == "0.33.0"
    assert len(versions) >= 66
    assert "0.8.1" in versions and "0.6.1.post2" in versions and "0.10.1.1" in versions


@pytest.mark.parametrize("version", ["0.6.0", "0.8.1", "0.11.1", "0.33.0"])
def test_every_bundled_getter_is_evaluable(version: str) -> None:
    registry = load_registry(version)
    for var in registry:
        assert check(var.expression) == [], (var.name, var.expression)
        ast.parse(var.expression, mode="eval")


def test_registry_sizes_match_the_research_counts() -> None:
    # research/vllm-envs.md: keys per release, read from the real wheels.
    expected = {"0.8.0": 94, "0.8.1": 94, "0.8.2": 96, "0.8.5": 109, "0.9.0": 118, "0.10.0": 143,
                "0.11.0": 196, "0.11.1": 209, "0.12.0": 217, "0.15.0": 228, "0.16.0": 218,
                "0.17.0": 232, "0.20.0": 249, "0.25.0": 273, "0.30.0": 302, "0.32.0": 316, "0.33.0": 318}
    assert {v: len(load_registry(v)) for v in expected} == expected


def test_release_facts() -> None:
    assert not load_registry("0.11.0").facts.eager_evaluation
    assert load_registry("0.11.1").facts.eager_evaluation
    assert not load_registry("0.16.0").facts.validates_unknown
    assert load_registry("0.17.0").facts.validates_unknown
    assert load_registry("0.33.0").facts.validates_unknown  # moved to platforms/interface.py
    assert load_registry("0.9.0").facts.helpers["get_vllm_port"]["uri_check"] == "swallowed"
    assert load_registry("0.33.0").facts.helpers["get_vllm_port"]["uri_check"] == "urllib3"


def test_build_time_is_installation_section_and_unread_in_the_wheel() -> None:
    source = textwrap.dedent('''
        import os
        environment_variables = {
            # ================== Installation Time Env Vars ==================
            "VLLM_TARGET_DEVICE": lambda: os.getenv("VLLM_TARGET_DEVICE", "cuda"),
            "CMAKE_BUILD_TYPE": lambda: os.getenv("CMAKE_BUILD_TYPE"),
            "MAX_JOBS": lambda: os.getenv("MAX_JOBS", None),
            # ================== Runtime Env Vars ==================
            "VLLM_UNUSED_AT_RUNTIME": lambda: os.getenv("VLLM_UNUSED_AT_RUNTIME"),
        }
    ''')
    wheel = {"unread": ["VLLM_TARGET_DEVICE", "MAX_JOBS", "VLLM_UNUSED_AT_RUNTIME"], "torch": "2.6.0",
             "sinks": {}}
    result = import_envs(source, "9.9.9", wheel=wheel)
    # CMAKE_BUILD_TYPE is read somewhere in the wheel; torch's JIT builds read MAX_JOBS.
    assert [v.name for v in result.variables if v.build_time] == ["VLLM_TARGET_DEVICE"]
    assert result.facts.torch == "2.6.0"
