"""Tests of the conformance harness itself: vLLM's real getters, run by `realenvs`, must show
the behaviour documented in shared/research/vllm-envs.md. Nothing here imports our parsers
(webhook.registry), so these tests run before the re-implementation exists.

The real envs.py files come from ~/.cache/vllm-env-guard/envs/<version>/envs.py (fetched from
the PyPI wheel on first use).
"""

from __future__ import annotations

import ast
import os
import types

import pytest

from . import realenvs
from .realenvs import (
    RealEnvsError,
    canonical_repr,
    enum_member_names,
    run_real,
    run_version,
    version_key,
)
from .values import BASE_VALUES, cases_for, choice_values, values_for

pytestmark = pytest.mark.conformance


def one(version: str, name: str, env: dict[str, str] | None = None, **kwargs) -> dict:
    return run_real(version, [(name, env or {})], **kwargs)[0]


def outcome(result: dict) -> tuple:
    if "error" in result:
        return ("error", result["error"], result["message"])
    return ("value", result["type"], result["repr"])


# ---------------------------------------------------------------------------- real behaviour

def test_seed_use_v1_true_is_an_int_error():
    result = one("0.8.1", "VLLM_USE_V1", {"VLLM_USE_V1": "true"})
    assert outcome(result) == ("error", "ValueError", "invalid literal for int() with base 10: 'true'")
    assert result["reads"] == ["VLLM_USE_V1"]


def test_seed_use_v1_unset_and_lenient_ints():
    results = run_real("0.8.1", [
        ("VLLM_USE_V1", {}),
        ("VLLM_USE_V1", {"VLLM_USE_V1": " 0 "}),
        ("VLLM_USE_V1", {"VLLM_USE_V1": "\u0663"}),
        ("VLLM_USE_V1", {"VLLM_USE_V1": "-1"}),
        ("VLLM_USE_V1", {"VLLM_USE_V1": "\u00b2"}),
    ])
    assert [outcome(r)[:3] for r in results[:4]] == [
        ("value", "bool", "True"), ("value", "bool", "False"),
        ("value", "bool", "True"), ("value", "bool", "True"),
    ]
    assert results[4]["error"] == "ValueError"


@pytest.mark.parametrize("value", ["tcp://10.96.0.12:8000", "tcp://[fd00::1]:8000", "localhost:8000"])
def test_latest_port_uri_message(value):
    result = one("0.33.0", "VLLM_PORT", {"VLLM_PORT": value})
    assert result["error"] == "ValueError"
    assert f"VLLM_PORT '{value}' appears to be a URI" in result["message"]
    assert "issue,check the warning in: https://docs.vllm.ai/en/latest/configuration/env_vars.html" in result["message"]


def test_latest_port_other_values():
    results = run_real("0.33.0", [
        ("VLLM_PORT", {"VLLM_PORT": "10.96.0.12:8000"}),
        ("VLLM_PORT", {"VLLM_PORT": ""}),
        ("VLLM_PORT", {"VLLM_PORT": " 8000 "}),
        ("VLLM_PORT", {"VLLM_PORT": "65536"}),
        ("VLLM_PORT", {}),
    ])
    assert outcome(results[0]) == ("error", "ValueError", "VLLM_PORT '10.96.0.12:8000' must be a valid integer")
    assert outcome(results[1]) == ("error", "ValueError", "VLLM_PORT '' must be a valid integer")
    assert outcome(results[2]) == ("value", "int", "8000")
    assert outcome(results[3]) == ("value", "int", "65536")
    assert outcome(results[4]) == ("value", "NoneType", "None")
    assert all(r["reads"] == ["VLLM_PORT"] for r in results)


def test_uri_message_swallowed_in_090_effective_in_091():
    value = "tcp://10.96.0.12:8000"
    old = one("0.9.0", "VLLM_PORT", {"VLLM_PORT": value})
    new = one("0.9.1", "VLLM_PORT", {"VLLM_PORT": value})
    assert outcome(old) == ("error", "ValueError", f"VLLM_PORT '{value}' must be a valid integer")
    assert new["error"] == "ValueError" and "appears to be a URI" in new["message"]
    assert "https://docs.vllm.ai/en/stable/serving/env_vars.html" in new["message"]


def test_seed_port_has_no_uri_check():
    result = one("0.8.1", "VLLM_PORT", {"VLLM_PORT": "tcp://10.96.0.12:8000"})
    assert outcome(result) == (
        "error", "ValueError", "invalid literal for int() with base 10: 'tcp://10.96.0.12:8000'")


