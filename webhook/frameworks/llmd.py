"""llm-d: vLLM with a scheduler and routing sidecars (its chart renders ordinary workloads)."""

from __future__ import annotations

from webhook.frameworks.base import Framework, image

FRAMEWORK = Framework(
    name="llm-d",
    summary="Kubernetes-native distributed inference on vLLM.",
    images=(
        image(r"(^|/)llm-d/llm-d(-(cuda|rocm|xpu|hpu|cpu|gaudi|tpu))?[:@]", why="llm-d's vLLM image"),
        image(r"(^|/)llm-d/llm-d-(inference-sim|routing-sidecar|inference-scheduler|model-service|router-[a-z-]+|"
              r"latency-predictor-[a-z-]+)[:@]", vllm=False,
              why="llm-d's simulator, scheduler and sidecars (not vLLM, though some take vLLM's flags)"),
    ),
    notes="`ModelService` (llm-d.ai) objects are found by walking them for pod specs.",
)
