"""vLLM's own helper functions from `vllm/envs.py`, re-implemented line for line.

Each function takes the running `Evaluation` first (the environment and what was read), then
vLLM's arguments. Where a helper changed between releases, the variant a release uses is a
*fact* the importer extracted from that release's source (`ev.facts[<helper name>]`), and the
importer refuses a release whose helper body matches none of the variants implemented here.
"""

from __future__ import annotations

import base64
import errno
import json
import os
import posixpath
import uuid
from collections.abc import Callable
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from webhook.registry.expr import Evaluation

Getter = Callable[[], Any]

# The torch assumed for a release whose wheel pins none (each release's pin is in its facts;
# a value that hangs on torch is marked as depending on "torch").
DEFAULT_TORCH = "2.9.0"


def torch_stub(version: str) -> SimpleNamespace:
    """What `__import__("torch")` gives a getter: a CUDA build of torch `version`."""
    return SimpleNamespace(__version__=version, version=SimpleNamespace(hip=None, cuda="12.8"))


def get_default_cache_root(ev: Evaluation) -> str:
    return ev.getenv("XDG_CACHE_HOME", posixpath.join(ev.expanduser("~"), ".cache"))


def get_default_config_root(ev: Evaluation) -> str:
    return ev.getenv("XDG_CONFIG_HOME", posixpath.join(ev.expanduser("~"), ".config"))


def maybe_convert_int(ev: Evaluation, value: str | None) -> int | None:
    return None if value is None else int(value)


def maybe_convert_bool(ev: Evaluation, value: str | None) -> bool | None:
    return None if value is None else bool(int(value))


def maybe_convert_json_str_or_file(ev: Evaluation, value: str | None) -> Any:
    if value is None:
        return None
    if ev.exists(value):  # only directories every container has: open() fails on them
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), value)
    return json.loads(value)


def get_vllm_port(ev: Evaluation) -> int | None:
    facts = ev.facts["get_vllm_port"]
    if not ev.contains("VLLM_PORT"):
        return None
    port = ev.getenv("VLLM_PORT", "0")
    try:
        return int(port)
    except ValueError:
        pass
    check = facts["uri_check"]
    if check == "urlparse":
        from urllib.parse import urlparse

        if urlparse(port).scheme:
            raise ValueError(facts["uri_message"].format(port=port)) from None
    elif check == "urllib3":
        from urllib3.util import parse_url

        if parse_url(port).scheme:
            raise ValueError(facts["uri_message"].format(port=port)) from None
    raise ValueError(facts["int_message"].format(port=port))


def env_with_choices(ev: Evaluation, env_name: str, default: Any, choices: Any,
                     case_sensitive: bool = True) -> Getter:
    def getter() -> Any:
        value = ev.getenv(env_name)
        if value is None:
            return default
        actual = choices() if callable(choices) else choices
        if not _member(value, actual, case_sensitive):
            raise ValueError(f"Invalid value '{value}' for {env_name}. Valid options: {actual}.")
        return value
    return getter


def env_list_with_choices(ev: Evaluation, env_name: str, default: Any, choices: Any,
                          case_sensitive: bool = True) -> Getter:
    def getter() -> Any:
        value = ev.getenv(env_name)
        if value is None:
            return default
        values = [v.strip() for v in value.split(",") if v.strip()]
        if not values:
            return default
        actual = choices() if callable(choices) else choices
        for item in values:
            if not _member(item, actual, case_sensitive):
                raise ValueError(f"Invalid value '{item}' in {env_name}. Valid options: {actual}.")
        return values
    return getter


def env_set_with_choices(ev: Evaluation, env_name: str, default: Any, choices: Any,
                         case_sensitive: bool = True) -> Getter:
    listed = env_list_with_choices(ev, env_name, default, choices, case_sensitive)
    return lambda: set(listed())


def _member(value: str, choices: list[str], case_sensitive: bool) -> bool:
    if case_sensitive:
        return value in choices
    return value.lower() in [c.lower() for c in choices]


def disable_compile_cache(ev: Evaluation) -> bool:
    return bool(int(ev.getenv("VLLM_DISABLE_COMPILE_CACHE", "0")))


def _torch_at_least(ev: Evaluation, version: str) -> bool:
    ev.depends.add("torch")
    return _version_tuple(ev.torch) >= _version_tuple(version)