def test_keep_alive_on_engine_death_truthy_string_in_seed_int_in_latest():
    seed = run_real("0.8.1", [("VLLM_KEEP_ALIVE_ON_ENGINE_DEATH", {"VLLM_KEEP_ALIVE_ON_ENGINE_DEATH": v})
                              for v in ("0", "false", "")])
    assert [r["repr"] for r in seed] == ["True", "True", "False"]
    latest = one("0.33.0", "VLLM_KEEP_ALIVE_ON_ENGINE_DEATH", {"VLLM_KEEP_ALIVE_ON_ENGINE_DEATH": ""})
    assert outcome(latest) == ("error", "ValueError", "invalid literal for int() with base 10: ''")


def test_do_not_track_fallback_and_reads():
    name = "VLLM_DO_NOT_TRACK"
    results = run_real("0.8.1", [
        (name, {"DO_NOT_TRACK": "1"}),
        (name, {name: "", "DO_NOT_TRACK": "1"}),
        (name, {name: "0", "DO_NOT_TRACK": "1"}),
        (name, {"DO_NOT_TRACK": "true"}),
    ])
    assert [r["repr"] for r in results] == ["True", "True", "False", "False"]
    assert results[0]["reads"] == ["DO_NOT_TRACK", name]
    assert results[2]["reads"] == [name]  # "0" is truthy: DO_NOT_TRACK is never looked at


def test_use_precompiled_reads_wheel_location_in_seed():
    name = "VLLM_USE_PRECOMPILED"
    results = run_real("0.8.1", [
        (name, {"VLLM_PRECOMPILED_WHEEL_LOCATION": "/tmp/x.whl"}),
        (name, {name: "0"}),
        (name, {}),
    ])
    assert [r["repr"] for r in results] == ["True", "True", "False"]
    assert results[2]["reads"] == ["VLLM_PRECOMPILED_WHEEL_LOCATION", name]


def test_eq_1_is_silently_false():
    results = run_real("0.8.1", [("VLLM_NO_USAGE_STATS", {"VLLM_NO_USAGE_STATS": v})
                                 for v in ("1", "true", " 1 ", "2")])
    assert [r["repr"] for r in results] == ["True", "False", "False", "False"]


def test_choices_case_insensitive_keeps_spelling_and_errors():
    name = "VLLM_FLOAT32_MATMUL_PRECISION"
    results = run_real("0.33.0", [(name, {name: "HIGH"}), (name, {name: " high"}), (name, {})])
    assert outcome(results[0]) == ("value", "str", "'HIGH'")
    assert outcome(results[1]) == (
        "error", "ValueError",
        "Invalid value ' high' for VLLM_FLOAT32_MATMUL_PRECISION. Valid options: ['highest', 'high', 'medium'].")
    assert outcome(results[2]) == ("value", "str", "'highest'")


def test_set_with_choices_has_canonical_repr():
    name = "VLLM_GPT_OSS_SYSTEM_TOOL_MCP_LABELS"
    results = run_real("0.33.0", [(name, {name: "container, code_interpreter,container"}), (name, {name: " , "})])
    assert outcome(results[0]) == ("value", "set", "{'code_interpreter', 'container'}")
    assert results[1]["type"] == "set"


def test_json_decode_error_class_name():
    name = "VLLM_HUMMING_ONLINE_QUANT_CONFIG"
    results = run_real("0.33.0", [(name, {name: "nan x"}), (name, {name: "true"}), (name, {name: '{"a": 1}'})])
    assert results[0]["error"] == "JSONDecodeError"
    assert outcome(results[1]) == ("value", "bool", "True")
    assert outcome(results[2]) == ("value", "dict", "{'a': 1}")


def test_paths_read_home_and_xdg():
    results = run_real("0.8.1", [
        ("VLLM_CACHE_ROOT", {}),
        ("VLLM_CACHE_ROOT", {"XDG_CACHE_HOME": "/xdg"}),
        ("VLLM_CACHE_ROOT", {"VLLM_CACHE_ROOT": ""}),
        ("VLLM_CACHE_ROOT", {"VLLM_CACHE_ROOT": "~/c"}),
    ], home="/home/veg")
    assert outcome(results[0]) == ("value", "str", "'/home/veg/.cache/vllm'")
    assert set(results[0]["reads"]) == {"HOME", "VLLM_CACHE_ROOT", "XDG_CACHE_HOME"}
    assert outcome(results[1]) == ("value", "str", "'/xdg/vllm'")
    assert outcome(results[2]) == ("value", "str", "''")
    assert outcome(results[3]) == ("value", "str", "'/home/veg/c'")


