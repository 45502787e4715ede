"""`vllm-env-guard serve`: the validating admission webhook.

- `admission`: AdmissionReview in, AdmissionReview out (pure; runs the engine).
- `policy`: the `server:` section of the config file (enforce/warn, failure mode, ...).
- `cache`: list+watch of the cluster's Services, Namespaces and vLLM workloads.
- `tls`: the serving certificate, reloaded in place; `--dev` certificates.
- `app`: the FastAPI application; `workers`: the bounded pool the engine runs on;
  `main`: wiring, uvicorn, probes port, slow clients, shutdown.
- `metrics`, `logs`: Prometheus metrics and JSON logs.
"""
