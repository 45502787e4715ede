"""What the importer learns from the rest of a wheel (usage.wheel_facts), on handwritten modules;
test_bundle.py checks the bundled table against fresh imports of the real wheels."""

from __future__ import annotations

import textwrap

from webhook.registry.usage import torch_pin, wheel_facts

ENVS = textwrap.dedent('''
    import os
    import sys
    from typing import TYPE_CHECKING

    if TYPE_CHECKING:
        VLLM_TARGET_DEVICE: str = "cuda"
        VLLM_DEAD: bool = False

    environment_variables = {
        # ================== Installation Time Env Vars ==================
        "VLLM_TARGET_DEVICE": lambda: os.getenv("VLLM_TARGET_DEVICE", "cuda"),
        # ================== Runtime Env Vars ==================
        "VLLM_DP_RANK": lambda: int(os.getenv("VLLM_DP_RANK", "0")),
        "VLLM_DP_RANK_LOCAL": lambda: int(os.getenv("VLLM_DP_RANK_LOCAL", sys.modules[__name__].VLLM_DP_RANK)),
        "VLLM_LOGGING_LEVEL": lambda: os.getenv("VLLM_LOGGING_LEVEL", "INFO"),
        "VLLM_WORKER_MULTIPROC_METHOD": lambda: os.getenv("VLLM_WORKER_MULTIPROC_METHOD", "fork"),
        "VLLM_DEAD": lambda: bool(int(os.getenv("VLLM_DEAD", "0"))),
        "VLLM_BY_STRING": lambda: os.getenv("VLLM_BY_STRING"),
    }
''')
LOGGER = textwrap.dedent('''
    import vllm.envs as envs
    VLLM_LOGGING_LEVEL = envs.VLLM_LOGGING_LEVEL
    DEFAULT_LOGGING_CONFIG = {
        "handlers": {"vllm": {"class": "logging.StreamHandler", "level": VLLM_LOGGING_LEVEL}},
        "loggers": {"vllm": {"handlers": ["vllm"], "level": "DEBUG"}},
        "version": 1,
    }
''')
WORKERS = textwrap.dedent('''
    import multiprocessing
    from vllm import envs
    mp_method = envs.VLLM_WORKER_MULTIPROC_METHOD
    mp = multiprocessing.get_context(mp_method)
''')
OTHER = 'import os\nNAME = os.environ.get("VLLM_BY_STRING")\nfrom vllm.envs import VLLM_DP_RANK_LOCAL\n'


def test_unread_keys_sinks_and_pin() -> None:
    modules = {"vllm/envs.py": ENVS, "vllm/logger.py": LOGGER, "vllm/executor/workers.py": WORKERS,
               "vllm/other.py": OTHER, "vllm/broken.py": "def (:\n", "vllm/data.json": "{}"}
    facts = wheel_facts(modules, "Name: vllm\nRequires-Dist: torch==2.6.0\nRequires-Dist: numpy\n")
    # VLLM_DP_RANK is read by another getter; VLLM_BY_STRING by name; the rest by attribute.
    assert facts["unread"] == ["VLLM_TARGET_DEVICE", "VLLM_DEAD"]
    assert facts["sinks"] == {"VLLM_LOGGING_LEVEL": {"check": "logging_level", "handler": "vllm"},
                              "VLLM_WORKER_MULTIPROC_METHOD": {"check": "mp_context"}}
    assert facts["torch"] == "2.6.0"


def test_a_sink_inside_a_function() -> None:
    inside = "import multiprocessing\nfrom vllm import envs\ndef get_mp_context():\n" \
             "    return multiprocessing.get_context(envs.VLLM_WORKER_MULTIPROC_METHOD)\n"
    facts = wheel_facts({"vllm/envs.py": ENVS, "vllm/utils.py": inside}, "")
    assert facts["sinks"] == {"VLLM_WORKER_MULTIPROC_METHOD": {"check": "mp_context"}}
    assert facts["torch"] is None


def test_torch_pin_is_exact_or_nothing() -> None:
    assert torch_pin("Requires-Dist: torch==2.14.0\n") == "2.14.0"
    assert torch_pin('Requires-Dist: torch==2.5.1; platform_system == "Linux"\n') == "2.5.1"
    assert torch_pin("Requires-Dist: torch>=2.4\n") is None
    assert torch_pin("Requires-Dist: torchvision==0.20.1\n") is None
    assert torch_pin("Requires-Dist: torch==2.6.0; x\nRequires-Dist: torch==2.7.0; y\n") is None
