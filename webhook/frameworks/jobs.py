"""Batch and training frameworks that run vLLM in their pods: JobSet, Kubeflow PyTorchJob."""

from __future__ import annotations

from webhook.frameworks.base import ANY, Framework, Kind, template

FRAMEWORK = Framework(
    name="JobSet and Kubeflow Training",
    summary="Groups of Jobs and distributed training jobs (RL rollouts often run vLLM in them).",
    kinds=(
        Kind("jobset.x-k8s.io", "JobSet",
             (template("spec", "replicatedJobs", ANY, "template", "spec", "template", role="{}"),),
             reads="`spec.replicatedJobs[].template.spec.template`",
             makes="a headless Service `<name>` (no links)"),
        Kind("kubeflow.org", "PyTorchJob", (template("spec", "pytorchReplicaSpecs", ANY, "template", role="{}"),),
             reads="`spec.pytorchReplicaSpecs.<role>.template`", makes="headless Services per replica (no links)"),
    ),
)
