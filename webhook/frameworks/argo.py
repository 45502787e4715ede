"""Argo Rollouts: Rollout (argoproj.io/v1alpha1), a Deployment with progressive delivery."""

from __future__ import annotations

from webhook.frameworks.base import Framework, Kind, template

FRAMEWORK = Framework(
    name="Argo Rollouts",
    summary="Deployments with canary and blue-green steps.",
    kinds=(Kind("argoproj.io", "Rollout", (template("spec", "template"),), reads="`spec.template`",
                makes="none (the Services it switches are your own)"),),
    notes="A Rollout that refers to a Deployment (`spec.workloadRef`) has no pod template of its own: "
          "the Deployment is read instead.",
)