def test_rpc_base_path_reads_tmpdir_every_case():
    results = run_real("0.8.1", [("VLLM_RPC_BASE_PATH", {}), ("VLLM_RPC_BASE_PATH", {})])
    for result in results:  # tempfile.tempdir is reset per case, so the lookup happens each time
        assert {"TMPDIR", "TEMP", "TMP", "VLLM_RPC_BASE_PATH"} <= set(result["reads"])


def test_in_environ_is_recorded():
    result = one("0.8.1", "VLLM_PORT")  # `'VLLM_PORT' in os.environ` only
    assert outcome(result) == ("value", "NoneType", "None")
    assert result["reads"] == ["VLLM_PORT"]


def test_writes_are_recorded_and_do_not_leak_between_cases():
    name = "VLLM_OBJECT_STORAGE_SHM_BUFFER_NAME"
    results = run_real("0.33.0", [(name, {}), (name, {}), (name, {name: "mine"})])
    assert results[0]["writes"] == {name: results[0]["repr"].strip("'")}
    assert results[1]["writes"] == results[0]["writes"]  # not visible to the next case
    assert outcome(results[2]) == ("value", "str", "'mine'") and "writes" not in results[2]


def test_parent_environment_is_not_visible(monkeypatch):
    monkeypatch.setenv("VLLM_PORT", "1234")
    assert outcome(one("0.33.0", "VLLM_PORT")) == ("value", "NoneType", "None")


def test_torch_is_the_release_pin_and_selectable():
    pinned = realenvs.pinned_torch("0.33.0")
    assert pinned != realenvs.TORCH_VERSION  # the wheel pins its own torch (2.14.0 for 0.33.0)
    default = run_real("0.33.0", [("VLLM_DBO_COMM_SMS", {}), ("VLLM_USE_AOT_COMPILE", {})],
                       torch_version=pinned)
    assert outcome(default[0]) == ("value", "int", "20")
    assert outcome(default[1]) == ("value", "bool", "True")
    assert "VLLM_DISABLE_COMPILE_CACHE" in default[1]["reads"]
    older = one("0.33.0", "VLLM_USE_AOT_COMPILE", torch_version="2.9.0")
    assert outcome(older) == ("value", "bool", "False")
    assert "VLLM_DISABLE_COMPILE_CACHE" not in older["reads"]


def test_logging_level_goes_through_the_real_logging_config():
    """<= 0.8.1 the getter keeps 'debug' and vLLM's dictConfig raises; 0.8.2 upper-cases it;
    a name that is no level raises on both; VLLM_CONFIGURE_LOGGING=0 skips the config."""
    seed = run_real("0.8.1", [("VLLM_LOGGING_LEVEL", {"VLLM_LOGGING_LEVEL": "debug"}),
                              ("VLLM_LOGGING_LEVEL", {"VLLM_LOGGING_LEVEL": "DEBUG"}),
                              ("VLLM_LOGGING_LEVEL", {"VLLM_LOGGING_LEVEL": "verbose",
                                                      "VLLM_CONFIGURE_LOGGING": "0"})])
    assert outcome(seed[0]) == ("error", "ValueError", "Unable to configure handler 'vllm'")
    assert seed[0]["reads"] == ["VLLM_LOGGING_LEVEL"]  # the getter's reads, not the logger's
    assert outcome(seed[1]) == ("value", "str", "'DEBUG'")
    assert outcome(seed[2]) == ("value", "str", "'verbose'")
    assert outcome(one("0.8.2", "VLLM_LOGGING_LEVEL", {"VLLM_LOGGING_LEVEL": "debug"})) == (
        "value", "str", "'DEBUG'")
    assert outcome(one("0.8.2", "VLLM_LOGGING_LEVEL", {"VLLM_LOGGING_LEVEL": "verbose"}))[0] == "error"


