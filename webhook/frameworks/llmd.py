"""llm-d: vLLM with a scheduler and routing sidecars (its chart renders ordinary workloads)."""

from __future__ import annotations

from webhook.frameworks.base import Framework, Kind, Pattern, image

FRAMEWORK = Framework(
    name="llm-d",
    summary="Kubernetes-native distributed inference on vLLM.",
    kinds=(Kind("llm-d.ai", "ModelService",
                (Pattern(("spec", "decode"), role="decode", vllm=("vllm",)),
                 Pattern(("spec", "prefill"), role="prefill", vllm=("vllm",)),
                 Pattern(("spec", "endpointPicker"), role="endpointPicker")),
                reads="`spec.decode`, `spec.prefill` (inline pod specs whose container `vllm` runs vLLM, "
                      "image from the base ConfigMap), `spec.endpointPicker`"),),
    images=(
        image(r"(^|/)llm-d/llm-d(-(cuda|rocm|xpu|hpu|cpu|gaudi|tpu))?[:@]", why="llm-d's vLLM image"),
        image(r"(^|/)llm-d/llm-d-(inference-sim|routing-sidecar|inference-scheduler|model-service|router-[a-z-]+|"
              r"latency-predictor-[a-z-]+)[:@]", vllm=False,
              why="llm-d's simulator, scheduler and sidecars (not vLLM, though some take vLLM's flags)"),
    ),
)
