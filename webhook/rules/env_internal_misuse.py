"""env-internal-misuse: the API server is pointed at vLLM's internal VLLM_PORT / VLLM_HOST_IP."""

from __future__ import annotations

import re
from collections.abc import Iterator

from webhook.findings import Severity
from webhook.rules.base import Rule
from webhook.rules.subjects import ContainerSubject, Hit

RULE = Rule(
    id="env-internal-misuse",
    severity=Severity.WARNING,
    summary="`--port $(VLLM_PORT)` or `--host $(VLLM_HOST_IP)`: vLLM's internal variables used for the API server.",
    rationale=(
        "vLLM's docs: `VLLM_PORT` and `VLLM_HOST_IP` set the port and IP for vLLM's internal "
        "use (distributed communication), not for the API server; `--host $VLLM_HOST_IP` and "
        "`--port $VLLM_PORT` will not work. vLLM also scans upward from `VLLM_PORT` for its "
        "internal ports, so the API server and the engine fight over the same port."
    ),
    bad='args: ["--port", "$(VLLM_PORT)"]',
    good='args: ["--port", "8000"]',
    fix="Give the API server its own port and host (`--port 8000`, `--host 0.0.0.0`) and leave VLLM_PORT / VLLM_HOST_IP unset unless you need them for distributed setups.",
)

_MISUSE = re.compile(
    r"--(?P<flag>port|host)(?:=|\s+)[\"']?\$[({]?(?P<var>VLLM_PORT|VLLM_HOST_IP)\b[)}]?")
_PAIRS = {("port", "VLLM_PORT"), ("host", "VLLM_HOST_IP")}


def check_container(subject: ContainerSubject) -> Iterator[Hit]:
    if not subject.vllm_container:
        return
    line = " ".join(subject.arguments)
    for match in _MISUSE.finditer(line):
        flag, var = match["flag"], match["var"]
        if (flag, var) not in _PAIRS:
            continue
        yield Hit(
            message=(f"the command line passes `{match.group(0)}`: {var} is vLLM's internal "
                     f"{'port' if flag == 'port' else 'address'} for distributed communication, "
                     "not the API server's"),
            hint=f"use a fixed --{flag} (e.g. --{flag} {'8000' if flag == 'port' else '0.0.0.0'}) for the API server",
            variable=var,
        )