def _version_tuple(version: str) -> tuple[int, ...]:
    # is_torch_equal_or_newer compares base versions: "2.10.0.dev" counts as 2.10.0.
    return tuple(int(p) for p in version.split(".")[:3] if p.isdigit())


def use_aot_compile(ev: Evaluation) -> bool:
    facts = ev.facts["use_aot_compile"]
    enabled = _torch_at_least(ev, facts["torch"]) and not disable_compile_cache(ev)
    if enabled and facts["cpu_check"]:
        ev.depends.add("platform")  # current_platform.is_cpu(): a GPU build is assumed
    default = "1" if enabled else "0"
    if _batch_invariant(ev, facts["batch_invariant"]):
        return False
    return ev.getenv("VLLM_USE_AOT_COMPILE", default) == "1"


def _batch_invariant(ev: Evaluation, variant: str | None) -> bool:
    """vllm_is_batch_invariant(): in model_executor/layers/batch_invariant.py (0.11.1-0.18.1)
    a bad value counts as off; inlined into envs.py (0.19) it is bool(int(...)) and raises."""
    if variant is None:
        return False
    raw = ev.getenv("VLLM_BATCH_INVARIANT", "0")
    if variant == "env":
        return bool(int(raw))
    try:
        return int(raw) != 0
    except ValueError:
        return False


def use_mega_aot_artifact(ev: Evaluation) -> bool:
    default = "1" if _torch_at_least(ev, "2.12.0.dev") and use_aot_compile(ev) else "0"
    return ev.getenv("VLLM_USE_MEGA_AOT_ARTIFACT", default) == "1"


def get_env_or_set_default(ev: Evaluation, env_name: str, default_factory: Getter) -> Getter:
    def getter() -> str:
        value = ev.getenv(env_name)
        if value is not None:
            return value
        ev.depends.add("random")
        return default_factory()
    return getter


def _generate_shm_name(ev: Evaluation) -> str:
    ev.depends.add("random")
    encoded = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii")
    return "vllm_mm_" + encoded.rstrip("=")


def deprecated_env(ev: Evaluation, env_name: str, removal_version: str, replacement: str,
                   getter: Getter) -> Getter:
    def read() -> Any:
        ev.contains(env_name)  # vLLM checks it to warn; the registry records the deprecation
        return getter()
    return read


def _resolve_rust_path(ev: Evaluation, enablers: tuple[str, ...]) -> str | None:
    use_rust = False
    for name in enablers:  # `bool(int(a)) or bool(int(b))`: b is read only when a is off
        if bool(int(ev.getenv(name, "0"))):
            use_rust = True
            break
    raw = ev.getenv("VLLM_RUST_FRONTEND_PATH", "auto")
    if not use_rust:
        ev.getenv("VLLM_RUST_FRONTEND_PATH")  # read to log a warning when set
        return None
    if raw.lower() in ("auto", "1", "true"):
        ev.depends.add("filesystem")
        candidate = "<vllm package>/vllm-rs"
        raise FileNotFoundError(
            f"VLLM_RUST_FRONTEND_PATH=auto but the vllm-rs binary was not found at {candidate}. "
            "Build with setuptools-rust or set the path explicitly.")
    return raw


def _resolve_rust_frontend_path(ev: Evaluation) -> str | None:
    return _resolve_rust_path(ev, ("VLLM_USE_RUST_FRONTEND",))


def _resolve_rust_cli_path(ev: Evaluation) -> str | None:
    return _resolve_rust_path(ev, ("VLLM_USE_RUST_FRONTEND", "VLLM_USE_RUST_BENCH"))


def _deprecated_triton_attn_use_td(ev: Evaluation) -> None:
    ev.contains("VLLM_TRITON_ATTN_USE_TD")  # read to log the deprecation when set
    return None


def registry_value(ev: Evaluation, name: str) -> Any:
    """`sys.modules[__name__].NAME` in a getter: another registry variable's value."""
    return ev.resolve_variable(name)


HELPERS: dict[str, Callable[..., Any]] = {
    f.__name__: f
    for f in (
        get_default_cache_root, get_default_config_root, maybe_convert_int, maybe_convert_bool,
        maybe_convert_json_str_or_file, get_vllm_port, env_with_choices, env_list_with_choices,
        env_set_with_choices, disable_compile_cache, use_aot_compile, use_mega_aot_artifact,
        get_env_or_set_default, _generate_shm_name, deprecated_env, _resolve_rust_frontend_path,
        _resolve_rust_cli_path, _deprecated_triton_attn_use_td, registry_value,
    )
}
