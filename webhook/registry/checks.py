"""Checks past the getter: values vLLM's getter accepts and then hands to a call that raises.

Which release has which sink is a fact the importer reads from the wheel (`usage.py`); here is
what each sink does with the value, using the same standard-library call vLLM makes, so the
exception class and message are the ones vLLM's process dies with:

- `logging_level`: vLLM's default logging config puts `VLLM_LOGGING_LEVEL` as the level of its
  handler and calls `logging.config.dictConfig` when `vllm.logger` is imported (unless
  `VLLM_CONFIGURE_LOGGING` is off or `VLLM_LOGGING_CONFIG_PATH` replaces the config); a name
  that is no logging level (`debug` before 0.8.2 upper-cases it, `verbose` anywhere) raises
  "Unable to configure handler 'vllm'".
- `mp_context`: `multiprocessing.get_context(envs.VLLM_WORKER_MULTIPROC_METHOD)` when the engine
  starts its workers; before 0.11 the getter takes any string, so `Spawn` raises there.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Mapping
from typing import Any

_READS: dict[str, tuple[str, ...]] = {
    "logging_level": ("VLLM_CONFIGURE_LOGGING", "VLLM_LOGGING_CONFIG_PATH"),
}
WHERE = {
    "logging_level": "vLLM's logging config (logging.config.dictConfig, when vllm is imported)",
    "mp_context": "multiprocessing.get_context() when the engine starts its workers",
}


def sink_reads(sink: Mapping[str, Any]) -> tuple[str, ...]:
    """The other variables a sink's outcome depends on."""
    return _READS.get(sink["check"], ())


def run(sink: Mapping[str, Any], value: Any, registry_value: Callable[[str], Any]) -> None:
    """Raise what vLLM raises when `value` reaches the sink; `registry_value(name)` is the
    value of another variable of the same release in the same environment."""
    check = sink["check"]
    if check == "logging_level":
        if registry_value("VLLM_CONFIGURE_LOGGING") and not registry_value("VLLM_LOGGING_CONFIG_PATH"):
            if value not in logging.getLevelNamesMapping():
                raise ValueError(f"Unable to configure handler {sink['handler']!r}")
    elif check == "mp_context":
        multiprocessing.get_context(value)
    else:
        raise ValueError(f"unknown sink {check!r}")