def test_multiproc_method_goes_through_get_context():
    assert outcome(one("0.10.2", "VLLM_WORKER_MULTIPROC_METHOD", {"VLLM_WORKER_MULTIPROC_METHOD": "Spawn"})) == (
        "error", "ValueError", "cannot find context for 'Spawn'")
    assert outcome(one("0.10.2", "VLLM_WORKER_MULTIPROC_METHOD", {"VLLM_WORKER_MULTIPROC_METHOD": "spawn"})) == (
        "value", "str", "'spawn'")


def test_batch_invariant_stub_reads_its_variable():
    result = one("0.15.0", "VLLM_USE_AOT_COMPILE", {"VLLM_BATCH_INVARIANT": "1"})
    assert "VLLM_BATCH_INVARIANT" in result["reads"]
    assert outcome(result) == ("value", "bool", "False")


def test_attention_backend_choices_come_from_the_real_enum():
    name = "VLLM_ATTENTION_BACKEND"
    for version in ("0.11.0", "0.12.0", "0.14.1"):
        ok, bad = run_real(version, [(name, {name: "FLASH_ATTN"}), (name, {name: "flash_attn"})])
        assert outcome(ok) == ("value", "str", "'FLASH_ATTN'")
        assert bad["error"] == "ValueError"
        assert bad["message"].startswith(f"Invalid value 'flash_attn' for {name}. Valid options: ['FLASH_ATTN', ")
        assert "'FLASHINFER'" in bad["message"]


def test_keys_of_seed_and_latest():
    seed = run_version("0.8.1", [])
    assert len(seed.keys) == 94 and len([k for k in seed.keys if k.startswith("VLLM_")]) == 81
    assert seed.keys[-1] == "VLLM_V0_USE_OUTLINES_CACHE"
    latest = run_version("0.33.0", [])
    assert len(latest.keys) == 318 and len([k for k in latest.keys if k.startswith("VLLM_")]) == 303
    assert "VLLM_USE_V1" in seed.keys and "VLLM_USE_V1" not in latest.keys


def test_unknown_name_is_reported_missing():
    result = one("0.8.1", "VLLM_NOT_A_VARIABLE")
    assert result["error"] == "KeyError" and result["missing"] is True


def test_every_cached_release_imports_and_runs_every_getter_unset():
    """No getter of any release fails for a reason of the harness (a missing stub)."""
    for version in realenvs.cached_versions():
        keys = run_version(version, []).keys
        results = run_real(version, [(k, {}) for k in keys] + [(k, {k: "x"}) for k in keys])
        broken = [(k, r) for k, r in zip(keys + keys, results)
                  if r.get("error") in {"ModuleNotFoundError", "ImportError", "AttributeError", "NameError",
                                        "TypeError"}]
        assert not broken, f"{version}: {broken[:5]}"


def test_timeout_is_a_clear_error():
    with pytest.raises(RealEnvsError, match="did not finish within"):
        run_version("0.8.1", [("VLLM_PORT", {})] * 10, timeout=0.001)


# ---------------------------------------------------------------------------- harness pieces

def test_canonical_repr():
    assert canonical_repr({"b", "a"}) == "{'a', 'b'}"
    assert canonical_repr(set()) == "set()"
    assert canonical_repr(frozenset({2, 1})) == "frozenset({1, 2})"
    assert canonical_repr(["b", "a"]) == "['b', 'a']"


def test_enum_member_names_with_aliases_and_privates():
    source = (
        "import enum\n"
        "class E(enum.Enum):\n"
        "    A = ''\n"
        "    _ignore_ = ['x']\n"
        "    B: str = 'b'\n"
        "    C = ''\n"
        "    def method(self):\n"
        "        return 1\n"
        "    __private = 3\n"
    )
    assert enum_member_names(source, "E") == ["A", "B", "C"]
    with pytest.raises(RealEnvsError):
        enum_member_names(source, "Missing")


def test_dynamic_imports_found():
    src = realenvs.envs_path("0.11.0").read_text()
    assert realenvs.dynamic_imports(src) == [("vllm.platforms.interface", "_Backend")]
    src = realenvs.envs_path("0.14.0").read_text()
    assert realenvs.dynamic_imports(src) == [("vllm.v1.attention.backends.registry", "AttentionBackendEnum")]


def test_version_key_orders_releases():
    versions = ["0.10.0", "0.6.1.post1", "0.9.0.1", "0.6.1", "0.9.0", "0.6.1.post2", "0.33.0", "0.6.2"]
    assert sorted(versions, key=version_key) == [
        "0.6.1", "0.6.1.post1", "0.6.1.post2", "0.6.2", "0.9.0", "0.9.0.1", "0.10.0", "0.33.0"]


