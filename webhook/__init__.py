"""vllm-env-guard: catch broken vLLM deployments before they reach a cluster."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vllm-env-guard")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+src"