def test_values_cover_the_tricky_corpus():
    values = values_for(types.SimpleNamespace(name="VLLM_X"))
    assert len(values) >= 40 and len(values) == len(set(values))
    for needed in (None, "", " ", "0", "1", " 1 ", "\t1\n", "1_000", "0x10", "nan", "true", "TRUE",
                   "tcp://10.96.0.12:8000", "tcp://[fd00::1]:8000", "\u0663", "\uff11\uff12", "\u00b2",
                   '{"a": 1}', "a, b", " , ", "~/x"):
        assert needed in values
    assert not any(v is not None and "\x00" in v for v in BASE_VALUES)


def test_choice_values():
    values = choice_values(["spawn", "fork"])
    for needed in ("spawn", "SPAWN", "Spawn", " spawn ", "spawn,fork", "spawn, fork"):
        assert needed in values
    var = types.SimpleNamespace(name="X", reads=("X",), params={"choices": ["a", "b"], "case_sensitive": True})
    assert "A" in values_for(var) and "a,b" in values_for(var)


def test_cases_cross_other_reads():
    var = types.SimpleNamespace(name="VLLM_DO_NOT_TRACK", reads=("VLLM_DO_NOT_TRACK", "DO_NOT_TRACK"), params={})
    cases = cases_for(var)
    assert {} in cases and {"VLLM_DO_NOT_TRACK": "0"} in cases
    assert {"DO_NOT_TRACK": "1"} in cases and {"DO_NOT_TRACK": "true"} in cases and {"DO_NOT_TRACK": ""} in cases
    assert {"VLLM_DO_NOT_TRACK": "0", "DO_NOT_TRACK": "1"} in cases
    assert len(cases) == len({tuple(sorted(c.items())) for c in cases})
    big = types.SimpleNamespace(name="V", reads=tuple(f"R{i}" for i in range(6)), params={})
    assert len(cases_for(big)) < 2000  # pairwise, not the full product


def test_run_real_matches_direct_ast_key_count():
    """Cross-check the subprocess's key list with a plain ast read of the dict literal."""
    source = realenvs.envs_path("0.8.1").read_text()
    tree = ast.parse(source)
    for node in tree.body:
        target = getattr(node, "target", None) or (getattr(node, "targets", [None]) or [None])[0]
        if isinstance(target, ast.Name) and target.id == "environment_variables":
            literal = [k.value for k in node.value.keys]
            break
    assert run_version("0.8.1", []).keys == literal


def test_subprocess_environment_is_minimal():
    """The worker sees neither our PYTHONPATH nor our cwd."""
    env_before = dict(os.environ)
    run_real("0.8.1", [("VLLM_PORT", {})])
    assert dict(os.environ) == env_before


# ---------------------------------------------------------------------------- comparison layer

def test_ci_and_selected_versions():
    available = ["0.6.6", "0.6.6.post1", "0.8.0", "0.8.1", "0.8.5", "0.8.5.post1", "0.9.0", "0.9.2",
                 "0.10.0", "0.33.0"]
    assert realenvs.ci_versions(available) == ["0.6.6.post1", "0.8.1", "0.8.5.post1", "0.9.2", "0.10.0", "0.33.0"]
    assert realenvs.select_versions("all", available) == available
    assert realenvs.select_versions(" 0.8.1, 0.33.0 ", available) == ["0.8.1", "0.33.0"]
    assert realenvs.select_versions(None, available) == available  # CI: every release
    assert realenvs.select_versions("ci", available) == realenvs.ci_versions(available)


def test_outcomes_agree_strictly():
    agree = realenvs.outcomes_agree
    err = {"error": "ValueError", "message": "m"}
    assert agree(err, dict(err)) is None
    assert agree(err, {"error": "ValueError", "message": "other"}) == "message differs"
    assert agree(err, {"error": "KeyError", "message": "m"}) == "exception class differs"
    val = {"repr": "'/h/.cache'", "type": "str"}
    assert agree(val, dict(val)) is None
    assert agree(val, {"repr": "'/x/.cache'", "type": "str"}) == "value differs"
    assert agree(val, {"repr": "None", "type": "NoneType"}) == "type differs"
    assert agree(val, err) == "outcome differs"
    assert agree(val, {"repr": "'/x/.cache'", "type": "str"}, kind_only=True) is None
    assert agree(val, {"repr": "None", "type": "NoneType"}, kind_only=True) == "type differs"
    harness = {"error": "HarnessError", "message": "ModuleNotFoundError: x"}
    assert agree(harness, dict(harness)).startswith("the harness could not run vLLM's code")


class _FakeApi:
    """A tiny stand-in for webhook.registry with three 0.8.1 variables (one wrong, one with
    undeclared reads) and one name vLLM does not have."""

    def __init__(self):
        spec = types.SimpleNamespace
        self.vars = {
            "VLLM_PORT": spec(name="VLLM_PORT", reads=("VLLM_PORT",), choices=None),
            "VLLM_USE_V1": spec(name="VLLM_USE_V1", reads=("VLLM_USE_V1",), choices=None),
            "VLLM_DO_NOT_TRACK": spec(name="VLLM_DO_NOT_TRACK", reads=("VLLM_DO_NOT_TRACK",), choices=None),
            "VLLM_FAKE": spec(name="VLLM_FAKE", reads=("VLLM_FAKE",), choices=None),
        }

    def load_registry(self, version):
        assert version == "0.8.1"
        return types.SimpleNamespace(names=lambda: list(self.vars), get=self.vars.get)

    def evaluate(self, var, env):
        def out(value=None, error=None, message=None):
            return types.SimpleNamespace(value=value, error=error, message=message)

        if var.name == "VLLM_PORT":
            if "VLLM_PORT" not in env:
                return out(None)
            try:
                return out(int(env["VLLM_PORT"]))
            except ValueError as exc:
                return out(error="ValueError", message=str(exc))
        if var.name == "VLLM_USE_V1":
            return out(True)  # wrong on purpose
        if var.name == "VLLM_DO_NOT_TRACK":
            return out((env.get("VLLM_DO_NOT_TRACK") or env.get("DO_NOT_TRACK") or "0") == "1")
        raise AssertionError(var.name)


def test_compare_version_with_a_fake_registry():
    report = realenvs.compare_version("0.8.1", _FakeApi())
    grouped = report.by_variable()
    assert "VLLM_PORT" not in grouped  # exact agreement, including int()'s messages
    assert "VLLM_DO_NOT_TRACK" not in grouped
    assert report.missing_reads == {"VLLM_DO_NOT_TRACK": ["DO_NOT_TRACK"]}
    # the second round crossed VLLM_DO_NOT_TRACK with DO_NOT_TRACK although we did not declare it
    assert report.cases_per_variable["VLLM_DO_NOT_TRACK"] > len(values_for(types.SimpleNamespace(name="x")))
    wrong = grouped["VLLM_USE_V1"]
    assert any(d.env == {"VLLM_USE_V1": "0"} and d.reason == "value differs" for d in wrong)
    assert any(d.real.get("error") == "ValueError" and d.reason == "outcome differs" for d in wrong)
    assert {d.reason for d in grouped["VLLM_FAKE"]} == {"not in vLLM's registry (extra in ours)"}
    assert {d.reason for d in grouped["VLLM_CACHE_ROOT"]} == {"missing from our registry"}
    assert len(report.real_names) == 94 and report.our_names == list(_FakeApi().vars)
    assert report.cases == sum(report.cases_per_variable.values())
    assert "VLLM_USE_V1='0': real bool False; ours bool True [value differs]" in [d.describe() for d in wrong]
    assert "disagreements" in report.line()


def test_compare_version_without_a_registry():
    report = realenvs.compare_version("0.6.0", types.SimpleNamespace(
        load_registry=lambda v: (_ for _ in ()).throw(KeyError(v)), evaluate=None))
    assert report.error.startswith("load_registry('0.6.0') raised KeyError")
    assert len(report.disagreements) == report.cases > 0


def test_only_a_temporary_directory_that_is_not_there_is_relaxed(tmp_path):
    assert realenvs.unverifiable_tempdir({}) is None
    assert realenvs.unverifiable_tempdir({"TMPDIR": str(tmp_path)}) is None
    assert realenvs.unverifiable_tempdir({"TMPDIR": "", "TEMP": str(tmp_path)}) is None
    assert realenvs.unverifiable_tempdir({"TMPDIR": str(tmp_path / "missing")}) == str(tmp_path / "missing")
    assert realenvs.unverifiable_tempdir({"TMP": "relative/dir"}) == "relative/dir"
